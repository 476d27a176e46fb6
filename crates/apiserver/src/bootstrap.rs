//! The objects a cluster has from its first start: the system namespaces,
//! and the `kubernetes` Service, plus the default `local-path` StorageClass.

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

/// The default StorageClass, served by the local-path provisioner in
/// `skiff-controllers` (k3s ships the same class). Re-created at start when
/// deleted, as k3s re-applies its manifest.
fn local_path_class() -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "local-path",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
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
    objects.push((
        "/registry/storage.k8s.io/storageclasses/local-path".into(),
        local_path_class(),
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
