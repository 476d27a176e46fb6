//! A PodDisruptionBudget's status from its pods: pure arithmetic, as
//! upstream's disruption controller (`updatePdbStatus`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Whether `selector` selects `labels` (an empty selector selects all).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// `value` of `total`: an integer as is, a percentage rounded up.
fn scaled(value: &IntOrString, total: i32) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((pct * total as i64 + 99) / 100) as i32
        }
    }
}

/// (desiredHealthy, disruptionsAllowed) for `expected` pods of which
/// `healthy` are healthy.
pub fn compute(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    expected: i32,
    healthy: i32,
) -> (i32, i32) {
    let desired = match (min_available, max_unavailable) {
        (Some(min), _) => scaled(min, expected),
        (None, Some(max)) => (expected - scaled(max, expected)).max(0),
        (None, None) => 1.min(expected),
    };
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    (desired, allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_like_upstream() {
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(compute(Some(&int(2)), None, 3, 3), (2, 1));
        assert_eq!(compute(Some(&int(3)), None, 3, 3), (3, 0));
        assert_eq!(compute(Some(&int(2)), None, 3, 1), (2, 0));
        assert_eq!(compute(Some(&pct("50%")), None, 3, 3), (2, 1), "rounded up");
        assert_eq!(compute(None, Some(&int(1)), 4, 4), (3, 1));
        assert_eq!(compute(None, Some(&pct("30%")), 10, 10), (7, 3));
        assert_eq!(
            compute(Some(&int(0)), None, 0, 0),
            (0, 0),
            "no pods: nothing allowed"
        );
    }

    #[test]
    fn selector_semantics() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .expect("selector");
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selects(&sel, &l(&[("app", "web")])));
        assert!(!selects(&sel, &l(&[("app", "web"), ("tier", "db")])));
        assert!(!selects(&sel, &l(&[("app", "api")])));
        assert!(selects(&LabelSelector::default(), &l(&[])));
    }
}
