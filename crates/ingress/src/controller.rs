//! The Ingress controller loop: on any change to Ingresses, IngressClasses,
//! Services, EndpointSlices, Secrets or Nodes, rebuild the routing table
//! and the certificate map from the stores, swap them in, and bring each
//! Ingress' `status.loadBalancer` in line with this node's address.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use parking_lot::RwLock;
use tokio::sync::Notify;

use crate::backends::{Endpoints, Upstream};
use crate::proxy::Routes;
use crate::tls::CertMap;
use crate::watch::{mirror, ready};
use crate::{CLASS_NAME, CONTROLLER, DEFAULT_CLASS_ANNOTATION, LEGACY_CLASS_ANNOTATION};

/// The IngressClasses this controller implements (`spec.controller` =
/// `skiff.io/ingress`; `skiff` itself until it is listed) and whether one
/// of them is the default.
pub struct Classes {
    pub names: BTreeSet<String>,
    pub default: bool,
}

impl Classes {
    pub fn from_store<'a>(classes: impl IntoIterator<Item = &'a IngressClass>) -> Classes {
        let mut c = Classes {
            names: BTreeSet::new(),
            default: false,
        };
        for class in classes {
            let controller = class.spec.as_ref().and_then(|s| s.controller.as_deref());
            if controller != Some(CONTROLLER) {
                continue;
            }
            let Some(name) = class.metadata.name.clone() else {
                continue;
            };
            c.default |= class
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true");
            c.names.insert(name);
        }
        if !c.names.contains(CLASS_NAME) {
            // Not created yet (or not listed yet): as we create it.
            c.names.insert(CLASS_NAME.to_string());
            c.default = true;
        }
        c
    }

    /// Whether this controller serves `ing`: its class (field, else the
    /// legacy annotation) is one of ours, or it names none and one of ours
    /// is the default.
    pub fn serves(&self, ing: &Ingress) -> bool {
        let by_field = ing
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref());
        let by_annotation = ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
            .map(String::as_str);
        match by_field.or(by_annotation) {
            Some(c) => self.names.contains(c),
            None => self.default,
        }
    }
}

pub fn node_addresses(nodes: &Store<Node>) -> BTreeSet<String> {
    nodes
        .state()
        .iter()
        .flat_map(|n| {
            n.status
                .iter()
                .flat_map(|s| s.addresses.iter().flatten())
                .map(|a| a.address.clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

pub struct Shared {
    pub routes: Arc<RwLock<Arc<Routes>>>,
    pub certs: Arc<RwLock<Arc<CertMap>>>,
}

/// Runs until dropped.
pub async fn run(client: kube::Client, node_ip: Option<IpAddr>, shared: Shared) {
    let wake = Arc::new(Notify::new());
    let ingresses = mirror::<Ingress>(Api::all(client.clone()), wake.clone());
    let classes = mirror::<IngressClass>(Api::all(client.clone()), wake.clone());
    let services = mirror::<Service>(Api::all(client.clone()), wake.clone());
    let slices = mirror::<EndpointSlice>(Api::all(client.clone()), wake.clone());
    let secrets = mirror::<Secret>(Api::all(client.clone()), wake.clone());
    let nodes = mirror::<Node>(Api::all(client.clone()), wake.clone());
    ready(&ingresses).await;
    ready(&classes).await;
    ready(&services).await;
    ready(&slices).await;
    ready(&secrets).await;
    ready(&nodes).await;
    let mut keys = crate::tls::KeyCache::default();
    loop {
        let class_list = classes.store.state();
        let served = Classes::from_store(class_list.iter().map(|c| c.as_ref()));
        let all = ingresses.store.state();
        let mine: Vec<&Ingress> = all
            .iter()
            .map(|i| i.as_ref())
            .filter(|i| served.serves(i))
            .collect();
        let svcs = services.store.state();
        let sls = slices.store.state();
        let eps = Endpoints::new(
            svcs.iter().map(|s| s.as_ref()),
            sls.iter().map(|s| s.as_ref()),
        );
        let table = crate::routes::compile(mine.iter().copied()).map(|b| {
            let name = format!("{}/{}:{:?}", b.namespace, b.service, b.port);
            Arc::new(Upstream::new(name, eps.resolve(&b)))
        });
        *shared.routes.write() = Arc::new(table);
        let certs = crate::tls::build(mine.iter().copied(), |ns, name| {
            keys.get(secrets.store.get(&ObjectRef::new(name).within(ns)))
        });
        *shared.certs.write() = Arc::new(certs);
        keys.sweep();
        if let Some(ip) = node_ip {
            let known = node_addresses(&nodes.store);
            for ing in all.iter() {
                let want = served.serves(ing);
                if let Err(e) = write_status(&client, ing, ip, want, &known).await {
                    tracing::debug!(error = %e, "ingress status");
                }
            }
        }
        wake.notified().await;
        // Coalesce a burst (a Deployment's endpoints arriving together).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn current_ips(ing: &Ingress) -> Vec<String> {
    ing.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// Patches `status.loadBalancer.ingress` when it differs from what it
/// should be (so a steady state writes nothing).
async fn write_status(
    client: &kube::Client,
    ing: &Ingress,
    ip: IpAddr,
    add: bool,
    known: &BTreeSet<String>,
) -> Result<(), kube::Error> {
    let cur = current_ips(ing);
    let own = ip.to_string();
    let want = if add {
        crate::status::merged(&cur, ip, true, known)
    } else if cur.contains(&own) {
        // Not (or no longer) ours: take only our own entry off; the rest
        // belongs to whichever controller serves it.
        cur.iter().filter(|i| **i != own).cloned().collect()
    } else {
        return Ok(());
    };
    let mut sorted = cur.clone();
    sorted.sort_by_key(|ip| ip.parse::<IpAddr>().ok());
    if sorted == want {
        return Ok(());
    }
    let (Some(ns), Some(name)) = (
        ing.metadata.namespace.as_deref(),
        ing.metadata.name.as_deref(),
    ) else {
        return Ok(());
    };
    let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let body =
        serde_json::json!({"status": {"loadBalancer": {"ingress": crate::status::entries(&want)}}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn serves_own_classes_and_classless_when_default() {
        let ing = |class: Option<&str>, ann: Option<&str>| -> Ingress {
            let mut v = serde_json::json!({"metadata": {"name": "i"}, "spec": {}});
            if let Some(c) = class {
                v["spec"]["ingressClassName"] = c.into();
            }
            if let Some(a) = ann {
                v["metadata"]["annotations"] = serde_json::json!({LEGACY_CLASS_ANNOTATION: a});
            }
            obj(v)
        };
        let skiff: IngressClass = obj(serde_json::json!({
            "metadata": {"name": "skiff", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "spec": {"controller": CONTROLLER}}));
        let internal: IngressClass = obj(serde_json::json!({
            "metadata": {"name": "internal"}, "spec": {"controller": CONTROLLER}}));
        let nginx: IngressClass = obj(serde_json::json!({
            "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}));
        let c = Classes::from_store([&skiff, &internal, &nginx]);
        assert!(c.serves(&ing(Some("skiff"), None)));
        assert!(c.serves(&ing(Some("internal"), None)));
        assert!(!c.serves(&ing(Some("nginx"), None)));
        assert!(!c.serves(&ing(None, Some("nginx"))));
        assert!(c.serves(&ing(None, Some("skiff"))));
        assert!(c.serves(&ing(None, None)));
        let mut undefaulted = skiff.clone();
        undefaulted.metadata.annotations = None;
        let c = Classes::from_store([&undefaulted, &nginx]);
        assert!(!c.serves(&ing(None, None)));
        assert!(c.serves(&ing(Some("skiff"), None)));
        // Before any class is listed: as created, the default.
        assert!(Classes::from_store([]).serves(&ing(None, None)));
    }
}
