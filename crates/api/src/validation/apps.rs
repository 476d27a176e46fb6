//! The `apps` group (`pkg/apis/apps/validation`).

use serde_json::Value;

use super::FieldError;
use super::common::{
    child, enumerated, immutable, invalids, label_selector, labels, nonnegative, percent_msgs,
    selector_is_empty, selector_matches_template,
};
use super::core::restart_always;
use super::pod::{self, str_of};

pub fn validate(kind: &str, obj: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    match kind {
        "Deployment" => deployment(spec),
        "ReplicaSet" => {
            let mut errs = nonnegative(spec, "replicas", "spec");
            errs.extend(nonnegative(spec, "minReadySeconds", "spec"));
            errs.extend(selector_and_template(
                spec,
                "deployment",
                "ReplicaSet",
                true,
            ));
            errs
        }
        "StatefulSet" => stateful_set(spec),
        "DaemonSet" => daemon_set(spec),
        _ => Vec::new(),
    }
}

pub fn validate_update(kind: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate(kind, new);
    let null = Value::Null;
    let (os, ns) = (
        old.get("spec").unwrap_or(&null),
        new.get("spec").unwrap_or(&null),
    );
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" => {
            errs.extend(immutable(ns, os, "selector", "spec"));
        }
        "StatefulSet" => {
            let strip = |s: &Value| {
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    for k in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                    ] {
                        o.remove(k);
                    }
                    o.retain(|_, v| !v.is_null());
                }
                s
            };
            if strip(ns) != strip(os) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        _ => {}
    }
    errs
}

/// The selector rules every workload shares, then its pod template.
/// `noun` names the kind in "empty selector is invalid for ...", `kind` in
/// "activeDeadlineSeconds in ... is not Supported"; `full_template` runs
/// the whole pod spec validation (StatefulSets only check labels).
fn selector_and_template(
    spec: &Value,
    noun: &str,
    kind: &str,
    full_template: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let selector = spec.get("selector").filter(|s| !s.is_null());
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            errs.extend(label_selector(sel, "spec.selector"));
            if selector_is_empty(sel) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    format!("empty selector is invalid for {noun}"),
                ));
            }
        }
    }
    let template = spec.get("template").filter(|t| t.is_object());
    // A missing selector selects nothing, so upstream also reports the
    // template's labels as not matching.
    let nothing = serde_json::json!({"matchExpressions": [{"key": "", "operator": "Exists"}]});
    if template.is_some() {
        errs.extend(selector_matches_template(
            selector.unwrap_or(&nothing),
            template,
            "spec.template",
        ));
    }
    if full_template {
        errs.extend(pod::template(template, "spec.template"));
    } else if let Some(t) = template {
        errs.extend(labels(
            t.get("metadata").and_then(|m| m.get("labels")),
            "spec.template.labels",
        ));
    }
    if let Some(t) = template {
        errs.extend(restart_always(t, "spec.template", kind));
    }
    errs
}

fn deployment(spec: &Value) -> Vec<FieldError> {
    let mut errs = nonnegative(spec, "replicas", "spec");
    errs.extend(selector_and_template(
        spec,
        "deployment",
        "ReplicaSet",
        true,
    ));
    let null = Value::Null;
    let strategy = spec.get("strategy").unwrap_or(&null);
    match str_of(strategy, "type") {
        "Recreate" => {
            if strategy.get("rollingUpdate").is_some_and(|v| !v.is_null()) {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => errs.extend(rolling_update(ru, "spec.strategy.rollingUpdate")),
        },
        _ => errs.push(FieldError::not_supported(
            "spec.strategy",
            strategy.clone(),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"));
    errs.extend(nonnegative(spec, "revisionHistoryLimit", "spec"));
    if let Some(p) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
        if p <= 0 {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than zero",
            ));
        }
        let min_ready = spec
            .get("minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if p <= min_ready {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// An int-or-percent: its errors, and its value (a percent's number).
fn int_or_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
    match v? {
        Value::String(s) => {
            let msgs = percent_msgs(s);
            if !msgs.is_empty() {
                errs.extend(invalids(path, s, msgs));
                return None;
            }
            let n: i64 = s.trim_end_matches('%').parse().ok()?;
            if n > 100 && path.ends_with("maxUnavailable") {
                errs.push(FieldError::invalid(
                    path,
                    s.as_str(),
                    "must not be greater than 100%",
                ));
            }
            Some(n)
        }
        Value::Number(n) => {
            let n = n.as_i64()?;
            if n < 0 {
                errs.push(FieldError::invalid(path, n, super::common::NEGATIVE));
            }
            Some(n)
        }
        Value::Null => None,
        other => {
            errs.push(FieldError::invalid(
                path,
                other.clone(),
                "must be an integer or percentage (e.g '5%')",
            ));
            None
        }
    }
}

/// Both Deployment and DaemonSet rolling updates.
fn rolling_update(ru: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let unavailable_path = child(path, "maxUnavailable");
    let unavailable = int_or_percent(ru.get("maxUnavailable"), &unavailable_path, &mut errs);
    let surge = int_or_percent(ru.get("maxSurge"), &child(path, "maxSurge"), &mut errs);
    if unavailable.unwrap_or(0) == 0 && surge.unwrap_or(0) == 0 {
        errs.push(FieldError::invalid(
            unavailable_path,
            ru.get("maxUnavailable").cloned().unwrap_or(Value::from(0)),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs
}

fn stateful_set(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match str_of(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let null = Value::Null;
    let strategy = spec.get("updateStrategy").unwrap_or(&null);
    match str_of(strategy, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = strategy.get("rollingUpdate") {
                errs.extend(nonnegative(
                    ru,
                    "partition",
                    "spec.updateStrategy.rollingUpdate",
                ));
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            strategy.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(p) = spec.get("persistentVolumeClaimRetentionPolicy") {
        for f in ["whenDeleted", "whenScaled"] {
            errs.extend(enumerated(
                p,
                f,
                "spec.persistentVolumeClaimRetentionPolicy",
                &["Retain", "Delete"],
                false,
            ));
        }
    }
    errs.extend(nonnegative(spec, "replicas", "spec"));
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"));
    if let Some(o) = spec.get("ordinals") {
        errs.extend(nonnegative(o, "start", "spec.ordinals"));
    }
    errs.extend(selector_and_template(
        spec,
        "statefulset",
        "StatefulSet",
        false,
    ));
    errs
}

fn daemon_set(spec: &Value) -> Vec<FieldError> {
    let mut errs = selector_and_template(spec, "daemonset", "DaemonSet", true);
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"));
    errs.extend(nonnegative(spec, "revisionHistoryLimit", "spec"));
    let null = Value::Null;
    let strategy = spec.get("updateStrategy").unwrap_or(&null);
    match str_of(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(
                "spec.updateStrategy.rollingUpdate",
                "",
            )),
            Some(ru) => errs.extend(rolling_update(ru, "spec.updateStrategy.rollingUpdate")),
        },
        _ => errs.push(FieldError::not_supported(
            "spec.updateStrategy",
            strategy.clone(),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    errs
}
