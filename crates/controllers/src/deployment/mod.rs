//! The Deployment controller, as upstream's `pkg/controller/deployment`:
//! owns ReplicaSets, one per template (named `<name>-<pod-template-hash>`),
//! and moves replicas from the old ones to the new one as the strategy
//! allows (RollingUpdate within maxSurge/maxUnavailable, or Recreate).
//! Revisions live in `deployment.kubernetes.io/revision` annotations, so
//! `kubectl rollout history|undo` work on the ReplicaSets it leaves.
//!
//! Each pass re-derives everything from the caches: which ReplicaSet is
//! new, how far the rollout got, what to scale next; the pure arithmetic
//! is in [`arith`], conditions in [`progress`].

mod arith;
mod progress;
mod replicasets;
mod rollout;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

pub use arith::scaled as scaled_value;

use crate::Error;
use crate::workload::{Ctx, Key, Outcome, control, key_of, pods, selector};

/// Queues the Deployments whose selector matches an orphan ReplicaSet.
pub fn queue_for_orphan(ctx: &Ctx, rs: &ReplicaSet) {
    let ns = rs.metadata.namespace.as_deref();
    for d in ctx.deployments.state() {
        if d.metadata.namespace.as_deref() == ns
            && selector::matches(
                d.spec.as_ref().map(|s| &s.selector),
                rs.metadata.labels.as_ref(),
            )
        {
            ctx.deploy.queue.add(key_of(&d.metadata));
        }
    }
}

pub async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Outcome {
    let Some(d) = Ctx::get(&ctx.deployments, &key) else {
        return Ok(None);
    };
    let d: Deployment = (*d).clone();
    let Some(spec) = d.spec.clone() else {
        return Ok(None);
    };
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &key.0);
    let owner = pods::owner_ref(&d);
    let deleting = d.meta().deletion_timestamp.is_some();
    let candidates = ctx
        .replicasets
        .state_filter(|r| r.metadata.namespace.as_deref() == Some(key.0.as_str()));
    let rss = replicasets::owned(
        control::claim(&api, candidates, &owner, Some(&spec.selector), deleting).await?,
    );
    let mut r = rollout::Rollout::new(ctx.clone(), api, d, rss);
    if deleting {
        return r.status_only().await;
    }
    r.paused_conditions().await?;
    if spec.paused == Some(true) || r.scaling_event() {
        return r.sync().await;
    }
    match spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) {
        Some("Recreate") => r.recreate().await,
        _ => r.rolling().await,
    }
}

/// Writes `status` (whole) if it differs from what the Deployment has.
async fn write_status(
    ctx: &Ctx,
    d: &Deployment,
    status: &k8s_openapi::api::apps::v1::DeploymentStatus,
) -> Result<(), Error> {
    if d.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let body = json!({"status": status});
    match api
        .patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::api_named(
            "update status of",
            "deployments.apps",
            &d.name_any(),
            e,
        )),
    }
}
