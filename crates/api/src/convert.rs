//! Conversion between the versions (and groups) one resource is served
//! at: `autoscaling/v1` and `v2` HorizontalPodAutoscalers, and core `v1`
//! and `events.k8s.io/v1` Events, which share their storage as upstream.
//!
//! Objects are stored at the storage version; requests at another version
//! are converted on the way in and out.

use serde_json::{Map, Value, json};

/// Converts `obj` to `(group, version)`; kinds without special rules only
/// get their `apiVersion` rewritten.
pub fn convert(obj: &Value, to_group: &str, to_version: &str) -> Value {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let to = if to_group.is_empty() {
        to_version.to_string()
    } else {
        format!("{to_group}/{to_version}")
    };
    if from == to {
        return obj.clone();
    }
    let mut out = match (kind, from, to.as_str()) {
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(obj),
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(obj),
        ("Event", "v1", "events.k8s.io/v1") => event_core_to_events(obj),
        ("Event", "events.k8s.io/v1", "v1") => event_events_to_core(obj),
        _ => obj.clone(),
    };
    out["apiVersion"] = Value::String(to);
    out
}

fn hpa_v2_to_v1(obj: &Value) -> Value {
    let mut out = obj.clone();
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut v1 = Map::new();
    for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(k) {
            v1.insert(k.into(), v.clone());
        }
    }
    let cpu = spec["metrics"].as_array().into_iter().flatten().find(|m| {
        m["type"] == "Resource"
            && m["resource"]["name"] == "cpu"
            && m["resource"]["target"]["type"] == "Utilization"
    });
    if let Some(u) = cpu.and_then(|m| m["resource"]["target"]["averageUtilization"].as_i64()) {
        v1.insert("targetCPUUtilizationPercentage".into(), json!(u));
    }
    out["spec"] = Value::Object(v1);
    if let Some(status) = obj.get("status") {
        let mut s = Map::new();
        for k in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(k) {
                s.insert(k.into(), v.clone());
            }
        }
        let current = status["currentMetrics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu");
        if let Some(u) =
            current.and_then(|m| m["resource"]["current"]["averageUtilization"].as_i64())
        {
            s.insert("currentCPUUtilizationPercentage".into(), json!(u));
        }
        out["status"] = Value::Object(s);
    }
    out
}

fn hpa_v1_to_v2(obj: &Value) -> Value {
    let mut out = obj.clone();
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut v2 = Map::new();
    for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(k) {
            v2.insert(k.into(), v.clone());
        }
    }
    if let Some(u) = spec
        .get("targetCPUUtilizationPercentage")
        .and_then(Value::as_i64)
    {
        v2.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": u}}}]),
        );
    }
    out["spec"] = Value::Object(v2);
    if let Some(status) = obj.get("status") {
        let mut s = Map::new();
        for k in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(k) {
                s.insert(k.into(), v.clone());
            }
        }
        if let Some(u) = status
            .get("currentCPUUtilizationPercentage")
            .and_then(Value::as_i64)
        {
            s.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}]),
            );
        }
        out["status"] = Value::Object(s);
    }
    out
}

/// Renames top-level fields per `(from, to)` pairs, dropping absent ones.
fn rename(obj: &Value, pairs: &[(&str, &str)]) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let name = pairs
            .iter()
            .find(|(from, _)| from == k)
            .map_or(k.as_str(), |(_, to)| to);
        out.insert(name.to_string(), v.clone());
    }
    Value::Object(out)
}

const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("source", "deprecatedSource"),
];

fn event_core_to_events(obj: &Value) -> Value {
    rename(obj, EVENT_FIELDS)
}

fn event_events_to_core(obj: &Value) -> Value {
    let reversed: Vec<(&str, &str)> = EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)).collect();
    rename(obj, &reversed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_round_trip() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80}});
        let v2 = convert(&v1, "autoscaling", "v2");
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(convert(&v2, "autoscaling", "v1"), v1);
    }

    #[test]
    fn events_round_trip() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "reason": "Started", "count": 2});
        let ev = convert(&core, "events.k8s.io", "v1");
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "hi");
        assert_eq!(convert(&ev, "", "v1"), core);
    }
}
