//! ServiceLB: `type: LoadBalancer` Services get this node's address in
//! `status.loadBalancer.ingress`.
//!
//! Traffic is not carried here: `skiff-proxy` already programs every
//! `status.loadBalancer.ingress[].ip` of a Service as an external entry
//! (DNAT of `ip:port` to the endpoints, like a NodePort), so once the
//! status names the node's address, the Service's port answers on it on
//! every node running the proxy. No listener process, no extra hop; see
//! ARCHITECTURE.md for the choice. Services with a `loadBalancerClass` are
//! left to whoever implements that class, as upstream requires.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::sync::Notify;

use crate::watch::{mirror, ready};

/// Whether ServiceLB serves `svc`.
pub fn wants(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none()
    })
}

fn current_ips(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// Runs until dropped.
pub async fn run(client: kube::Client, node_ip: IpAddr) {
    let wake = Arc::new(Notify::new());
    let services = mirror::<Service>(Api::all(client.clone()), wake.clone());
    let nodes = mirror::<Node>(Api::all(client.clone()), wake.clone());
    ready(&services).await;
    ready(&nodes).await;
    loop {
        let known = crate::controller::node_addresses(&nodes.store);
        for svc in services.store.state() {
            let cur = current_ips(&svc);
            let add = wants(&svc);
            if !add && cur.is_empty() {
                continue;
            }
            // A Service that stopped being ours (another type, or a class
            // set) loses only this node's entry; its other entries are
            // another implementation's business.
            let want = if add {
                crate::status::merged(&cur, node_ip, true, &known)
            } else {
                let own = node_ip.to_string();
                cur.iter().filter(|ip| **ip != own).cloned().collect()
            };
            let mut sorted = cur.clone();
            sorted.sort_by_key(|ip| ip.parse::<IpAddr>().ok());
            if sorted == want || (!add && want.len() == cur.len()) {
                continue;
            }
            let (Some(ns), Some(name)) = (
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let api: Api<Service> = Api::namespaced(client.clone(), ns);
            let body = serde_json::json!({"status": {"loadBalancer": {"ingress": crate::status::entries(&want)}}});
            if let Err(e) = api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                tracing::debug!(service = %format!("{ns}/{name}"), error = %e, "servicelb status");
            }
        }
        wake.notified().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
