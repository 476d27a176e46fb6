//! The node's HTTPS server (logs, exec, attach, port-forward,
//! `/stats/summary`): `skiff-streaming`'s router over the agent's runtime
//! and pod lookup. The glue lives in the binary so that neither
//! `skiff-kubelet` nor `skiff-streaming` depends on the other.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

/// The node server's TLS material: its serving certificate, and the
/// cluster CA that the API server's client certificate must chain to.
pub struct NodeTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl NodeTls {
    /// What `skiff agent` got at join: `<data-dir>/tls/{ca,kubelet}.*`.
    pub fn from_join(data_dir: &Path) -> anyhow::Result<NodeTls> {
        let tls = data_dir.join("tls");
        let read = |name: &str| {
            let path = tls.join(name);
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))
        };
        Ok(NodeTls {
            ca_pem: read("ca.crt")?,
            cert_pem: read("kubelet.crt")?,
            key_pem: read("kubelet.key")?,
        })
    }
}

/// The agent's pod table seen through the streaming server's trait.
struct Lookup {
    pods: skiff_kubelet::lookup::PodLookup,
    node_name: String,
}

impl skiff_streaming::kubelet::PodLookup for Lookup {
    fn container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Option<skiff_streaming::kubelet::ContainerRef> {
        self.pods
            .container(namespace, pod, container, previous)
            .map(|c| skiff_streaming::kubelet::ContainerRef {
                id: c.container_id,
                log_path: c.log_path,
            })
    }

    fn sandbox_netns(&self, namespace: &str, pod: &str) -> Option<PathBuf> {
        self.pods.netns(namespace, pod)
    }

    fn stats_summary(&self) -> Option<skiff_streaming::stats::SummaryInput> {
        let pods = self
            .pods
            .pods()
            .into_iter()
            .map(|p| skiff_streaming::stats::PodStatsRef {
                namespace: p.namespace,
                name: p.name,
                uid: p.uid,
                containers: p.containers,
            })
            .collect();
        Some(skiff_streaming::stats::SummaryInput {
            node_name: self.node_name.clone(),
            pods,
        })
    }
}

/// Binds the node's port (in the agent's network namespace, all
/// addresses) and serves until the returned task is aborted.
pub async fn start(
    agent: &skiff_kubelet::Agent,
    node_name: &str,
    port: u16,
    tls: NodeTls,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("node server: cannot listen on port {port}"))?;
    let tls = skiff_streaming::kubelet::tls_config(&tls.ca_pem, &tls.cert_pem, &tls.key_pem)?;
    let kubelet = Arc::new(skiff_streaming::kubelet::Kubelet::new(
        agent.runtime.clone(),
        Arc::new(Lookup {
            pods: agent.lookup.clone(),
            node_name: node_name.to_string(),
        }),
    ));
    // Aborting the server's task drops this future, and with it the guard
    // that stops the sampler.
    let sampler = AbortOnDrop(tokio::spawn(kubelet.clone().sample_forever()));
    let server = skiff_streaming::kubelet::serve_tls(listener, tls, kubelet);
    Ok(tokio::spawn(async move {
        let _sampler = sampler;
        server.await;
    }))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
