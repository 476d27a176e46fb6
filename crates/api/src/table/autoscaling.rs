//! `autoscaling/v1` and `autoscaling/v2` HorizontalPodAutoscalers, and the
//! `autoscaling/v1` Scale of the `scale` subresources.
//!
//! Upstream prints both versions from one internal type shaped like v2. A v1
//! object's `targetCPUUtilizationPercentage` becomes a CPU utilization metric,
//! and when it is absent the stored object carries the default 80% target,
//! so a v1 HPA always shows a `cpu:` target, as it does on a real cluster.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::descriptions as d;
use super::format::{age, arr_at, at, int_at, name, opt_int_at, quantity, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "HorizontalPodAutoscaler",
        columns: HPA,
        cells: hpa,
    },
    Printer {
        kind: "Scale",
        columns: SCALE,
        cells: scale,
    },
];

/// The `scale` subresource. Upstream gives its name column no `name` format.
const SCALE: &[Column] = &[
    Column::new("Name", "string", "", d::META_NAME, 0),
    col("Desired", "integer", d::SCALE_SPEC_REPLICAS),
    col("Available", "integer", d::SCALE_STATUS_REPLICAS),
    AGE,
];

fn scale(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        int_at(obj, &["spec", "replicas"]).into(),
        int_at(obj, &["status", "replicas"]).into(),
        age(obj, now).into(),
    ]
}

const HPA: &[Column] = &[
    NAME,
    col("Reference", "string", d::HPA_SCALE_TARGET_REF),
    col("Targets", "string", d::HPA_METRICS),
    col("MinPods", "string", d::HPA_MIN_REPLICAS),
    col("MaxPods", "string", d::HPA_MAX_REPLICAS),
    col("Replicas", "string", d::HPA_CURRENT_REPLICAS),
    AGE,
];

/// The CPU utilization target upstream defaults a v1 HPA to.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

fn hpa(obj: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, &["spec", "scaleTargetRef", "kind"]),
        str_at(obj, &["spec", "scaleTargetRef", "name"])
    );
    let targets = if is_v1(obj) {
        let (specs, statuses) = v1_metrics(obj);
        format_metrics(&specs, &statuses)
    } else {
        format_metrics(
            arr_at(obj, &["spec", "metrics"]),
            arr_at(obj, &["status", "currentMetrics"]),
        )
    };
    let min_pods = opt_int_at(obj, &["spec", "minReplicas"])
        .map_or_else(|| "<unset>".to_string(), |n| n.to_string());
    vec![
        name(obj).into(),
        reference.into(),
        targets.into(),
        min_pods.into(),
        int_at(obj, &["spec", "maxReplicas"]).into(),
        int_at(obj, &["status", "currentReplicas"]).into(),
        age(obj, now).into(),
    ]
}

fn is_v1(obj: &Value) -> bool {
    str_at(obj, &["apiVersion"]) == "autoscaling/v1"
        || (at(obj, &["spec", "metrics"]).is_none()
            && at(obj, &["spec", "targetCPUUtilizationPercentage"]).is_some())
}

/// A v1 HPA's CPU target and current utilization in v2 shape.
fn v1_metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let target = opt_int_at(obj, &["spec", "targetCPUUtilizationPercentage"])
        .unwrap_or(DEFAULT_CPU_UTILIZATION);
    let spec = json!({
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
    });
    let status = match opt_int_at(obj, &["status", "currentCPUUtilizationPercentage"]) {
        Some(current) => vec![json!({
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": current}},
        })],
        None => Vec::new(),
    };
    (vec![spec], status)
}

/// Upstream's `formatHPAMetrics`: `current/target` per metric, at most two,
/// then `+ N more...`; `<none>` without metrics.
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| format_metric(spec, statuses.get(i)))
        .collect();
    let shown = list[..list.len().min(MAX)].join(", ");
    if list.len() > MAX {
        return format!("{shown} + {} more...", list.len() - MAX);
    }
    shown
}

fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    const UNKNOWN: &str = "<unknown>";
    let type_ = str_at(spec, &["type"]);
    // The source struct of this metric type, e.g. `spec.resource`.
    let source_key = match type_ {
        "External" => "external",
        "Pods" => "pods",
        "Object" => "object",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        _ => return "<unknown type>".to_string(),
    };
    let empty = Value::Null;
    let source = at(spec, &[source_key]).unwrap_or(&empty);
    let target = |field: &str| at(source, &["target", field]);
    // The matching status source, when the status has one of this type.
    let current = status.and_then(|s| at(s, &[source_key]));
    let current_field = |field: &str| current.and_then(|c| at(c, &["current", field]));
    match type_ {
        "External" | "Object" => {
            if let Some(avg) = target("averageValue") {
                let cur = current_field("averageValue").map_or(UNKNOWN.to_string(), qty);
                format!("{cur}/{} (avg)", qty(avg))
            } else {
                let cur = match current {
                    Some(_) => qty_ptr(current_field("value")),
                    None => UNKNOWN.to_string(),
                };
                format!("{cur}/{}", qty_ptr(target("value")))
            }
        }
        "Pods" => {
            let cur = match current {
                Some(_) => qty_ptr(current_field("averageValue")),
                None => UNKNOWN.to_string(),
            };
            format!("{cur}/{}", qty_ptr(target("averageValue")))
        }
        _ => {
            let resource = str_at(source, &["name"]);
            if let Some(avg) = target("averageValue") {
                let cur = match current {
                    Some(_) => qty_ptr(current_field("averageValue")),
                    None => UNKNOWN.to_string(),
                };
                format!("{resource}: {cur}/{}", qty(avg))
            } else {
                let percent = |v: Option<&Value>| v.map(|v| format!("{}%", int_of(v)));
                let cur = percent(current_field("averageUtilization"))
                    .unwrap_or_else(|| UNKNOWN.to_string());
                let goal = percent(target("averageUtilization")).unwrap_or_else(|| "<auto>".into());
                format!("{resource}: {cur}/{goal}")
            }
        }
    }
}

fn int_of(v: &Value) -> i64 {
    super::format::as_int(v).unwrap_or(0)
}

fn qty(v: &Value) -> String {
    quantity(Some(v))
}

/// A quantity pointer as Go prints it: `<nil>` when absent.
fn qty_ptr(v: Option<&Value>) -> String {
    v.map_or_else(|| "<nil>".to_string(), qty)
}
