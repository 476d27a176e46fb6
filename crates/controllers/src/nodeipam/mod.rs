//! Node IPAM (upstream's `nodeipam` controller, range allocator): each
//! node gets a /24 of `--cluster-cidr` in `spec.podCIDR` / `spec.podCIDRs`,
//! which its agent builds the pod bridge on and other nodes route to.
//!
//! The used ranges are re-derived from the nodes themselves (the informer
//! holds every node's `podCIDR`), so there is no state to lose: after a
//! restart the next free range is the same one. One worker assigns, so
//! two nodes never get the same range from this process, and the write is
//! a patch guarded by the node's resourceVersion.

mod cidr;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::informer::{Informers, Tasks, objects, synced};
use crate::queue::WorkQueue;
pub use cidr::ClusterCidr;

struct Shared {
    client: Client,
    nodes: Store<Node>,
    queue: WorkQueue<String>,
    cidr: ClusterCidr,
}

pub async fn run(client: Client, informers: &Informers, cluster_cidr: String, mask: u8) {
    let cidr = match ClusterCidr::parse(&cluster_cidr, mask) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM disabled");
            return std::future::pending().await;
        }
    };
    let (nodes, events) =
        informers.informer(Api::<Node>::all(client.clone()), watcher::Config::default());
    let shared = Arc::new(Shared {
        client,
        nodes,
        queue: WorkQueue::default(),
        cidr,
    });
    let mut tasks = Tasks::default();
    tasks.spawn(worker(shared.clone()));
    let s = shared.clone();
    events
        .for_each(move |ev| {
            if let Some(n) = objects(&ev)
                && pod_cidr(n).is_none()
            {
                s.queue.add(n.name_any());
            }
            async {}
        })
        .await;
}

fn pod_cidr(n: &Node) -> Option<&str> {
    n.spec
        .as_ref()?
        .pod_cidr
        .as_deref()
        .filter(|c| !c.is_empty())
}

async fn worker(shared: Arc<Shared>) {
    if synced(&shared.nodes).await.is_err() {
        return;
    }
    loop {
        let name = shared.queue.next().await;
        match assign(&shared, &name).await {
            Ok(()) => shared.queue.forget(&name),
            Err(e) => {
                tracing::debug!(error = %e, node = %name, "node IPAM");
                shared.queue.add_rate_limited(name.clone());
            }
        }
        shared.queue.done(&name);
    }
}

async fn assign(shared: &Shared, name: &str) -> Result<(), Error> {
    let Some(node) = shared.nodes.get(&ObjectRef::new(name)) else {
        return Ok(());
    };
    if pod_cidr(&node).is_some() || node.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let used: Vec<String> = shared
        .nodes
        .state()
        .iter()
        .filter_map(|n| pod_cidr(n).map(String::from))
        .collect();
    let Some(range) = shared.cidr.next_free(used.iter().map(String::as_str)) else {
        tracing::warn!(node = %name, cidr = %shared.cidr, "no pod CIDR left for the node");
        return Ok(());
    };
    let api = Api::<Node>::all(shared.client.clone());
    let patch = json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"podCIDR": range, "podCIDRs": [range]},
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::api_named("patch", "nodes", name, e))?;
    tracing::debug!(node = %name, %range, "pod CIDR assigned");
    Ok(())
}
