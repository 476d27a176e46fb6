//! Node lifecycle (upstream's `nodelifecycle` controller and its taint
//! eviction manager):
//!
//! - **Health.** A node is alive while its Lease in `kube-node-lease` is
//!   renewed or its Ready condition's heartbeat moves. Silence is measured
//!   on our clock from when we last *saw* either change (so clock skew does
//!   not matter, and after a restart every node gets a full grace period).
//!   After `node_monitor_grace_period` its Ready, MemoryPressure,
//!   DiskPressure and PIDPressure conditions become Unknown
//!   (`NodeStatusUnknown`, "Kubelet stopped posting node status.") and its
//!   pods are marked not ready, so they leave Service endpoints.
//! - **Taints.** Ready=False → `node.kubernetes.io/not-ready`,
//!   Ready=Unknown → `node.kubernetes.io/unreachable` (NoSchedule and
//!   NoExecute), `spec.unschedulable` (`kubectl cordon`) →
//!   `node.kubernetes.io/unschedulable:NoSchedule`.
//! - **Eviction.** A pod on a node with a NoExecute taint it does not
//!   tolerate is deleted at once; one it tolerates for
//!   `tolerationSeconds` (300 s by default, added at pod admission) is
//!   deleted when that time after the taint's `timeAdded` has passed.
//!
//! Every pass re-derives all of this from the informers, so it is
//! level-triggered and a restart anywhere repeats at most one write.

pub mod taints;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;

use crate::Error;
use crate::informer::{Informers, synced};

const LEASE_NAMESPACE: &str = "kube-node-lease";
const CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

struct Ctx {
    client: Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    grace: Duration,
    /// Per node: the last heartbeat tokens seen and when they changed.
    health: Mutex<HashMap<String, (String, Instant)>>,
}

pub async fn run(client: Client, informers: &Informers, grace: Duration) {
    let (nodes, node_events) =
        informers.informer(Api::<Node>::all(client.clone()), watcher::Config::default());
    // Leases and pods are read each pass; their changes need not wake it.
    let leases = informers.store(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        watcher::Config::default(),
    );
    let pods = informers.store(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let ctx = Arc::new(Ctx {
        client,
        nodes,
        leases,
        pods,
        grace,
        health: Mutex::new(HashMap::new()),
    });
    // Changes wake the loop early (cordon should taint at once); silence
    // is noticed by the period.
    let wake = Arc::new(tokio::sync::Notify::new());
    let w = wake.clone();
    let node_loop = node_events.for_each(move |_| {
        w.notify_one();
        async {}
    });
    let period = (grace / 8).clamp(Duration::from_millis(200), Duration::from_secs(5));
    let monitor = async {
        let ready =
            futures::future::join3(synced(&ctx.nodes), synced(&ctx.leases), synced(&ctx.pods))
                .await;
        if ready.0.is_err() || ready.1.is_err() || ready.2.is_err() {
            return;
        }
        loop {
            pass(&ctx).await;
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = wake.notified() => {}
            }
        }
    };
    futures::join!(node_loop, monitor);
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

async fn pass(ctx: &Ctx) {
    let now = jiff::Timestamp::now();
    let nodes = ctx.nodes.state();
    ctx.health.lock().retain(|name, _| {
        nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(name))
    });
    for node in &nodes {
        let name = node.name_any();
        if let Err(e) = check_health(ctx, node).await {
            tracing::debug!(error = %e, node = %name, "node health");
        }
        // Taints follow the node as it is now (a status write above comes
        // back through the informer and is handled in the next pass).
        if let Some(current) = ctx.nodes.get(&ObjectRef::new(&name))
            && let Err(e) = update_taints(ctx, &current, now).await
        {
            tracing::debug!(error = %e, node = %name, "node taints");
        }
    }
    evict(ctx, now).await;
}

/// Marks a silent node Unknown.
async fn check_health(ctx: &Ctx, node: &Node) -> Result<(), Error> {
    let name = node.name_any();
    let lease = ctx
        .leases
        .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE))
        .and_then(|l| l.spec.as_ref().and_then(|s| s.renew_time.clone()));
    let ready = ready_condition(node);
    let token = format!(
        "{:?}|{:?}",
        lease.map(|t| t.0),
        ready
            .and_then(|c| c.last_heartbeat_time.clone())
            .map(|t| t.0)
    );
    let silent_for = {
        let mut health = ctx.health.lock();
        let entry = health
            .entry(name.clone())
            .or_insert_with(|| (token.clone(), Instant::now()));
        if entry.0 != token {
            *entry = (token, Instant::now());
        }
        entry.1.elapsed()
    };
    if silent_for < ctx.grace || ready.is_some_and(|c| c.status == "Unknown") {
        return Ok(());
    }
    let now = Time(jiff::Timestamp::now());
    let mut updated = node.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let never = !conditions.iter().any(|c| c.type_ == "Ready");
    let message = if never {
        "Kubelet never posted node status."
    } else {
        "Kubelet stopped posting node status."
    };
    for ty in CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == *ty) {
            Some(c) => {
                if c.status != "Unknown" {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some(message.into());
                    c.last_transition_time = Some(now.clone());
                }
            }
            None => conditions.push(NodeCondition {
                type_: ty.to_string(),
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some(message.into()),
                last_transition_time: Some(now.clone()),
                last_heartbeat_time: node.metadata.creation_timestamp.clone(),
            }),
        }
    }
    let api = Api::<Node>::all(ctx.client.clone());
    api.replace_status(&name, &PostParams::default(), &updated)
        .await
        .map_err(|e| Error::api_named("update status", "nodes", &name, e))?;
    tracing::info!(node = %name, "node stopped posting status: marked Unknown");
    mark_pods_not_ready(ctx, &name).await;
    Ok(())
}

/// Upstream's `MarkPodsNotReady`: the pods of an unreachable node stop
/// receiving Service traffic.
async fn mark_pods_not_ready(ctx: &Ctx, node: &str) {
    let pods = ctx
        .pods
        .state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node));
    for pod in pods {
        let Some(conditions) = pod.status.as_ref().and_then(|s| s.conditions.clone()) else {
            continue;
        };
        if !conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            continue;
        }
        let now = Time(jiff::Timestamp::now());
        let conditions: Vec<PodCondition> = conditions
            .into_iter()
            .map(|mut c| {
                if c.type_ == "Ready" {
                    c.status = "False".into();
                    c.last_transition_time = Some(now.clone());
                }
                c
            })
            .collect();
        let api = Api::<Pod>::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
        let patch = json!({
            "metadata": {"resourceVersion": pod.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::debug!(error = %e, pod = %pod.name_any(), "marking pod not ready");
        }
    }
}

async fn update_taints(ctx: &Ctx, node: &Node, now: jiff::Timestamp) -> Result<(), Error> {
    let name = node.name_any();
    let ready = ready_condition(node).map(|c| c.status.as_str());
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let Some(next) = taints::reconcile(&current, &taints::wanted(ready, unschedulable), now) else {
        return Ok(());
    };
    let patch = json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"taints": next},
    });
    Api::<Node>::all(ctx.client.clone())
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::api_named("patch", "nodes", &name, e))?;
    Ok(())
}

/// Deletes pods whose node's NoExecute taints they no longer tolerate.
async fn evict(ctx: &Ctx, now: jiff::Timestamp) {
    let tainted: HashMap<String, Vec<k8s_openapi::api::core::v1::Taint>> = ctx
        .nodes
        .state()
        .iter()
        .filter_map(|n| {
            let t: Vec<_> = n
                .spec
                .as_ref()?
                .taints
                .clone()?
                .into_iter()
                .filter(|t| t.effect == "NoExecute")
                .collect();
            (!t.is_empty()).then(|| (n.name_any(), t))
        })
        .collect();
    if tainted.is_empty() {
        return;
    }
    let pods = ctx.pods.state_filter(|p| {
        p.metadata.deletion_timestamp.is_none()
            && p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| tainted.contains_key(n))
    });
    for pod in pods {
        let spec = pod.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
        let tolerations = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
        let Some(at) = taints::eviction_time(&tainted[&node], &tolerations, now) else {
            continue;
        };
        if at > now {
            continue;
        }
        let api = Api::<Pod>::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&pod.name_any(), &dp).await {
            Ok(_) => tracing::info!(pod = %pod.name_any(), %node, "evicted by a NoExecute taint"),
            Err(e) => tracing::debug!(error = %e, pod = %pod.name_any(), "taint eviction"),
        }
    }
}
