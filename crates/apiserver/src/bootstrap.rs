//! The objects a cluster has from its first start: the system namespaces
//! and the `kubernetes` Service.

use serde_json::{Value, json};
use skiff_store::Store;

fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// Creates whatever of the built-in objects is missing (idempotent).
pub async fn ensure_defaults(
    store: &dyn Store,
    service_ip: &str,
    api_port: u16,
) -> anyhow::Result<()> {
    let mut objects: Vec<(String, Value)> =
        ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .map(|n| (format!("/registry/core/namespaces/{n}"), namespace(n)))
            .collect();
    objects.push((
        "/registry/core/services/default/kubernetes".into(),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": service_ip,
                "clusterIPs": [service_ip],
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
                "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}],
            },
            "status": {"loadBalancer": {}},
        }),
    ));
    for (key, mut obj) in objects {
        if store.get(&key).await?.is_some() {
            continue;
        }
        let meta = obj["metadata"].as_object_mut();
        if let Some(m) = meta {
            m.insert(
                "uid".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            m.insert(
                "creationTimestamp".into(),
                Value::String(crate::object::now()),
            );
        }
        match store.create(&key, serde_json::to_vec(&obj)?.into()).await {
            Ok(_) | Err(skiff_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
