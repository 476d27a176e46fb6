//! The disruption controller (upstream's `pkg/controller/disruption`):
//! keeps each PodDisruptionBudget's status — `expectedPods`,
//! `currentHealthy`, `desiredHealthy`, `disruptionsAllowed`,
//! `disruptedPods` and the `DisruptionAllowed` condition — current with
//! the pods it selects. The eviction subresource in the API server reads
//! that status and spends `disruptionsAllowed` before deleting a pod.
//!
//! Partial: `expectedPods` is the number of selected pods (upstream uses
//! the scale of the pods' controllers for percentages and
//! `maxUnavailable`, which differs while a controller is short of pods).

mod budget;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::Error;
use crate::informer::{Informers, Tasks, key_of, objects, synced};
use crate::queue::WorkQueue;

/// How long an eviction's entry in `disruptedPods` holds the pod out of
/// the healthy count while its deletion is seen (upstream: 2 minutes).
const DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);

type Key = (String, String);

struct Shared {
    client: Client,
    pdbs: Store<PodDisruptionBudget>,
    pods: Store<Pod>,
    queue: WorkQueue<Key>,
}

pub async fn run(client: Client, informers: &Informers) {
    let (pdbs, pdb_events) = informers.informer(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
    );
    let (pods, pod_events) =
        informers.informer(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let shared = Arc::new(Shared {
        client,
        pdbs,
        pods,
        queue: WorkQueue::default(),
    });
    let mut tasks = Tasks::default();
    tasks.spawn(worker(shared.clone()));
    let s = shared.clone();
    let pdb_loop = pdb_events.for_each(move |ev| {
        if let Some(p) = objects(&ev) {
            s.queue.add(key_of(p));
        }
        async {}
    });
    let s = shared.clone();
    let pod_loop = pod_events.for_each(move |ev| {
        if let Some(pod) = objects(&ev) {
            let ns = pod.namespace().unwrap_or_default();
            let keys: Vec<Key> = s
                .pdbs
                .state()
                .iter()
                .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
                .map(|p| key_of(p.as_ref()))
                .collect();
            s.queue.add_all(keys);
        }
        async {}
    });
    futures::join!(pdb_loop, pod_loop);
}

async fn worker(shared: Arc<Shared>) {
    let ready = futures::future::join(synced(&shared.pdbs), synced(&shared.pods)).await;
    if ready.0.is_err() || ready.1.is_err() {
        return;
    }
    loop {
        let key = shared.queue.next().await;
        match reconcile(&shared, &key).await {
            Ok(recheck) => {
                shared.queue.forget(&key);
                if let Some(d) = recheck {
                    shared.queue.add_after(key.clone(), d);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, pdb = ?key, "disruption");
                shared.queue.add_rate_limited(key.clone());
            }
        }
        shared.queue.done(&key);
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Writes the budget's status; returns when to look again (a
/// `disruptedPods` entry expiring).
async fn reconcile(shared: &Shared, key: &Key) -> Result<Option<Duration>, Error> {
    let (ns, name) = key;
    let Some(pdb) = shared.pdbs.get(&ObjectRef::new(name).within(ns)) else {
        return Ok(None);
    };
    let spec = pdb.spec.clone().unwrap_or_default();
    let now = jiff::Timestamp::now();
    let pods: Vec<Arc<Pod>> = match &spec.selector {
        Some(sel) => shared.pods.state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str()) && budget::selects(sel, p.labels())
        }),
        None => Vec::new(),
    };
    let old = pdb.status.clone().unwrap_or_default();
    // Evictions not yet seen as deletions keep their pod out of the count.
    let mut recheck = None;
    let disrupted: BTreeMap<String, Time> = old
        .disrupted_pods
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(pod, at)| {
            let alive = pods.iter().any(|p| {
                p.metadata.name.as_deref() == Some(pod) && p.metadata.deletion_timestamp.is_none()
            });
            let age = now.duration_since(at.0).unsigned_abs();
            if alive && age < DISRUPTION_TIMEOUT {
                let left = DISRUPTION_TIMEOUT - age;
                recheck = Some(recheck.map_or(left, |r: Duration| r.min(left)));
                true
            } else {
                false
            }
        })
        .collect();
    let expected = pods.len() as i32;
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p))
        .filter(|p| !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or_default()))
        .count() as i32;
    let (desired, allowed) = budget::compute(
        spec.min_available.as_ref(),
        spec.max_unavailable.as_ref(),
        expected,
        healthy,
    );
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let old_cond = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed");
    let generation = pdb.metadata.generation;
    let condition = Condition {
        type_: "DisruptionAllowed".into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: generation,
        last_transition_time: match old_cond {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Time(now),
        },
    };
    let next = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        disruptions_allowed: allowed,
        expected_pods: expected,
        observed_generation: generation,
        disrupted_pods: Some(disrupted).filter(|d| !d.is_empty()),
        conditions: Some(vec![condition]),
    };
    let unchanged = old.current_healthy == next.current_healthy
        && old.desired_healthy == next.desired_healthy
        && old.disruptions_allowed == next.disruptions_allowed
        && old.expected_pods == next.expected_pods
        && old.observed_generation == next.observed_generation
        && old.disrupted_pods.clone().unwrap_or_default()
            == next.disrupted_pods.clone().unwrap_or_default()
        && old.conditions == next.conditions;
    if unchanged {
        return Ok(recheck);
    }
    let mut body = (*pdb).clone();
    body.status = Some(next);
    Api::<PodDisruptionBudget>::namespaced(shared.client.clone(), ns)
        .replace_status(name, &PostParams::default(), &body)
        .await
        .map_err(|e| Error::api_named("update status", "poddisruptionbudgets.policy", name, e))?;
    Ok(recheck)
}
