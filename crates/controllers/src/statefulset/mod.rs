//! The StatefulSet controller, as upstream's `pkg/controller/statefulset`:
//! pods with stable names `<set>-<ordinal>` (hostname the pod name,
//! subdomain the governing service), each with its own PersistentVolumeClaims
//! `<claim>-<set>-<ordinal>` from `volumeClaimTemplates`, kept across pod
//! deletion (and deleted only as `persistentVolumeClaimRetentionPolicy`
//! says). OrderedReady creates in ordinal order, each after the previous is
//! Running and Ready, and removes from the highest ordinal; Parallel does
//! both at once. RollingUpdate replaces pods from the highest ordinal down
//! to `partition`, one at a time; OnDelete only when a pod is deleted.
//! Templates are ControllerRevisions: `currentRevision`/`updateRevision`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::workload::revision::{self, REVISION_HASH};
use crate::workload::{Ctx, Key, Outcome, control, pods};

pub const POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";

fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// The template a ControllerRevision recorded.
fn template_of(ctx: &Ctx, ns: &str, owner_uid: &str, name: &str) -> Option<PodTemplateSpec> {
    let r = revision::owned(ctx, ns, owner_uid)
        .into_iter()
        .find(|r| r.name_any() == name)?;
    let mut t = r.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(o) = t.as_object_mut() {
        o.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

pub async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Outcome {
    let lane = &ctx.ss;
    let Some(set) = Ctx::get(&ctx.statefulsets, &key) else {
        lane.expectations.forget(&key);
        return Ok(None);
    };
    let set: StatefulSet = (*set).clone();
    let Some(spec) = set.spec.clone() else {
        return Ok(None);
    };
    let name = set.name_any();
    let uid = set.uid().unwrap_or_default();
    let satisfied = lane.expectations.satisfied(&key);
    let owner = pods::owner_ref(&set);
    let deleting = set.meta().deletion_timestamp.is_some();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.0);
    let owned = control::claim(
        &pod_api,
        ctx.pods_in(&key.0),
        &owner,
        Some(&spec.selector),
        deleting,
    )
    .await?;
    if deleting {
        return Ok(None);
    }
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    let collisions = set.status.as_ref().and_then(|s| s.collision_count);
    let (update_rev, _) = revision::ensure(
        &ctx,
        &key.0,
        &name,
        owner.clone(),
        labels,
        &spec.template,
        collisions,
    )
    .await?;
    let mut current_rev = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|r| template_of(&ctx, &key.0, &uid, r).is_some())
        .unwrap_or_else(|| update_rev.clone());
    let current_template =
        template_of(&ctx, &key.0, &uid, &current_rev).unwrap_or_else(|| spec.template.clone());
    let mut in_use = revision::hashes_of(owned.iter().map(|p| &**p));
    in_use.insert(update_rev.clone());
    in_use.insert(current_rev.clone());
    let limit = spec.revision_history_limit.unwrap_or(10);
    revision::trim(&ctx, &key.0, &uid, limit, &in_use).await?;

    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0);
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let rev_of = |p: &Pod| p.labels().get(REVISION_HASH).cloned().unwrap_or_default();

    let mut by_ord: BTreeMap<i32, &Pod> = BTreeMap::new();
    let mut condemned: Vec<&Pod> = Vec::new();
    for p in owned.iter().map(|p| &**p) {
        match ordinal_of(&name, &p.name_any()) {
            Some(o) if o >= start && o < start + replicas => {
                by_ord.insert(o, p);
            }
            _ => condemned.push(p),
        }
    }
    condemned
        .sort_by_key(|p| std::cmp::Reverse(ordinal_of(&name, &p.name_any()).unwrap_or(i32::MAX)));

    let healthy = |p: &Pod| {
        p.metadata.deletion_timestamp.is_none() && pods::phase(p) == "Running" && pods::is_ready(p)
    };
    let mut blocked = false;
    if satisfied {
        let mut create: Vec<Pod> = Vec::new();
        let mut delete: Vec<&Pod> = Vec::new();
        for ord in start..start + replicas {
            match by_ord.get(&ord) {
                None => {
                    let (tmpl, rev) = if rolling && ord < start + partition {
                        (&current_template, &current_rev)
                    } else {
                        (&spec.template, &update_rev)
                    };
                    ensure_claims(&ctx, &set, ord).await?;
                    create.push(new_pod(&set, tmpl, rev, ord, &owner));
                    if !parallel {
                        blocked = true;
                        break;
                    }
                }
                Some(p)
                    if matches!(pods::phase(p), "Failed" | "Succeeded")
                        && p.metadata.deletion_timestamp.is_none() =>
                {
                    delete.push(p);
                    if !parallel {
                        blocked = true;
                        break;
                    }
                }
                Some(p) if !parallel && !healthy(p) => {
                    blocked = true;
                    break;
                }
                Some(_) => {}
            }
        }
        // Scale down: highest ordinal first; OrderedReady one at a time,
        // only while everything else is healthy.
        if !blocked {
            let live: Vec<&Pod> = condemned
                .iter()
                .copied()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            if parallel {
                delete.extend(live);
            } else if condemned
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_none())
            {
                if let Some(p) = live.first() {
                    delete.push(p);
                    blocked = true;
                }
            } else {
                blocked = true;
            }
        }
        // Rolling update: highest ordinal first, down to the partition,
        // one pod at a time and only when every pod is healthy.
        if rolling && !blocked && delete.is_empty() && create.is_empty() {
            let all_healthy = by_ord.values().all(|p| healthy(p));
            if all_healthy {
                let stale = by_ord
                    .iter()
                    .rev()
                    .filter(|(o, _)| **o >= start + partition)
                    .find(|(_, p)| rev_of(p) != update_rev);
                if let Some((_, p)) = stale {
                    delete.push(p);
                }
            }
        }
        let retention_scaled = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .and_then(|p| p.when_scaled.as_deref())
            == Some("Delete");
        if retention_scaled {
            for p in delete
                .iter()
                .filter(|p| ordinal_of(&name, &p.name_any()).is_none_or(|o| o >= start + replicas))
            {
                own_claims_by_pod(&ctx, &set, p).await?;
            }
        }
        if !delete.is_empty() {
            control::delete_pods(&ctx.client, lane, &key, &delete).await?;
        }
        if !create.is_empty() {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.0);
            lane.expectations.expect(&key, create.len(), []);
            for p in &create {
                match api.create(&PostParams::default(), p).await {
                    Ok(_) => {}
                    Err(e) => {
                        lane.expectations.creation_observed(&key);
                        if crate::status_code(&e) != Some(409) {
                            return Err(Error::api_named("create", "pods", &p.name_any(), e));
                        }
                    }
                }
            }
        }
    }

    // Status.
    let active: Vec<&Pod> = owned
        .iter()
        .map(|p| &**p)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let now = jiff::Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let ready = active.iter().filter(|p| pods::is_ready(p)).count() as i32;
    let available = active
        .iter()
        .filter(|p| pods::available(p, min_ready, now).is_ok())
        .count() as i32;
    let updated = active.iter().filter(|p| rev_of(p) == update_rev).count() as i32;
    let mut current = active.iter().filter(|p| rev_of(p) == current_rev).count() as i32;
    if updated == replicas && active.len() as i32 == replicas && ready == replicas {
        current_rev = update_rev.clone();
        current = updated;
    }
    let status = json!({
        "observedGeneration": set.metadata.generation,
        "replicas": active.len(),
        "readyReplicas": ready,
        "availableReplicas": available,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_rev,
        "updateRevision": update_rev,
        "collisionCount": collisions.unwrap_or(0),
    });
    let cur = serde_json::to_value(&set.status).unwrap_or_default();
    let same = status
        .as_object()
        .is_some_and(|o| o.iter().all(|(k, v)| cur.get(k).unwrap_or(&json!(0)) == v));
    if !same {
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &key.0);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if crate::status_code(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::api_named(
                    "update status of",
                    "statefulsets.apps",
                    &name,
                    e,
                ));
            }
        }
    }
    Ok(None)
}

fn claim_name(claim: &str, set: &str, ord: i32) -> String {
    format!("{claim}-{set}-{ord}")
}

/// The pod for `ord`: stable name, identity labels, hostname/subdomain,
/// and its claims mounted in place of the templates' volumes.
fn new_pod(
    set: &StatefulSet,
    tmpl: &PodTemplateSpec,
    rev: &str,
    ord: i32,
    owner: &OwnerReference,
) -> Pod {
    let name = set.name_any();
    let pod_name = format!("{name}-{ord}");
    let ns = set.namespace().unwrap_or_default();
    let mut p = pods::from_template(tmpl, &ns, owner.clone(), "");
    p.metadata.generate_name = None;
    p.metadata.name = Some(pod_name.clone());
    let l = p.metadata.labels.get_or_insert_with(Default::default);
    l.insert(POD_NAME.into(), pod_name.clone());
    l.insert(POD_INDEX.into(), ord.to_string());
    l.insert(REVISION_HASH.into(), rev.to_string());
    let spec = set.spec.as_ref();
    if let Some(ps) = p.spec.as_mut() {
        ps.hostname = Some(pod_name.clone());
        if let Some(svc) = spec
            .and_then(|s| s.service_name.clone())
            .filter(|s| !s.is_empty())
        {
            ps.subdomain = Some(svc);
        }
        for claim in spec
            .and_then(|s| s.volume_claim_templates.clone())
            .unwrap_or_default()
        {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            let vols = ps.volumes.get_or_insert_with(Vec::new);
            vols.retain(|v| v.name != cname);
            vols.push(Volume {
                name: cname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&cname, &name, ord),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
    }
    p
}

/// Creates the claims of `ord` that do not exist yet. With
/// `whenDeleted: Delete` they are owned by the set (the garbage collector
/// removes them with it); otherwise nobody owns them and they stay.
async fn ensure_claims(ctx: &Ctx, set: &StatefulSet, ord: i32) -> Result<(), Error> {
    let Some(spec) = set.spec.as_ref() else {
        return Ok(());
    };
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    for tmpl in spec.volume_claim_templates.clone().unwrap_or_default() {
        let cname = claim_name(
            tmpl.metadata.name.as_deref().unwrap_or_default(),
            &name,
            ord,
        );
        if Ctx::get(&ctx.pvcs, &(ns.clone(), cname.clone())).is_some() {
            continue;
        }
        let mut pvc = PersistentVolumeClaim {
            metadata: tmpl.metadata.clone(),
            spec: tmpl.spec.clone(),
            status: None,
        };
        pvc.metadata.name = Some(cname.clone());
        pvc.metadata.namespace = Some(ns.clone());
        pvc.metadata.resource_version = None;
        pvc.metadata.uid = None;
        let labels = pvc.metadata.labels.get_or_insert_with(Default::default);
        for (k, v) in spec.selector.match_labels.clone().unwrap_or_default() {
            labels.insert(k, v);
        }
        if delete_with_set {
            let mut r = pods::owner_ref(set);
            r.controller = None;
            r.block_owner_deletion = Some(true);
            pvc.metadata.owner_references = Some(vec![r]);
        }
        match api.create(&PostParams::default(), &pvc).await {
            Ok(_) => {}
            Err(e) if crate::status_code(&e) == Some(409) => {}
            Err(e) => {
                return Err(Error::api_named(
                    "create",
                    "persistentvolumeclaims",
                    &cname,
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// `whenScaled: Delete`: a pod removed by scale-down takes its claims with
/// it (the garbage collector deletes them once the pod is gone).
async fn own_claims_by_pod(ctx: &Ctx, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
    let Some(spec) = set.spec.as_ref() else {
        return Ok(());
    };
    let Some(ord) = ordinal_of(&set.name_any(), &pod.name_any()) else {
        return Ok(());
    };
    let ns = set.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    for tmpl in spec.volume_claim_templates.clone().unwrap_or_default() {
        let cname = claim_name(
            tmpl.metadata.name.as_deref().unwrap_or_default(),
            &set.name_any(),
            ord,
        );
        let Some(pvc) = Ctx::get(&ctx.pvcs, &(ns.clone(), cname.clone())) else {
            continue;
        };
        if pvc
            .owner_references()
            .iter()
            .any(|r| Some(&r.uid) == pod.metadata.uid.as_ref())
        {
            continue;
        }
        let mut refs = pvc.owner_references().to_vec();
        refs.push(OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            controller: None,
            block_owner_deletion: Some(true),
        });
        let body = json!({"metadata": {"ownerReferences": refs}});
        match api
            .patch(&cname, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(_) => {}
            Err(e) if crate::status_code(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::api_named(
                    "update",
                    "persistentvolumeclaims",
                    &cname,
                    e,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_and_claim_names() {
        assert_eq!(ordinal_of("web", "web-2"), Some(2));
        assert_eq!(ordinal_of("web", "web-api-2"), None);
        assert_eq!(ordinal_of("web", "webx-1"), None);
        assert_eq!(claim_name("data", "web", 1), "data-web-1");
    }
}
