//! The pod network across nodes, host-gateway style (as flannel's host-gw):
//! every node's pods live in its own podCIDR on its bridge, and each agent
//! routes every *other* node's podCIDR via that node's InternalIP. The
//! nodes must share a layer-2 network (the route's gateway is on-link).
//!
//! Nodes are watched through the API, so routes follow nodes coming, going
//! and changing address. Routes are replaced (`ip route replace`), which is
//! idempotent, and only routes this agent installed are ever deleted.
//!
//! Pod traffic leaving the cluster CIDR is masqueraded to the node's
//! address by a rule in Skiff's own nftables table `ip skiff-node` (the
//! proxy's `ip skiff` table is replaced wholesale by the proxy; keeping the
//! node's rule apart means either runs without the other).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::runtime::watcher::{self, Event};

use crate::Config;

/// A route to one node's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub cidr: String,
    pub via: Ipv4Addr,
}

/// The route a Node asks for, unless it is this node or lacks a podCIDR
/// or an IPv4 InternalIP.
pub fn route_for(node: &Node, self_name: &str) -> Option<Route> {
    if node.metadata.name.as_deref() == Some(self_name) {
        return None;
    }
    let cidr = node.spec.as_ref()?.pod_cidr.clone()?;
    crate::network::parse_cidr(&cidr).ok()?;
    let via = node
        .status
        .as_ref()?
        .addresses
        .iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok())?;
    Some(Route { cidr, via })
}

async fn ip(args: &[&str]) -> std::result::Result<(), String> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Installs the masquerade rule for `cluster_cidr` (one transaction that
/// replaces the whole `ip skiff-node` table).
pub async fn masquerade(cluster_cidr: &str) {
    if crate::network::parse_cidr(cluster_cidr).is_err() {
        tracing::warn!("invalid cluster CIDR {cluster_cidr:?}: no masquerade");
        return;
    }
    let text = format!(
        "add table ip skiff-node\ndelete table ip skiff-node\nadd table ip skiff-node\n\
         add chain ip skiff-node postrouting {{ type nat hook postrouting priority 100; policy accept; }}\n\
         add rule ip skiff-node postrouting ip saddr {cluster_cidr} ip daddr != {cluster_cidr} masquerade\n"
    );
    let child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        tracing::warn!("cannot run nft: pod traffic leaving the cluster is not masqueraded");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(text.as_bytes()).await;
    }
    match child.wait_with_output().await {
        Ok(o) if o.status.success() => {}
        Ok(o) => tracing::warn!(
            "nft rejected the masquerade rule: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => tracing::warn!("nft: {e}"),
    }
}

/// Keeps this node's routes to the other nodes' pods until dropped.
pub async fn run(client: kube::Client, config: std::sync::Arc<Config>) {
    if let Some(c) = &config.cluster_cidr {
        masquerade(c).await;
    }
    let api: Api<Node> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    // Node name → the route installed for it.
    let mut installed: BTreeMap<String, Route> = BTreeMap::new();
    let mut fresh: BTreeMap<String, Route> = BTreeMap::new();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => fresh.clear(),
            Ok(Event::InitApply(n)) => {
                if let (Some(name), Some(r)) =
                    (n.metadata.name.clone(), route_for(&n, &config.node_name))
                {
                    fresh.insert(name, r);
                }
            }
            Ok(Event::InitDone) => {
                let want = std::mem::take(&mut fresh);
                let gone: Vec<String> = installed
                    .keys()
                    .filter(|k| !want.contains_key(*k))
                    .cloned()
                    .collect();
                for name in gone {
                    remove(&mut installed, &name).await;
                }
                for (name, r) in want {
                    apply(&mut installed, name, r).await;
                }
            }
            Ok(Event::Apply(n)) => {
                let Some(name) = n.metadata.name.clone() else {
                    continue;
                };
                match route_for(&n, &config.node_name) {
                    Some(r) => apply(&mut installed, name, r).await,
                    None => remove(&mut installed, &name).await,
                }
            }
            Ok(Event::Delete(n)) => {
                if let Some(name) = n.metadata.name.as_deref() {
                    remove(&mut installed, name).await;
                }
            }
            Err(e) => {
                tracing::debug!("node watch: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

async fn apply(installed: &mut BTreeMap<String, Route>, name: String, r: Route) {
    if installed.get(&name) == Some(&r) {
        return;
    }
    if let Some(old) = installed.get(&name)
        && old.cidr != r.cidr
    {
        let _ = ip(&["route", "del", &old.cidr]).await;
    }
    let via = r.via.to_string();
    match ip(&["route", "replace", &r.cidr, "via", &via]).await {
        Ok(()) => {
            tracing::debug!("route to node {name}'s pods {} via {via}", r.cidr);
            installed.insert(name, r);
        }
        Err(e) => {
            // Not on-link (host-gw needs one layer-2 network), or a bad
            // address: report, keep going with the other nodes.
            tracing::warn!("cannot route {} via {via} (node {name}): {e}", r.cidr);
            installed.remove(&name);
        }
    }
}

async fn remove(installed: &mut BTreeMap<String, Route>, name: &str) {
    if let Some(r) = installed.remove(name) {
        let via = r.via.to_string();
        if let Err(e) = ip(&["route", "del", &r.cidr, "via", &via]).await {
            tracing::debug!("route to {} already gone: {e}", r.cidr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cidr: Option<&str>, ip: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": [
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": ip}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn routes_other_nodes_with_cidr_and_ipv4() {
        assert_eq!(
            route_for(&node("b", Some("10.42.1.0/24"), "192.168.5.3"), "a"),
            Some(Route {
                cidr: "10.42.1.0/24".into(),
                via: "192.168.5.3".parse().unwrap()
            })
        );
        assert_eq!(
            route_for(&node("a", Some("10.42.0.0/24"), "192.168.5.2"), "a"),
            None
        );
        assert_eq!(route_for(&node("b", None, "192.168.5.3"), "a"), None);
        assert_eq!(
            route_for(&node("b", Some("10.42.1.0/24"), "fd00::3"), "a"),
            None
        );
    }
}
