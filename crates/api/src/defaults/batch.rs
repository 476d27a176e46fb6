//! Defaults of the `batch` group (`pkg/apis/batch/v1/defaults.go`).

use serde_json::{Map, Value, json};

use super::pod;
use super::{default, default_str, each_obj, ensure_obj, non_empty, obj_mut};

pub fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Job" => job(obj),
        "CronJob" => cron_job(obj),
        _ => {}
    }
}

fn job(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let template_labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    let Some(spec) = obj_mut(o, "spec") else {
        return;
    };
    // A non-parallel job may leave both unset: both become 1.
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
    }
    default(spec, "parallelism", json!(1));
    let per_index = spec
        .get("backoffLimitPerIndex")
        .is_some_and(|v| !v.is_null());
    default(
        spec,
        "backoffLimit",
        json!(if per_index { i32::MAX } else { 6 }),
    );
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    let failure_policy = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
    let replacement = if failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default(spec, "podReplacementPolicy", json!(replacement));
    job_spec_common(spec);
    if let Some(labels) = template_labels
        && let Some(meta) = ensure_obj(o, "metadata")
        && !non_empty(meta, "labels")
    {
        meta.insert("labels".into(), labels);
    }
}

/// What every `JobSpec` gets, including a CronJob's job template (upstream
/// does not run the Job-level defaults there).
fn job_spec_common(spec: &mut Map<String, Value>) {
    if let Some(policy) = obj_mut(spec, "podFailurePolicy") {
        each_obj(policy, "rules", |rule| {
            each_obj(rule, "onPodConditions", |p| {
                default_str(p, "status", "True")
            });
        });
    }
    pod::template(spec, "template");
}

fn cron_job(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = obj_mut(spec, "jobTemplate").and_then(|t| obj_mut(t, "spec")) {
        job_spec_common(job_spec);
    }
}

/// Upstream's `generateSelector` (Job `PrepareForCreate`): unless the user
/// manages the selector, pods are labelled with the job's name and uid and
/// the selector matches the uid, so a job never adopts another's pods.
pub fn generate_selector(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let meta = o.get("metadata");
    let field = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (Some(name), Some(uid)) = (field("name"), field("uid")) else {
        return;
    };
    let Some(spec) = obj_mut(o, "spec") else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    if let Some(labels) = ensure_obj(spec, "template")
        .and_then(|t| ensure_obj(t, "metadata"))
        .and_then(|m| ensure_obj(m, "labels"))
    {
        for (k, v) in [
            ("job-name", &name),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("batch.kubernetes.io/controller-uid", &uid),
        ] {
            labels.entry(k).or_insert_with(|| json!(v));
        }
    }
    if let Some(ml) = ensure_obj(spec, "selector").and_then(|s| ensure_obj(s, "matchLabels")) {
        ml.entry("batch.kubernetes.io/controller-uid")
            .or_insert_with(|| json!(uid));
    }
}
