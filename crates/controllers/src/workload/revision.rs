//! ControllerRevisions, the history DaemonSets and StatefulSets keep: one
//! per distinct pod template, named `<owner>-<hash>`, holding the template
//! as upstream's patch (`{"spec":{"template":{...,"$patch":"replace"}}}`),
//! with increasing `revision` numbers. Returning to an old template gives
//! its revision the next number instead of making a new one.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{Ctx, hash, pods};
use crate::Error;

pub const REVISION_HASH: &str = "controller-revision-hash";

/// The patch a revision stores for `template`.
pub fn data(template: &PodTemplateSpec) -> serde_json::Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The revisions `owner` controls, oldest number first.
pub fn owned(ctx: &Ctx, ns: &str, owner_uid: &str) -> Vec<Arc<ControllerRevision>> {
    let mut v = ctx.revisions.state_filter(|r| {
        r.metadata.namespace.as_deref() == Some(ns)
            && pods::controller_of(&r.metadata).is_some_and(|o| o.uid == owner_uid)
    });
    v.sort_by_key(|r| r.revision);
    v
}

/// Makes sure the revision for `template` exists and is the newest;
/// returns (its name, its hash).
pub async fn ensure(
    ctx: &Ctx,
    ns: &str,
    owner_name: &str,
    owner: OwnerReference,
    labels: Option<std::collections::BTreeMap<String, String>>,
    template: &PodTemplateSpec,
    collision_count: Option<i32>,
) -> Result<(String, String), Error> {
    let existing = owned(ctx, ns, &owner.uid);
    let max = existing.iter().map(|r| r.revision).max().unwrap_or(0);
    let want = data(template);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    if let Some(r) = existing
        .iter()
        .find(|r| r.data.as_ref().map(|d| &d.0) == Some(&want))
    {
        let h = r.labels().get(REVISION_HASH).cloned().unwrap_or_default();
        if r.revision < max {
            api.patch(
                &r.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"revision": max + 1})),
            )
            .await
            .map_err(|e| {
                Error::api_named("update", "controllerrevisions.apps", &r.name_any(), e)
            })?;
        }
        return Ok((r.name_any(), h));
    }
    let h = hash::template_hash(&want, collision_count);
    let name = format!("{owner_name}-{h}");
    let mut labels = labels.unwrap_or_default();
    labels.insert(REVISION_HASH.into(), h.clone());
    let rev = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(want)),
        revision: max + 1,
    };
    match api.create(&PostParams::default(), &rev).await {
        Ok(_) => Ok((name, h)),
        // Made by a pass whose event has not arrived yet.
        Err(e) if crate::status_code(&e) == Some(409) => Ok((name, h)),
        Err(e) => Err(Error::api_named(
            "create",
            "controllerrevisions.apps",
            &name,
            e,
        )),
    }
}

/// Deletes the oldest revisions of `owner_uid` beyond `limit`
/// (`revisionHistoryLimit`), sparing any named in `in_use` (the current
/// and update revisions, by name or hash, and those live pods still carry
/// in their `controller-revision-hash` label), as upstream's history
/// cleanup does.
pub async fn trim(
    ctx: &Ctx,
    ns: &str,
    owner_uid: &str,
    limit: i32,
    in_use: &std::collections::HashSet<String>,
) -> Result<(), Error> {
    let used = |r: &ControllerRevision| {
        in_use.contains(&r.name_any())
            || r.labels()
                .get(REVISION_HASH)
                .is_some_and(|h| in_use.contains(h))
    };
    let spare: Vec<Arc<ControllerRevision>> = owned(ctx, ns, owner_uid)
        .into_iter()
        .filter(|r| !used(r))
        .collect();
    let excess = spare.len().saturating_sub(limit.max(0) as usize);
    if excess == 0 {
        return Ok(());
    }
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    // `owned` sorts oldest first.
    for r in spare.iter().take(excess) {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if crate::status_code(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::api_named(
                    "delete",
                    "controllerrevisions.apps",
                    &r.name_any(),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// The `controller-revision-hash` labels of `pods` (their revisions are
/// in use).
pub fn hashes_of<'a>(
    pods: impl IntoIterator<Item = &'a k8s_openapi::api::core::v1::Pod>,
) -> std::collections::HashSet<String> {
    pods.into_iter()
        .filter_map(|p| p.labels().get(REVISION_HASH).cloned())
        .collect()
}
