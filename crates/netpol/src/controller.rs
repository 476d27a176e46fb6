//! The node's policy loop: watches (see `watch`) keep a cache of the
//! cluster's NetworkPolicies, Pods and Namespaces; any change that matters
//! wakes this loop, which waits for the burst to settle, re-renders the
//! table for the pods bound to *this* node and runs `nft -f` only when
//! the script changed (the whole table is replaced in one transaction).
//!
//! Only local pods are programmed, like upstream CNI plugins: a pod's
//! ingress is enforced on the node it runs on (packets to its IP are
//! forwarded there), its egress on the same node (packets from it are
//! forwarded there first). Peers are resolved cluster-wide, since a pod on
//! another node is still matched by its IP, which host-gw routing keeps
//! (pod-to-pod traffic is not masqueraded).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::eval::at;
use crate::watch::{self, Cache, Shared};
use crate::{Direction, PeerCache, PodPolicy, isolation, rules_for_cached, script};

/// A change is rendered once no further change arrived for this long...
const QUIET: Duration = Duration::from_millis(50);
/// ...or once the first change is this old, so a steady stream of pod
/// churn cannot postpone enforcement indefinitely.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// Retry interval after `nft` rejected or could not run the script.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until the task is dropped (the watches stop with it); errors are
/// logged and retried.
pub async fn run(client: kube::Client, node_name: String) {
    bridge_netfilter();
    let shared = Arc::new(Shared::default());
    let _watches = watch::spawn(&client, &shared);
    let mut last = String::new();
    loop {
        shared.wake.notified().await;
        settle(&shared).await;
        if !shared.ready() {
            continue;
        }
        // Copied out under the lock, rendered without it (and off the async
        // workers: with thousands of pods a render is CPU work).
        let snapshot = snapshot(&shared.cache());
        let node = node_name.clone();
        let Ok(s) = tokio::task::spawn_blocking(move || render(&snapshot, &node)).await else {
            continue;
        };
        if s == last {
            continue;
        }
        match apply(&s).await {
            Ok(()) => {
                tracing::debug!(bytes = s.len(), "network policy table applied");
                last = s;
            }
            Err(e) => {
                tracing::warn!(error = %e, "network policy: nft failed");
                tokio::time::sleep(RETRY).await;
                shared.wake.notify_one();
            }
        }
    }
}

/// Pods on one bridge talk without routing; only with
/// `bridge-nf-call-iptables` do their packets reach the `forward` hook.
/// The proxy sets it too, but policy must not depend on the proxy being
/// enabled. Per network namespace: this is the node's own.
fn bridge_netfilter() {
    const PATH: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    match std::fs::read_to_string(PATH) {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) => {
            if let Err(e) = std::fs::write(PATH, "1") {
                tracing::warn!("network policy: cannot set {PATH}: {e}");
            }
        }
        Err(_) => tracing::warn!(
            "network policy: {PATH} is missing (no br_netfilter): same-bridge pod traffic is not filtered"
        ),
    }
}

/// The debounce: returns after `QUIET` without a change, or `MAX_DELAY`
/// after it was called.
async fn settle(shared: &Shared) {
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        tokio::select! {
            _ = shared.wake.notified() => {
                if tokio::time::Instant::now() >= deadline {
                    return;
                }
            }
            _ = tokio::time::sleep(QUIET) => return,
            _ = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// The cached cluster state as lists: (policies, pods, namespaces).
type Snapshot = (Vec<Value>, Vec<Value>, Vec<Value>);

fn snapshot(cache: &Cache) -> Snapshot {
    // No policy isolates no pod: the pods are not even copied.
    if cache.policies.is_empty() {
        return Default::default();
    }
    (
        cache.policies.values().cloned().collect(),
        cache.pods.values().cloned().collect(),
        cache.namespaces.values().cloned().collect(),
    )
}

/// The table for the pods of `node` given a snapshot of the cache.
fn render((policies, pods, namespaces): &Snapshot, node: &str) -> String {
    if policies.is_empty() {
        return script(&[]);
    }
    node_script(policies, pods, namespaces, node)
}

/// The whole `nft -f` script for the pods bound to `node` (hostNetwork
/// pods and pods without an IP are never isolated), peers resolved against
/// every pod. Public for `skiff bench netpol`.
pub fn node_script(policies: &[Value], pods: &[Value], namespaces: &[Value], node: &str) -> String {
    let mut out = Vec::new();
    let mut peers = PeerCache::default();
    for pod in pods {
        let on_node = at(pod, &["spec", "nodeName"]).and_then(Value::as_str) == Some(node);
        let ip = at(pod, &["status", "podIP"]).and_then(Value::as_str);
        let host_net = at(pod, &["spec", "hostNetwork"]).and_then(Value::as_bool) == Some(true);
        let (Some(ip), true, false) = (ip, on_node, host_net) else {
            continue;
        };
        let (ing, eg) = isolation(policies, pod);
        if !ing && !eg {
            continue;
        }
        out.push(PodPolicy {
            ip: ip.to_owned(),
            ingress: ing.then(|| {
                rules_for_cached(
                    policies,
                    pods,
                    namespaces,
                    pod,
                    Direction::Ingress,
                    &mut peers,
                )
            }),
            egress: eg.then(|| {
                rules_for_cached(
                    policies,
                    pods,
                    namespaces,
                    pod,
                    Direction::Egress,
                    &mut peers,
                )
            }),
        });
    }
    script(&out)
}

/// Replaces the table with `nft -f -` in the caller's network namespace.
async fn apply(script: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, ip: &str, labels: Value) -> (String, Value) {
        (
            format!("a/{name}"),
            json!({"metadata": {"namespace": "a", "name": name, "labels": labels},
                   "spec": {"nodeName": node, "containers": []}, "status": {"podIP": ip}}),
        )
    }

    #[test]
    fn only_local_pods_get_chains_but_remote_peers_resolve() {
        let mut cache = Cache::default();
        cache.policies.insert(
            "a/p".into(),
            json!({"metadata": {"namespace": "a", "name": "p"},
                   "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}),
        );
        cache.pods.extend([
            pod("web1", "n1", "10.42.0.5", json!({"app": "web"})),
            pod("web2", "n2", "10.42.1.5", json!({"app": "web"})),
            pod("client", "n2", "10.42.1.9", json!({"role": "client"})),
        ]);
        let s = render(&snapshot(&cache), "n1");
        assert!(s.contains("ip daddr 10.42.0.5 jump in_0"), "{s}");
        assert!(
            !s.contains("10.42.1.5"),
            "a remote pod is not programmed: {s}"
        );
        assert!(s.contains("ip saddr { 10.42.1.9 } return"), "{s}");
    }

    #[test]
    fn no_policy_renders_an_empty_table() {
        let mut cache = Cache::default();
        cache
            .pods
            .extend([pod("web1", "n1", "10.42.0.5", json!({}))]);
        assert_eq!(render(&snapshot(&cache), "n1"), script(&[]));
    }
}
