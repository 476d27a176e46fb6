//! The CronJob controller, as upstream's `pkg/controller/cronjob` (v2):
//! creates a Job named `<cronjob>-<scheduled minutes since the epoch>` for
//! the most recent missed scheduled time, honouring `concurrencyPolicy`,
//! `startingDeadlineSeconds` and `suspend`; keeps `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`; and trims finished Jobs to
//! the history limits. The deterministic name makes creation idempotent: a
//! pass repeated after a crash finds its Job already there.

pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{
    Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::workload::{Ctx, Key, Outcome, pods};

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

fn finished(j: &Job) -> Option<(&'static str, Option<jiff::Timestamp>)> {
    let conds = j.status.as_ref()?.conditions.as_ref()?;
    for (t, name) in [("Complete", "Complete"), ("Failed", "Failed")] {
        if let Some(c) = conds.iter().find(|c| c.type_ == t && c.status == "True") {
            return Some((name, c.last_transition_time.as_ref().map(|t| t.0)));
        }
    }
    None
}

fn reference(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: j.metadata.name.clone(),
        namespace: j.metadata.namespace.clone(),
        uid: j.metadata.uid.clone(),
        resource_version: j.metadata.resource_version.clone(),
        ..Default::default()
    }
}

pub async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Outcome {
    let Some(cj) = Ctx::get(&ctx.cronjobs, &key) else {
        return Ok(None);
    };
    let cj: CronJob = (*cj).clone();
    if cj.meta().deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(spec) = cj.spec.clone() else {
        return Ok(None);
    };
    let uid = cj.uid().unwrap_or_default();
    let now = jiff::Timestamp::now();
    let jobs: Vec<Arc<Job>> = ctx.jobs.state_filter(|j| {
        j.metadata.namespace.as_deref() == Some(key.0.as_str())
            && pods::controller_of(&j.metadata).is_some_and(|r| r.uid == uid)
    });
    let job_api: Api<Job> = Api::namespaced(ctx.client.clone(), &key.0);
    let mut status: CronJobStatus = cj.status.clone().unwrap_or_default();

    // Active: our unfinished Jobs (the list is rebuilt, so a crash after
    // creating a Job but before recording it loses nothing).
    let mut active: Vec<ObjectReference> = jobs
        .iter()
        .filter(|j| finished(j).is_none() && j.metadata.deletion_timestamp.is_none())
        .map(|j| reference(j))
        .collect();
    active.sort_by(|a, b| a.name.cmp(&b.name));
    let last_success = jobs
        .iter()
        .filter_map(|j| match finished(j) {
            Some(("Complete", t)) => j
                .status
                .as_ref()?
                .completion_time
                .as_ref()
                .map(|t| t.0)
                .or(t),
            _ => None,
        })
        .max();
    if let Some(t) = last_success
        && status
            .last_successful_time
            .as_ref()
            .is_none_or(|cur| cur.0 < t)
    {
        status.last_successful_time = Some(Time(t));
    }
    status.active = (!active.is_empty()).then_some(active.clone());

    cleanup(&job_api, &spec, &jobs).await?;

    let sched = match schedule::Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(cronjob = %key.1, error = %e, "unparseable schedule");
            write_status(&ctx, &cj, &status).await?;
            return Ok(None);
        }
    };
    let tz = match schedule::zone(spec.time_zone.as_deref(), &sched) {
        Ok(tz) => tz,
        Err(e) => {
            tracing::info!(cronjob = %key.1, error = %e, "unknown time zone");
            write_status(&ctx, &cj, &status).await?;
            return Ok(None);
        }
    };
    if spec.suspend == Some(true) {
        write_status(&ctx, &cj, &status).await?;
        return Ok(None);
    }
    let earliest = status
        .last_schedule_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| cj.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now);
    let p = schedule::plan(&sched, &tz, earliest, now, spec.starting_deadline_seconds);
    let wake = p.next.map(|n| {
        Duration::try_from(n.duration_since(now)).unwrap_or_default() + Duration::from_millis(100)
    });
    let Some(at) = p.run else {
        write_status(&ctx, &cj, &status).await?;
        return Ok(wake);
    };
    if p.missed > 100 {
        tracing::warn!(cronjob = %key.1, missed = p.missed, "too many missed start times; check clock skew");
    }
    let name = schedule::job_name(&cj.name_any(), at);
    if jobs.iter().any(|j| j.name_any() == name) {
        status.last_schedule_time = Some(Time(at));
        write_status(&ctx, &cj, &status).await?;
        return Ok(wake);
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            write_status(&ctx, &cj, &status).await?;
            return Ok(wake);
        }
        Some("Replace") => {
            for a in &active {
                let dp = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    preconditions: Some(Preconditions {
                        uid: a.uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                let n = a.name.clone().unwrap_or_default();
                match job_api.delete(&n, &dp).await {
                    Ok(_) => {}
                    Err(e) if matches!(crate::status_code(&e), Some(404 | 409)) => {}
                    Err(e) => return Err(Error::api_named("delete", "jobs.batch", &n, e)),
                }
            }
            active.clear();
        }
        _ => {}
    }
    let tmpl = spec.job_template.clone();
    let tm = tmpl.metadata.clone().unwrap_or_default();
    let mut annotations = tm.annotations.clone().unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let job = Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(key.0.clone()),
            labels: tm.labels.clone(),
            annotations: Some(annotations),
            owner_references: Some(vec![pods::owner_ref(&cj)]),
            ..Default::default()
        },
        spec: tmpl.spec.clone(),
        status: None,
    };
    match job_api.create(&PostParams::default(), &job).await {
        Ok(j) => active.push(reference(&j)),
        Err(e) if crate::status_code(&e) == Some(409) => {}
        Err(e) => return Err(Error::api_named("create", "jobs.batch", &name, e)),
    }
    status.active = (!active.is_empty()).then_some(active);
    status.last_schedule_time = Some(Time(at));
    write_status(&ctx, &cj, &status).await?;
    Ok(wake)
}

/// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit`
/// (default 3) and `failedJobsHistoryLimit` (default 1).
async fn cleanup(
    api: &Api<Job>,
    spec: &k8s_openapi::api::batch::v1::CronJobSpec,
    jobs: &[Arc<Job>],
) -> Result<(), Error> {
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let mut done: Vec<&Arc<Job>> = jobs
            .iter()
            .filter(|j| {
                j.metadata.deletion_timestamp.is_none()
                    && finished(j).is_some_and(|(k, _)| k == kind)
            })
            .collect();
        let limit = limit.max(0) as usize;
        if done.len() <= limit {
            continue;
        }
        done.sort_by_key(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref().map(|t| t.0))
                .or_else(|| j.metadata.creation_timestamp.as_ref().map(|t| t.0))
        });
        for j in &done[..done.len() - limit] {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                preconditions: Some(Preconditions {
                    uid: j.uid(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&j.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if matches!(crate::status_code(&e), Some(404 | 409)) => {}
                Err(e) => return Err(Error::api_named("delete", "jobs.batch", &j.name_any(), e)),
            }
        }
    }
    Ok(())
}

async fn write_status(ctx: &Ctx, cj: &CronJob, status: &CronJobStatus) -> Result<(), Error> {
    if cj.status.as_ref().unwrap_or(&CronJobStatus::default()) == status {
        return Ok(());
    }
    let api: Api<CronJob> =
        Api::namespaced(ctx.client.clone(), &cj.namespace().unwrap_or_default());
    let mut s = serde_json::to_value(status).unwrap_or_default();
    // Merge patch: an absent list must be written as null to clear it.
    if status.active.is_none()
        && let Some(o) = s.as_object_mut()
    {
        o.insert("active".into(), serde_json::Value::Null);
    }
    match api
        .patch_status(
            &cj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": s})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::api_named(
            "update status of",
            "cronjobs.batch",
            &cj.name_any(),
            e,
        )),
    }
}
