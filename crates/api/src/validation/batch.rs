//! The `batch` group (`pkg/apis/batch/validation`).

use serde_json::Value;

use super::FieldError;
use super::common::{
    child, enumerated, immutable, label_selector, nonnegative, selector_matches_template,
};
use super::cron;
use super::pod::{self, str_of};

pub fn validate(kind: &str, obj: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    match kind {
        "Job" => job_spec(spec, "spec"),
        "CronJob" => {
            let mut errs = Vec::new();
            let name = obj
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.len() > 52 {
                errs.push(FieldError::invalid(
                    "metadata.name",
                    name,
                    "must be no more than 52 characters",
                ));
            }
            errs.extend(cron_job_spec(spec));
            errs
        }
        _ => Vec::new(),
    }
}

pub fn validate_update(kind: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate(kind, new);
    if kind == "Job" {
        let null = Value::Null;
        let (os, ns) = (
            old.get("spec").unwrap_or(&null),
            new.get("spec").unwrap_or(&null),
        );
        // Elastic indexed jobs may scale completions along with parallelism.
        let elastic = str_of(ns, "completionMode") == "Indexed"
            && ns.get("completions") == ns.get("parallelism")
            && os.get("completions") == os.get("parallelism");
        if !elastic {
            errs.extend(immutable(ns, os, "completions", "spec"));
        }
        for f in [
            "selector",
            "template",
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
        ] {
            errs.extend(immutable(ns, os, f, "spec"));
        }
    }
    errs
}

/// `ValidateJobSpec`: a Job's own spec, selector required.
fn job_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = common_job_spec(spec, path);
    let nothing = serde_json::json!({"matchExpressions": [{"key": "", "operator": "Exists"}]});
    let selector = spec.get("selector").filter(|s| !s.is_null());
    match selector {
        None => errs.push(FieldError::required(child(path, "selector"), "")),
        Some(sel) => errs.extend(label_selector(sel, &child(path, "selector"))),
    }
    // A missing selector selects nothing: upstream reports the labels too.
    errs.extend(selector_matches_template(
        selector.unwrap_or(&nothing),
        spec.get("template"),
        &child(path, "template"),
    ));
    errs
}

/// `validateJobSpec`: shared by Jobs and CronJob job templates.
fn common_job_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        errs.extend(nonnegative(spec, f, path));
    }
    errs.extend(enumerated(
        spec,
        "completionMode",
        path,
        &["NonIndexed", "Indexed"],
        false,
    ));
    if str_of(spec, "completionMode") == "Indexed"
        && spec.get("completions").is_none_or(Value::is_null)
    {
        errs.push(FieldError::required(
            child(path, "completions"),
            "when completion mode is Indexed",
        ));
    }
    let replacement = str_of(spec, "podReplacementPolicy");
    if !replacement.is_empty() {
        if spec.get("podFailurePolicy").is_some_and(|v| !v.is_null()) && replacement != "Failed" {
            errs.push(FieldError::not_supported(
                child(path, "podReplacementPolicy"),
                replacement,
                &["Failed"],
            ));
        } else {
            errs.extend(enumerated(
                spec,
                "podReplacementPolicy",
                path,
                &["TerminatingOrFailed", "Failed"],
                false,
            ));
        }
    }
    let template_path = child(path, "template");
    errs.extend(pod::template(spec.get("template"), &template_path));
    let policy = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .map(|s| str_of(s, "restartPolicy"))
        .unwrap_or("");
    if policy != "OnFailure" && policy != "Never" {
        errs.push(FieldError::not_supported(
            child(&template_path, "spec.restartPolicy"),
            policy,
            &["OnFailure", "Never"],
        ));
    }
    errs
}

fn cron_job_spec(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let schedule = str_of(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = cron::parse_standard(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        if schedule.contains("TZ") {
            let msg = if spec.get("timeZone").is_some_and(|v| !v.is_null()) {
                "cannot use both timeZone field and TZ or CRON_TZ in schedule"
            } else {
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            };
            errs.push(FieldError::invalid("spec.schedule", schedule, msg));
        }
    }
    if let Some(tz) = spec.get("timeZone").and_then(Value::as_str) {
        errs.extend(time_zone(tz));
    }
    errs.extend(nonnegative(spec, "startingDeadlineSeconds", "spec"));
    errs.extend(enumerated(
        spec,
        "concurrencyPolicy",
        "spec",
        &["Allow", "Forbid", "Replace"],
        true,
    ));
    errs.extend(nonnegative(spec, "successfulJobsHistoryLimit", "spec"));
    errs.extend(nonnegative(spec, "failedJobsHistoryLimit", "spec"));
    let null = Value::Null;
    let job = spec
        .get("jobTemplate")
        .and_then(|t| t.get("spec"))
        .unwrap_or(&null);
    errs.extend(common_job_spec(job, "spec.jobTemplate.spec"));
    if let Some(sel) = job.get("selector").filter(|v| !v.is_null()) {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            sel.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if job.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            true,
            &["nil", "false"],
        ));
    }
    errs
}

/// Upstream loads the zone with Go's `time.LoadLocation`.
fn time_zone(tz: &str) -> Vec<FieldError> {
    if tz.is_empty() {
        return vec![FieldError::invalid(
            "spec.timeZone",
            tz,
            "unknown time zone, must be a valid IANA time zone name",
        )];
    }
    let mut errs = Vec::new();
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    } else if tz != "UTC" && zone_db_present() && jiff::tz::db().get(tz).is_err() {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
    errs
}

/// Without a time zone database every name would look unknown; then the
/// check is skipped rather than rejecting valid zones.
fn zone_db_present() -> bool {
    jiff::tz::db().available().next().is_some()
}
