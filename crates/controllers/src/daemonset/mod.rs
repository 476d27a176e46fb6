//! The DaemonSet controller, as upstream's `pkg/controller/daemon`: one
//! pod per eligible node ([`eligible`]), pinned to its node through a
//! `metadata.name` node affinity (the scheduler binds it), replaced
//! RollingUpdate-style (maxUnavailable, maxSurge) or OnDelete when the
//! template changes. Templates are recorded as ControllerRevisions and
//! pods carry the `controller-revision-hash` of theirs.

mod eligible;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::deployment::scaled_value;
use crate::workload::revision::{self, REVISION_HASH};
use crate::workload::{Ctx, Key, Outcome, control, pods};

fn pod_hash(p: &Pod) -> Option<&str> {
    p.labels().get(REVISION_HASH).map(String::as_str)
}

pub async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Outcome {
    let lane = &ctx.ds;
    let Some(ds) = Ctx::get(&ctx.daemonsets, &key) else {
        lane.expectations.forget(&key);
        return Ok(None);
    };
    let ds: DaemonSet = (*ds).clone();
    let Some(spec) = ds.spec.clone() else {
        return Ok(None);
    };
    let satisfied = lane.expectations.satisfied(&key);
    let owner = pods::owner_ref(&ds);
    let deleting = ds.meta().deletion_timestamp.is_some();
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
    let template = spec.template.clone();
    let pod_spec = template.spec.clone().unwrap_or_default();
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
    let (_, hash) = revision::ensure(
        &ctx,
        &key.0,
        &ds.name_any(),
        owner.clone(),
        labels,
        &template,
        collisions,
    )
    .await?;
    let mut in_use = revision::hashes_of(owned.iter().map(|p| &**p));
    in_use.insert(hash.clone());
    let limit = spec.revision_history_limit.unwrap_or(10);
    revision::trim(&ctx, &key.0, &owner.uid, limit, &in_use).await?;

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = jiff::Timestamp::now();
    let nodes = ctx.nodes.state();
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in owned.iter().map(|p| &**p) {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let node = eligible::target_node(p.spec.as_ref()).unwrap_or_default();
        by_node.entry(node).or_default().push(p);
    }
    let mut create_on: Vec<String> = Vec::new();
    let mut delete: Vec<&Pod> = Vec::new();
    let mut st = Counts::default();
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let ru = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let desired = nodes
        .iter()
        .filter(|n| eligible::should_run(&pod_spec, n))
        .count() as i32;
    let max_surge = if rolling {
        scaled_value(ru.and_then(|r| r.max_surge.as_ref()), 0, desired, true).max(0)
    } else {
        0
    };
    let max_unavailable = if rolling {
        let u = scaled_value(
            ru.and_then(|r| r.max_unavailable.as_ref()),
            -1,
            desired,
            true,
        );
        // Absent means 1; both zero would stall the update.
        if u < 0 || (u == 0 && max_surge == 0) {
            1
        } else {
            u
        }
    } else {
        0
    };
    let available = |p: &Pod| pods::available(p, min_ready, now).is_ok();
    let mut next_check: Option<Duration> = None;
    // Nodes whose old pod may be replaced, with whether it is available.
    let mut old_on: Vec<(String, &Pod, bool)> = Vec::new();
    let mut surging = 0;
    for node in &nodes {
        let name = node.name_any();
        let here = by_node.remove(&name).unwrap_or_default();
        let should = eligible::should_run(&pod_spec, node);
        if !should {
            if !here.is_empty() {
                st.misscheduled += 1;
            }
            delete.extend(here);
            continue;
        }
        st.desired += 1;
        let (failed, mut running): (Vec<&Pod>, Vec<&Pod>) =
            here.into_iter().partition(|p| pods::phase(p) == "Failed");
        delete.extend(failed);
        if running.is_empty() {
            create_on.push(name);
            continue;
        }
        running.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let (new, old): (Vec<&Pod>, Vec<&Pod>) = running
            .iter()
            .partition(|p| pod_hash(p) == Some(hash.as_str()));
        // One pod per node: the newest current one, or the oldest old one.
        let keep_new = new.last().copied();
        delete.extend(new.iter().filter(|p| Some(**p) != keep_new));
        let keep_old = old.first().copied();
        delete.extend(old.iter().skip(1));
        st.current += 1;
        let shown = keep_new.or(keep_old);
        if let Some(p) = shown {
            if pods::is_ready(p) {
                st.ready += 1;
            }
            match pods::available(p, min_ready, now) {
                Ok(()) => st.available += 1,
                Err(Some(w)) => next_check = Some(next_check.map_or(w, |n| n.min(w))),
                Err(None) => {}
            }
        }
        match (keep_new, keep_old) {
            (Some(n), Some(o)) => {
                if available(n) {
                    delete.push(o);
                } else {
                    surging += 1;
                }
                st.updated += 1;
            }
            (Some(_), None) => st.updated += 1,
            (None, Some(o)) => old_on.push((node.name_any(), o, available(o))),
            (None, None) => {}
        }
    }
    // Pods on nodes that no longer exist.
    for (_, here) in by_node {
        delete.extend(here);
    }
    if rolling {
        let mut unavailable = st.desired - st.available;
        for (node, old, ok) in old_on {
            if !ok {
                // Not serving anyway: replace at once.
                delete.push(old);
            } else if max_surge > 0 {
                if surging < max_surge {
                    surging += 1;
                    create_on.push(node);
                }
            } else if unavailable < max_unavailable {
                unavailable += 1;
                delete.push(old);
            }
        }
    }

    if satisfied {
        if !delete.is_empty() {
            control::delete_pods(&ctx.client, lane, &key, &delete).await?;
        }
        if !create_on.is_empty() {
            let prefix = pods::generate_name_prefix(&ds.name_any());
            let generation = ds.metadata.generation.unwrap_or(1).to_string();
            let new: Vec<Pod> = create_on
                .iter()
                .map(|node| {
                    let mut p = pods::from_template(&template, &key.0, owner.clone(), &prefix);
                    let l = p.metadata.labels.get_or_insert_with(Default::default);
                    l.insert(REVISION_HASH.into(), hash.clone());
                    l.insert("pod-template-generation".into(), generation.clone());
                    if let Some(s) = p.spec.as_mut() {
                        eligible::with_default_tolerations(s);
                        eligible::pin_to_node(s, node);
                    }
                    p
                })
                .collect();
            control::create_slow_start(&ctx.client, lane, &key, new).await?;
        }
    }
    write_status(&ctx, &ds, &st).await?;
    Ok(next_check.map(|d| d + Duration::from_millis(100)))
}

#[derive(Default)]
struct Counts {
    desired: i32,
    current: i32,
    misscheduled: i32,
    ready: i32,
    updated: i32,
    available: i32,
}

async fn write_status(ctx: &Ctx, ds: &DaemonSet, c: &Counts) -> Result<(), Error> {
    let body = json!({
        "desiredNumberScheduled": c.desired,
        "currentNumberScheduled": c.current,
        "numberMisscheduled": c.misscheduled,
        "numberReady": c.ready,
        "updatedNumberScheduled": c.updated,
        "numberAvailable": c.available,
        "numberUnavailable": (c.desired - c.available).max(0),
        "observedGeneration": ds.metadata.generation,
    });
    let cur = serde_json::to_value(&ds.status).unwrap_or_default();
    let same = body
        .as_object()
        .is_some_and(|o| o.iter().all(|(k, v)| cur.get(k).unwrap_or(&json!(0)) == v));
    if same {
        return Ok(());
    }
    let api: Api<DaemonSet> =
        Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    match api
        .patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": body})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::api_named(
            "update status of",
            "daemonsets.apps",
            &ds.name_any(),
            e,
        )),
    }
}
