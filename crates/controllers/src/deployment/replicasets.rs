//! A Deployment's ReplicaSets: which one is new (its template is the
//! Deployment's), revisions and their annotations, creating the new one
//! under upstream's `<deployment>-<pod-template-hash>` name, resizing, and
//! trimming history to `revisionHistoryLimit`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use crate::Error;
use crate::workload::{hash, pods};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Deployment annotations never copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}
pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}
pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}
pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
pub fn annotated_max(rs: &ReplicaSet) -> Option<i32> {
    rs.annotations()
        .get(MAX_REPLICAS)
        .and_then(|v| v.parse().ok())
}
pub fn annotated_desired(rs: &ReplicaSet) -> Option<i32> {
    rs.annotations()
        .get(DESIRED_REPLICAS)
        .and_then(|v| v.parse().ok())
}

/// The template as JSON without the `pod-template-hash` label (upstream's
/// `EqualIgnoreHash`).
fn without_hash(t: Option<&PodTemplateSpec>) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty()
            && let Some(m) = v.pointer_mut("/metadata").and_then(|m| m.as_object_mut())
        {
            m.remove("labels");
        }
    }
    v
}

pub fn same_template(a: Option<&PodTemplateSpec>, b: Option<&PodTemplateSpec>) -> bool {
    without_hash(a) == without_hash(b)
}

/// Splits `rss` into the new ReplicaSet (the oldest one whose template is
/// the Deployment's) and the others, each sorted oldest first.
pub fn split(d: &Deployment, mut rss: Vec<ReplicaSet>) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    rss.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let template = d.spec.as_ref().map(|s| &s.template);
    let pos = rss
        .iter()
        .position(|rs| same_template(rs.spec.as_ref().and_then(|s| s.template.as_ref()), template));
    let new = pos.map(|i| rss.remove(i));
    (new, rss)
}

/// Copies the Deployment's annotations onto `rs`; whether anything changed.
fn copy_annotations(d: &Deployment, rs: &mut BTreeMap<String, String>) -> bool {
    let mut changed = false;
    for (k, v) in d.annotations() {
        if NOT_COPIED.contains(&k.as_str()) {
            continue;
        }
        if rs.get(k) != Some(v) {
            rs.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Sets the revision annotations of the new ReplicaSet; whether anything
/// changed. A ReplicaSet brought back (rollback) gets the next revision
/// and remembers its old ones in `revision-history`, as upstream.
fn set_revision(annotations: &mut BTreeMap<String, String>, new_revision: i64) -> bool {
    let old = annotations.get(REVISION).cloned();
    let old_n = old
        .as_deref()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    if old_n >= new_revision {
        return false;
    }
    annotations.insert(REVISION.into(), new_revision.to_string());
    if let Some(old) = old.filter(|o| !o.is_empty()) {
        let history = match annotations.get(REVISION_HISTORY) {
            Some(h) if !h.is_empty() => format!("{h},{old}"),
            _ => old,
        };
        annotations.insert(REVISION_HISTORY.into(), history);
    }
    true
}

/// Sets the sizing annotations; whether anything changed.
fn set_sizes(annotations: &mut BTreeMap<String, String>, desired: i32, max: i32) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if annotations.get(k) != Some(&v) {
            annotations.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

pub fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// What became of the new ReplicaSet in [`ensure_new`].
pub enum NewRs {
    Existing(ReplicaSet),
    Created(ReplicaSet),
    None,
}

/// Upstream's `getNewReplicaSet`: brings an existing new ReplicaSet's
/// annotations up to date, or (if `create`) creates it with `replicas`.
pub async fn ensure_new(
    api: &Api<ReplicaSet>,
    d: &Deployment,
    new: Option<ReplicaSet>,
    old: &[ReplicaSet],
    create: bool,
    replicas: i32,
    max_surge: i32,
) -> Result<NewRs, Error> {
    let max_old = old.iter().map(revision).max().unwrap_or(0);
    let new_revision = max_old + 1;
    let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
    let want = desired(d);
    if let Some(mut rs) = new {
        let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
        let mut changed = copy_annotations(d, annotations);
        changed |= set_revision(annotations, new_revision);
        changed |= set_sizes(annotations, want, want + max_surge);
        let spec = rs.spec.get_or_insert_with(Default::default);
        if spec.min_ready_seconds != min_ready {
            spec.min_ready_seconds = min_ready;
            changed = true;
        }
        if changed {
            rs = api
                .replace(&rs.name_any(), &PostParams::default(), &rs)
                .await
                .map_err(|e| Error::api_named("update", "replicasets.apps", &rs.name_any(), e))?;
        }
        return Ok(NewRs::Existing(rs));
    }
    if !create {
        return Ok(NewRs::None);
    }
    let Some(spec) = d.spec.as_ref() else {
        return Ok(NewRs::None);
    };
    let collisions = d.status.as_ref().and_then(|s| s.collision_count);
    let h = hash::template_hash(&spec.template, collisions);
    let mut template = spec.template.clone();
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), h.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), h.clone());
    let mut annotations = BTreeMap::new();
    copy_annotations(d, &mut annotations);
    set_revision(&mut annotations, new_revision);
    set_sizes(&mut annotations, want, want + max_surge);
    let name = format!("{}-{h}", d.name_any());
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: d.namespace(),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            annotations: Some(annotations),
            owner_references: Some(vec![pods::owner_ref(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: min_ready,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    match api.create(&PostParams::default(), &rs).await {
        Ok(rs) => Ok(NewRs::Created(rs)),
        Err(e) if crate::status_code(&e) == Some(409) => {
            // Ours already (a pass whose event we have not seen)? Else a
            // hash collision: count it, so the next name differs.
            let existing = api
                .get_opt(&name)
                .await
                .map_err(|e| Error::api_named("get", "replicasets.apps", &name, e))?;
            if let Some(existing) = existing {
                let ours = pods::controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                if ours
                    && same_template(
                        existing.spec.as_ref().and_then(|s| s.template.as_ref()),
                        Some(&spec.template),
                    )
                {
                    return Ok(NewRs::Existing(existing));
                }
            }
            let dapi: Api<Deployment> = Api::namespaced(
                api.clone().into_client(),
                &d.namespace().unwrap_or_default(),
            );
            let body = json!({"status": {"collisionCount": collisions.unwrap_or(0) + 1}});
            dapi.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(body))
                .await
                .map_err(|e| {
                    Error::api_named("update status of", "deployments.apps", &d.name_any(), e)
                })?;
            Err(Error::api_named("create", "replicasets.apps", &name, e))
        }
        Err(e) => Err(Error::api_named("create", "replicasets.apps", &name, e)),
    }
}

/// Sets `rs`'s size (and sizing annotations); returns the updated object.
pub async fn scale(
    api: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    replicas: i32,
    d: &Deployment,
    max_surge: i32,
) -> Result<ReplicaSet, Error> {
    let want = desired(d);
    let mut annotations = rs.annotations().clone();
    let sizes_changed = set_sizes(&mut annotations, want, want + max_surge);
    if spec_replicas(rs) == replicas && !sizes_changed {
        return Ok(rs.clone());
    }
    let body = json!({
        "metadata": {"annotations": {DESIRED_REPLICAS: want.to_string(), MAX_REPLICAS: (want + max_surge).to_string()}},
        "spec": {"replicas": replicas},
    });
    api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(body))
        .await
        .map_err(|e| Error::api_named("scale", "replicasets.apps", &rs.name_any(), e))
}

/// Upstream's `cleanupDeployment`: deletes the oldest empty old
/// ReplicaSets beyond `revisionHistoryLimit` (default 10).
pub async fn cleanup(
    api: &Api<ReplicaSet>,
    d: &Deployment,
    old: &[ReplicaSet],
) -> Result<(), Error> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let mut empty: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| {
            rs.metadata.deletion_timestamp.is_none()
                && spec_replicas(rs) == 0
                && status_replicas(rs) == 0
                && rs
                    .status
                    .as_ref()
                    .and_then(|s| s.observed_generation)
                    .unwrap_or(0)
                    >= rs.metadata.generation.unwrap_or(0)
        })
        .collect();
    let alive = old.len() - empty.len();
    let _ = alive;
    if empty.len() <= limit {
        return Ok(());
    }
    empty.sort_by_key(|rs| revision(rs));
    let n = empty.len() - limit;
    for rs in &empty[..n] {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: rs.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&rs.name_any(), &dp).await {
            Ok(_) => {}
            Err(e) if crate::status_code(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::api_named(
                    "delete",
                    "replicasets.apps",
                    &rs.name_any(),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// For proportional scaling and history: the sets as owned objects.
pub fn owned(rss: Vec<Arc<ReplicaSet>>) -> Vec<ReplicaSet> {
    rss.into_iter().map(|r| (*r).clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_bumps_revision_and_keeps_history() {
        let mut a = BTreeMap::new();
        assert!(set_revision(&mut a, 1));
        assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
        assert!(!a.contains_key(REVISION_HISTORY));
        assert!(set_revision(&mut a, 3));
        assert_eq!(a.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert!(!set_revision(&mut a, 2), "never goes back");
        assert!(set_revision(&mut a, 5));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
    }

    #[test]
    fn the_hash_label_does_not_make_templates_differ() {
        let mut t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        let plain = t.clone();
        t.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), "abc".into());
        assert!(same_template(Some(&t), Some(&plain)));
        t.spec.as_mut().unwrap().containers[0].image = Some("nginx".into());
        assert!(!same_template(Some(&t), Some(&plain)));
    }
}
