//! The node's policy loop. Deliberately simple for now: it lists
//! NetworkPolicies once a second and, only while any exist, Pods and
//! Namespaces, re-renders the table
//! for the pods bound to this node, and runs `nft -f` only when the script
//! changed (the whole table is replaced in one transaction). Watches and
//! per-change set updates are the planned replacement.

use crate::{Direction, PodPolicy, isolation, rules_for, script};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use std::time::Duration;

/// Runs until the task is dropped; errors are logged and retried.
pub async fn run(client: kube::Client, node_name: String) {
    let mut last = String::new();
    loop {
        match render(&client, &node_name).await {
            Ok(s) if s != last => match apply(&s).await {
                Ok(()) => last = s,
                Err(e) => tracing::warn!(error = %e, "network policy: nft failed"),
            },
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "network policy: list failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn list<K>(api: Api<K>) -> Result<Vec<Value>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let items = api.list(&ListParams::default()).await?.items;
    Ok(items
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect())
}

async fn render(client: &kube::Client, node: &str) -> Result<String, kube::Error> {
    let policies = list(Api::<NetworkPolicy>::all(client.clone())).await?;
    // No policy isolates no pod: skip the two cluster-wide lists, which
    // would otherwise run every second on every node for nothing.
    if policies.is_empty() {
        return Ok(script(&[]));
    }
    let pods = list(Api::<Pod>::all(client.clone())).await?;
    let namespaces = list(Api::<Namespace>::all(client.clone())).await?;
    let mut out = Vec::new();
    for pod in &pods {
        let on_node = pod.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node);
        let ip = pod.pointer("/status/podIP").and_then(Value::as_str);
        let host_net = pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true);
        let (Some(ip), true, false) = (ip, on_node, host_net) else {
            continue;
        };
        let (ing, eg) = isolation(&policies, pod);
        if !ing && !eg {
            continue;
        }
        out.push(PodPolicy {
            ip: ip.to_owned(),
            ingress: ing.then(|| rules_for(&policies, &pods, &namespaces, pod, Direction::Ingress)),
            egress: eg.then(|| rules_for(&policies, &pods, &namespaces, pod, Direction::Egress)),
        });
    }
    Ok(script(&out))
}

async fn apply(script: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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
