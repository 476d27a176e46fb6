//! The Job controller, as upstream's `pkg/controller/job`: runs pods until
//! `completions` succeed (or, Indexed, until every index has), within
//! `parallelism`, recreating failed ones after a backoff until
//! `backoffLimit`, `activeDeadlineSeconds` or a `podFailurePolicy` rule
//! ends it.
//!
//! Finished pods are counted through the `batch.kubernetes.io/job-tracking`
//! finalizer, as upstream: a finished pod's uid goes into
//! `status.uncountedTerminatedPods` first, then its finalizer is removed,
//! then it moves into `succeeded`/`failed`. A restart between any two
//! steps finds the uid recorded and counts it exactly once.

mod decide;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::workload::{Ctx, Key, Outcome, control, pods, rank};
use decide::Verdict;

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

fn has_cond(s: &JobStatus, type_: &str) -> bool {
    s.conditions
        .as_ref()
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

fn cond_of<'a>(s: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    s.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

fn set_cond(
    s: &mut JobStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) {
    let conds = s.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(Time(now));
        return;
    }
    conds.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
}

fn index_of(p: &Pod) -> Option<i32> {
    p.annotations().get(COMPLETION_INDEX)?.parse().ok()
}

fn has_finalizer(p: &Pod) -> bool {
    p.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

pub async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Outcome {
    let lane = &ctx.job;
    let Some(job) = Ctx::get(&ctx.jobs, &key) else {
        lane.expectations.forget(&key);
        return Ok(None);
    };
    let job: Job = (*job).clone();
    let Some(spec) = job.spec.clone() else {
        return Ok(None);
    };
    let satisfied = lane.expectations.satisfied(&key);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.0);
    let owner = pods::owner_ref(&job);
    let deleting = job.meta().deletion_timestamp.is_some();
    let owned = control::claim(
        &pod_api,
        ctx.pods_in(&key.0),
        &owner,
        spec.selector.as_ref(),
        deleting,
    )
    .await?;
    let now = jiff::Timestamp::now();
    let old_status = job.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let finished = has_cond(&status, "Complete") || has_cond(&status, "Failed");

    // 1. Record finished pods (and pods deleted before finishing) that
    //    still hold our finalizer.
    let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut un_s: BTreeSet<String> = uncounted
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut un_f: BTreeSet<String> = uncounted
        .failed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let rules = spec
        .pod_failure_policy
        .as_ref()
        .map(|p| p.rules.clone())
        .unwrap_or_default();
    let mut fail_job: Option<String> = None;
    let mut ignored: HashSet<String> = HashSet::new();
    let mut to_release: Vec<&Pod> = Vec::new();
    for p in owned.iter().map(|p| &**p) {
        if !has_finalizer(p) {
            continue;
        }
        let uid = p.uid().unwrap_or_default();
        match pods::phase(p) {
            "Succeeded" => {
                un_s.insert(uid);
            }
            "Failed" => match decide::judge(&rules, p) {
                Verdict::Ignore => {
                    ignored.insert(uid.clone());
                }
                Verdict::FailJob(msg) => {
                    fail_job.get_or_insert(msg);
                    un_f.insert(uid);
                }
                Verdict::Count | Verdict::FailIndex => {
                    un_f.insert(uid);
                }
            },
            _ if p.metadata.deletion_timestamp.is_some() || finished => {
                // Gone before finishing: a failure, as upstream counts it.
                un_f.insert(uid);
            }
            _ => continue,
        }
        to_release.push(p);
    }
    let recorded = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
    if recorded(&un_s) != uncounted.succeeded.clone().unwrap_or_default()
        || recorded(&un_f) != uncounted.failed.clone().unwrap_or_default()
    {
        uncounted.succeeded = Some(recorded(&un_s));
        uncounted.failed = Some(recorded(&un_f));
        status.uncounted_terminated_pods = Some(uncounted.clone());
        write_status(&ctx, &job, &status).await?;
    }
    // 2. Release them.
    for p in &to_release {
        let mut fins = p.finalizers().to_vec();
        fins.retain(|f| f != TRACKING_FINALIZER);
        let body = json!({"metadata": {"finalizers": if fins.is_empty() { serde_json::Value::Null } else { json!(fins) }, "resourceVersion": p.resource_version()}});
        match pod_api
            .patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(_) => {}
            Err(e) if crate::status_code(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::api_named(
                    "remove finalizer of",
                    "pods",
                    &p.name_any(),
                    e,
                ));
            }
        }
    }
    // 3. Count what is released (or gone).
    let still_held: HashSet<String> = owned
        .iter()
        .filter(|p| has_finalizer(p) && !to_release.iter().any(|r| r.uid() == p.uid()))
        .filter_map(|p| p.uid())
        .collect();
    let mut completed: BTreeSet<i32> =
        decide::parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));
    let by_uid: BTreeMap<String, &Pod> = owned
        .iter()
        .filter_map(|p| Some((p.uid()?, &**p)))
        .collect();
    let mut succeeded = status.succeeded.unwrap_or(0);
    let mut failed = status.failed.unwrap_or(0);
    let indexed = decide::indexed(&spec);
    for uid in std::mem::take(&mut un_s) {
        if still_held.contains(&uid) {
            un_s.insert(uid);
            continue;
        }
        if indexed {
            match by_uid.get(&uid).and_then(|p| index_of(p)) {
                Some(i) if !completed.contains(&i) => {
                    completed.insert(i);
                    succeeded += 1;
                }
                Some(_) => {}
                None => succeeded += 1,
            }
        } else {
            succeeded += 1;
        }
    }
    for uid in std::mem::take(&mut un_f) {
        if still_held.contains(&uid) {
            un_f.insert(uid);
            continue;
        }
        failed += 1;
    }
    status.succeeded = Some(succeeded);
    status.failed = Some(failed);
    if indexed {
        status.completed_indexes = Some(decide::format_indexes(&completed));
    }
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: Some(recorded(&un_s)),
        failed: Some(recorded(&un_f)),
    });
    // `backoffLimitPerIndex`: each index has its own failure budget,
    // derived from the failed pods (which the Job keeps) and the indexes
    // already recorded as failed.
    let per_index_limit = spec.backoff_limit_per_index.filter(|_| indexed);
    let mut by_index = decide::IndexFailures::default();
    if let Some(limit) = per_index_limit {
        by_index.failed = decide::parse_indexes(status.failed_indexes.as_deref().unwrap_or(""));
        for p in owned.iter().filter(|p| pods::phase(p) == "Failed") {
            let Some(i) = index_of(p) else {
                continue;
            };
            let created_with = p
                .annotations()
                .get(decide::INDEX_FAILURE_COUNT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let verdict = decide::judge(&rules, p);
            decide::note_index_failure(
                &mut by_index,
                i,
                created_with,
                &verdict,
                failed_at(p),
                limit,
            );
        }
        by_index.failed.retain(|i| !completed.contains(i));
        status.failed_indexes = Some(decide::format_indexes(&by_index.failed));
    }

    let active: Vec<&Pod> = owned
        .iter()
        .map(|p| &**p)
        .filter(|p| pods::is_active(p))
        .collect();
    status.active = Some(active.len() as i32);
    status.ready = Some(active.iter().filter(|p| pods::is_ready(p)).count() as i32);
    let mut again: Option<Duration> = None;

    if finished {
        write_status(&ctx, &job, &status).await?;
        return ttl(&ctx, &job, now).await;
    }

    // 4. Decide the Job's fate.
    let suspended = spec.suspend == Some(true);
    if !has_cond(&status, "FailureTarget") && !has_cond(&status, "SuccessCriteriaMet") {
        // Upstream defaults backoffLimit to 6, or to "unlimited" when
        // each index has its own limit.
        let backoff_limit = spec.backoff_limit.unwrap_or(if per_index_limit.is_some() {
            i32::MAX
        } else {
            6
        });
        let completions = spec.completions.unwrap_or(1);
        let too_many_failed_indexes = per_index_limit.is_some()
            && spec
                .max_failed_indexes
                .is_some_and(|m| by_index.failed.len() as i32 > m);
        let indexes_settled_with_failures = per_index_limit.is_some()
            && !by_index.failed.is_empty()
            && (completed.len() + by_index.failed.len()) as i32 >= completions;
        let success_rule = if indexed {
            decide::success_rule(&spec, &completed)
        } else {
            None
        };
        let deadline_passed = spec
            .active_deadline_seconds
            .zip(status.start_time.as_ref())
            .and_then(|(secs, start)| {
                let at = start.0 + jiff::SignedDuration::from_secs(secs);
                if at <= now {
                    Some(())
                } else {
                    again = Some(
                        Duration::try_from(at.duration_since(now)).unwrap_or_default()
                            + Duration::from_millis(100),
                    );
                    None
                }
            });
        let done = if indexed {
            completed.len() as i32 >= spec.completions.unwrap_or(1)
        } else {
            match spec.completions {
                Some(c) => succeeded >= c,
                None => succeeded > 0 && active.is_empty(),
            }
        };
        if let Some(msg) = fail_job {
            set_cond(
                &mut status,
                "FailureTarget",
                "True",
                "PodFailurePolicy",
                &msg,
                now,
            );
        } else if too_many_failed_indexes {
            set_cond(
                &mut status,
                "FailureTarget",
                "True",
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
                now,
            );
        } else if failed > backoff_limit {
            set_cond(
                &mut status,
                "FailureTarget",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                now,
            );
        } else if deadline_passed.is_some() && !suspended {
            set_cond(
                &mut status,
                "FailureTarget",
                "True",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                now,
            );
        } else if indexes_settled_with_failures {
            set_cond(
                &mut status,
                "FailureTarget",
                "True",
                "FailedIndexes",
                "Job has failed indexes",
                now,
            );
        } else if let Some(rule) = success_rule {
            set_cond(
                &mut status,
                "SuccessCriteriaMet",
                "True",
                "SuccessPolicy",
                &format!("Matched rules at index {rule}"),
                now,
            );
        } else if done {
            set_cond(
                &mut status,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            );
        }
    }
    let terminal = cond_of(&status, "FailureTarget")
        .or_else(|| cond_of(&status, "SuccessCriteriaMet"))
        .cloned();
    if let Some(t) = terminal {
        // Finish: no pod may keep running, then the final condition.
        if !active.is_empty() {
            write_status(&ctx, &job, &status).await?;
            control::delete_pods(&ctx.client, &ctx.job, &key, &active).await?;
            return Ok(None);
        }
        if !un_s.is_empty() || !un_f.is_empty() {
            write_status(&ctx, &job, &status).await?;
            return Ok(Some(Duration::from_millis(500)));
        }
        let final_type = if t.type_ == "FailureTarget" {
            "Failed"
        } else {
            "Complete"
        };
        let reason = t.reason.clone().unwrap_or_default();
        let msg = t.message.clone().unwrap_or_default();
        set_cond(&mut status, final_type, "True", &reason, &msg, now);
        if final_type == "Complete" {
            status.completion_time = Some(Time(now));
        }
        status.active = Some(0);
        write_status(&ctx, &job, &status).await?;
        return ttl(&ctx, &job, now).await;
    }

    // 5. Suspension.
    if suspended {
        if !active.is_empty() {
            control::delete_pods(&ctx.client, &ctx.job, &key, &active).await?;
        }
        set_cond(
            &mut status,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        );
        status.start_time = None;
        write_status(&ctx, &job, &status).await?;
        return Ok(None);
    }
    if status.conditions.as_ref().is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "Suspended" && c.status == "True")
    }) {
        set_cond(
            &mut status,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        );
    }
    if status.start_time.is_none() {
        status.start_time = Some(Time(now));
        if let Some(secs) = spec.active_deadline_seconds {
            again = Some(Duration::from_secs(secs.max(0) as u64) + Duration::from_millis(100));
        }
    }

    // 6. Pods: as many as wanted, after the failure backoff.
    if satisfied && !deleting {
        let want = decide::want_active(
            &spec,
            if indexed {
                (completed.len() + by_index.failed.len()) as i32
            } else {
                succeeded
            },
            succeeded > 0,
        ) as usize;
        if active.len() > want {
            let mut ranked = active.clone();
            ranked.sort_by(|a, b| rank::delete_first(a, b));
            control::delete_pods(&ctx.client, &ctx.job, &key, &ranked[..active.len() - want])
                .await?;
        } else if active.len() < want {
            // Per-index Jobs back off per index; others per Job.
            let (wait, skip) = if per_index_limit.is_some() {
                index_backoff(&by_index, now)
            } else {
                (recreate_wait(&owned, failed, now), BTreeSet::new())
            };
            if let Some(w) = Some(wait).filter(|w| *w > Duration::ZERO) {
                again = Some(again.map_or(w, |a| a.min(w)));
            }
            let new = if per_index_limit.is_some() || wait == Duration::ZERO {
                let per_index = per_index_limit.map(|_| &by_index);
                new_pods(
                    &job,
                    &key,
                    &active,
                    &completed,
                    &skip,
                    per_index,
                    want - active.len(),
                )
            } else {
                Vec::new()
            };
            if !new.is_empty() {
                write_status(&ctx, &job, &status).await?;
                let created = control::create_slow_start(&ctx.client, &ctx.job, &key, new).await;
                created?;
                return Ok(again);
            }
        }
    }
    write_status(&ctx, &job, &status).await?;
    Ok(again)
}

/// When a failed pod's last container finished.
fn failed_at(p: &Pod) -> Option<jiff::Timestamp> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
                .map(|t| t.0)
        })
        .max()
}

/// For per-index backoff: the indexes still backing off (failed too
/// recently for their own failure count) and the shortest remaining wait
/// among them (zero when none waits).
fn index_backoff(
    by_index: &decide::IndexFailures,
    now: jiff::Timestamp,
) -> (Duration, BTreeSet<i32>) {
    let mut skip = by_index.failed.clone();
    let mut wait: Option<Duration> = None;
    for (i, last) in &by_index.last_failure {
        let count = by_index.counts.get(i).copied().unwrap_or(0);
        let at = *last + jiff::SignedDuration::try_from(decide::backoff(count)).unwrap_or_default();
        if at > now {
            skip.insert(*i);
            let w = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            wait = Some(wait.map_or(w, |x| x.min(w)));
        }
    }
    (wait.unwrap_or_default(), skip)
}

/// How long before failed pods may be replaced: the backoff for the
/// failures so far, from the last failure.
fn recreate_wait(owned: &[Arc<Pod>], failed: i32, now: jiff::Timestamp) -> Duration {
    if failed <= 0 {
        return Duration::ZERO;
    }
    let last = owned
        .iter()
        .filter(|p| pods::phase(p) == "Failed")
        .filter_map(|p| failed_at(p))
        .max();
    let Some(last) = last else {
        return Duration::ZERO;
    };
    let at = last + jiff::SignedDuration::try_from(decide::backoff(failed)).unwrap_or_default();
    if at <= now {
        Duration::ZERO
    } else {
        Duration::try_from(at.duration_since(now)).unwrap_or_default()
    }
}

/// `n` new pods; Indexed Jobs get the lowest missing indexes not in
/// `skip`, their index annotation and label, hostname and
/// `JOB_COMPLETION_INDEX`, and (per-index backoff) the index's failure
/// count so far.
fn new_pods(
    job: &Job,
    key: &Key,
    active: &[&Pod],
    completed: &BTreeSet<i32>,
    skip: &BTreeSet<i32>,
    per_index: Option<&decide::IndexFailures>,
    n: usize,
) -> Vec<Pod> {
    let Some(spec) = job.spec.as_ref() else {
        return Vec::new();
    };
    let owner = pods::owner_ref(job);
    let name = job.name_any();
    let make = |index: Option<i32>| {
        let prefix = match index {
            Some(i) => pods::generate_name_prefix(&format!("{name}-{i}")),
            None => pods::generate_name_prefix(&name),
        };
        let mut p = pods::from_template(&spec.template, &key.0, owner.clone(), &prefix);
        p.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(TRACKING_FINALIZER.into());
        if let Some(i) = index {
            let annotations = p.metadata.annotations.get_or_insert_with(Default::default);
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            if let Some(f) = per_index {
                let count = f.counts.get(&i).copied().unwrap_or(0);
                annotations.insert(decide::INDEX_FAILURE_COUNT.into(), count.to_string());
            }
            p.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(COMPLETION_INDEX.into(), i.to_string());
            if let Some(ps) = p.spec.as_mut() {
                if ps.hostname.is_none() {
                    ps.hostname = Some(format!("{name}-{i}"));
                }
                for c in ps
                    .containers
                    .iter_mut()
                    .chain(ps.init_containers.iter_mut().flatten())
                {
                    c.env.get_or_insert_with(Vec::new).push(EnvVar {
                        name: "JOB_COMPLETION_INDEX".into(),
                        value: None,
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".into()),
                                field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                            }),
                            ..Default::default()
                        }),
                    });
                }
            }
        }
        p
    };
    if decide::indexed(spec) {
        let running: HashSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
        (0..spec.completions.unwrap_or(1))
            .filter(|i| !completed.contains(i) && !running.contains(i) && !skip.contains(i))
            .take(n)
            .map(|i| make(Some(i)))
            .collect()
    } else {
        (0..n).map(|_| make(None)).collect()
    }
}

/// `ttlSecondsAfterFinished`: deletes the finished Job (and, in the
/// background, its pods) once the time is up.
async fn ttl(ctx: &Ctx, job: &Job, now: jiff::Timestamp) -> Outcome {
    let Some(secs) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(None);
    };
    if job.meta().deletion_timestamp.is_some() {
        return Ok(None);
    }
    let status = job.status.clone().unwrap_or_default();
    let finished_at = ["Complete", "Failed"]
        .iter()
        .filter_map(|t| {
            cond_of(&status, t)?
                .last_transition_time
                .as_ref()
                .map(|t| t.0)
        })
        .max()
        .unwrap_or(now);
    let at = finished_at + jiff::SignedDuration::from_secs(secs as i64);
    if at > now {
        return Ok(Some(
            Duration::try_from(at.duration_since(now)).unwrap_or_default()
                + Duration::from_millis(100),
        ));
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(kube::api::Preconditions {
            uid: job.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&job.name_any(), &dp).await {
        Ok(_) => Ok(None),
        Err(e) if matches!(crate::status_code(&e), Some(404 | 409)) => Ok(None),
        Err(e) => Err(Error::api_named("delete", "jobs.batch", &job.name_any(), e)),
    }
}

async fn write_status(ctx: &Ctx, job: &Job, status: &JobStatus) -> Result<(), Error> {
    if job.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let body = json!({"status": status});
    match api
        .patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(body),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::api_named(
            "update status of",
            "jobs.batch",
            &job.name_any(),
            e,
        )),
    }
}
