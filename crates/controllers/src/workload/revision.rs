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
use kube::api::{Api, Patch, PatchParams, PostParams};
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
