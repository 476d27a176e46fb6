//! The ReplicaSet and ReplicationController controller, as upstream's
//! `pkg/controller/replicaset`: keeps `spec.replicas` active pods that
//! match the selector, owns them (adopting matching orphans, releasing
//! pods that stopped matching), and reports counts in the status.
//!
//! A pass acts only when its expectations are met, so it never creates
//! twice for the same gap; creations go in slow-start batches and
//! deletions take the cheapest pods first ([`crate::workload::rank`]).

mod kind;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub use kind::{Counts, SetKind};

use crate::Error;
use crate::workload::{Ctx, Key, Outcome, control, key_of, pods, rank, selector};

/// Queues every ReplicaSet, ReplicationController and StatefulSet whose
/// selector matches the orphan `pod`, so one of them adopts it.
pub fn queue_for_orphan(ctx: &Ctx, pod: &Pod) {
    let ns = pod.metadata.namespace.as_deref();
    let labels = pod.metadata.labels.as_ref();
    for rs in ctx.replicasets.state() {
        if rs.metadata.namespace.as_deref() == ns
            && selector::matches(rs.selector().as_ref(), labels)
        {
            ctx.rs.queue.add(key_of(&rs.metadata));
        }
    }
    for rc in ctx.rcs.state() {
        if rc.metadata.namespace.as_deref() == ns
            && selector::matches(rc.selector().as_ref(), labels)
        {
            ctx.rc.queue.add(key_of(&rc.metadata));
        }
    }
    for ss in ctx.statefulsets.state() {
        if ss.metadata.namespace.as_deref() == ns
            && selector::matches(ss.spec.as_ref().map(|s| &s.selector), labels)
        {
            ctx.ss.queue.add(key_of(&ss.metadata));
        }
    }
}

pub async fn reconcile<K: SetKind>(ctx: Arc<Ctx>, key: Key) -> Outcome {
    let lane = K::lane(&ctx);
    let Some(set) = Ctx::get(K::store(&ctx), &key) else {
        lane.expectations.forget(&key);
        return Ok(None);
    };
    // Decide on expectations before reading pods: a pod observed in
    // between is then in the list we read.
    let satisfied = lane.expectations.satisfied(&key);
    let owner = pods::owner_ref(&*set);
    let sel = set.selector();
    let deleting = set.meta().deletion_timestamp.is_some();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.0);
    let owned = control::claim(
        &pod_api,
        ctx.pods_in(&key.0),
        &owner,
        sel.as_ref(),
        deleting,
    )
    .await?;
    let active: Vec<&Pod> = owned
        .iter()
        .map(|p| &**p)
        .filter(|p| pods::is_active(p))
        .collect();

    let mut result = Ok(());
    if satisfied && !deleting {
        result = manage(&ctx, &key, &*set, &owner, &active).await;
    }
    let now = jiff::Timestamp::now();
    let (counts, next_available) = counts(&*set, &active, now);
    if counts != set.counts() {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &key.0);
        let body = json!({"status": {
            "replicas": counts.replicas,
            "fullyLabeledReplicas": counts.fully_labeled,
            "readyReplicas": counts.ready,
            "availableReplicas": counts.available,
            "observedGeneration": counts.observed_generation,
        }});
        match api
            .patch_status(&key.1, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(_) => {}
            Err(e) if crate::status_code(&e) == Some(404) => {}
            Err(e) => return Err(Error::api_named("update status of", K::RESOURCE, &key.1, e)),
        }
    }
    result?;
    Ok(next_available)
}

/// Creates or deletes pods to close the gap to `spec.replicas`.
async fn manage<K: SetKind>(
    ctx: &Ctx,
    key: &Key,
    set: &K,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    active: &[&Pod],
) -> Result<(), Error> {
    let lane = K::lane(ctx);
    let want = set.replicas().max(0) as usize;
    if active.len() < want {
        let Some(template) = set.template() else {
            return Ok(());
        };
        let n = (want - active.len()).min(control::BURST);
        let prefix = pods::generate_name_prefix(&set.name_any());
        let new: Vec<Pod> = (0..n)
            .map(|_| pods::from_template(template, &key.0, owner.clone(), &prefix))
            .collect();
        control::create_slow_start(&ctx.client, lane, key, new).await?;
    } else if active.len() > want {
        let n = (active.len() - want).min(control::BURST);
        let mut ranked: Vec<&Pod> = active.to_vec();
        ranked.sort_by(|a, b| rank::delete_first(a, b));
        control::delete_pods(&ctx.client, lane, key, &ranked[..n]).await?;
    }
    Ok(())
}

/// The status counts, and when the next ready pod becomes available (the
/// status changes then without any event).
fn counts<K: SetKind>(
    set: &K,
    active: &[&Pod],
    now: jiff::Timestamp,
) -> (Counts, Option<Duration>) {
    let template_labels = set
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut c = Counts {
        replicas: active.len() as i32,
        observed_generation: set.meta().generation.unwrap_or(0),
        ..Default::default()
    };
    let mut next: Option<Duration> = None;
    for p in active {
        let labels = p.metadata.labels.as_ref();
        if template_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            c.fully_labeled += 1;
        }
        if pods::is_ready(p) {
            c.ready += 1;
        }
        match pods::available(p, set.min_ready_seconds(), now) {
            Ok(()) => c.available += 1,
            Err(Some(wait)) => next = Some(next.map_or(wait, |n| n.min(wait))),
            Err(None) => {}
        }
    }
    (c, next.map(|d| d + Duration::from_millis(100)))
}
