//! `status.loadBalancer.ingress` shared by every node: each node adds its
//! own address and keeps the others' (pure).
//!
//! Several nodes write the same list without coordination. Each keeps
//! entries that are still some Node's address and adds its own, so
//! concurrent writers converge (a lost update is repaired by the watch
//! event the winner's write produces) and a removed node's address leaves
//! with the next write.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The addresses the list should hold. `nodes` are every Node's
/// addresses; when empty (no Node objects, e.g. a control plane without an
/// agent) other entries are all kept.
pub fn merged(current: &[String], own: IpAddr, add: bool, nodes: &BTreeSet<String>) -> Vec<String> {
    let own = own.to_string();
    let mut out: Vec<String> = current
        .iter()
        .filter(|ip| **ip != own && (nodes.is_empty() || nodes.contains(*ip)))
        .cloned()
        .collect();
    if add {
        out.push(own);
    }
    out.sort_by_key(|ip| ip.parse::<IpAddr>().ok());
    out.dedup();
    out
}

/// The JSON for `status.loadBalancer.ingress`.
pub fn entries(ips: &[String]) -> serde_json::Value {
    serde_json::Value::Array(ips.iter().map(|ip| serde_json::json!({"ip": ip})).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_own_keeps_live_nodes_drops_gone_ones() {
        let own: IpAddr = "10.0.0.2".parse().unwrap();
        let nodes: BTreeSet<String> = ["10.0.0.1", "10.0.0.2"].map(String::from).into();
        let cur = vec!["10.0.0.9".to_string(), "10.0.0.1".to_string()];
        assert_eq!(merged(&cur, own, true, &nodes), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(merged(&cur, own, false, &nodes), ["10.0.0.1"]);
        assert_eq!(
            merged(&cur, own, true, &BTreeSet::new()),
            ["10.0.0.1", "10.0.0.2", "10.0.0.9"]
        );
    }
}
