//! TaintToleration: a node's NoSchedule/NoExecute taints must be
//! tolerated (Filter); fewer untolerated PreferNoSchedule taints score
//! higher (Score).

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{Ctx, CycleState, Plugin, Status, default_normalize};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub struct TaintToleration;

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            key == taint.key
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        for taint in &node.taints {
            if taint.effect != "NoSchedule" && taint.effect != "NoExecute" {
                continue;
            }
            if !pod.tolerations.iter().any(|t| tolerates(t, taint)) {
                return Status::unresolvable(format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value.as_deref().unwrap_or("")
                ));
            }
        }
        Status::success()
    }
    fn has_score(&self) -> bool {
        true
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> i64 {
        node.taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|taint| {
                !pod.tolerations.iter().any(|t| {
                    matches!(
                        t.effect.as_deref(),
                        None | Some("") | Some("PreferNoSchedule")
                    ) && tolerates(t, taint)
                })
            })
            .count() as i64
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn untolerated_taint_is_named_like_upstream() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let n = node(
            "n",
            json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        );
        let st = TaintToleration.filter(&CycleState::default(), &pod(json!({})), &n, &ctx);
        assert_eq!(
            st.reasons,
            vec!["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
        );
        let tol = pod(
            json!({"spec": {"containers": [{"name": "c"}], "tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}}),
        );
        assert!(
            TaintToleration
                .filter(&CycleState::default(), &tol, &n, &ctx)
                .is_success()
        );
    }

    #[test]
    fn equal_needs_same_value_and_prefer_no_schedule_scores_lower() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = |v: &str| Toleration {
            key: Some("k".into()),
            value: Some(v.into()),
            operator: Some("Equal".into()),
            ..Default::default()
        };
        assert!(tolerates(&t("v"), &taint));
        assert!(!tolerates(&t("w"), &taint));
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let tainted = node(
            "a",
            json!({"spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}),
        );
        let clean = node("b", json!({}));
        let p = pod(json!({}));
        let s = CycleState::default();
        let mut scores = vec![
            TaintToleration.score(&s, &p, &tainted, &ctx),
            TaintToleration.score(&s, &p, &clean, &ctx),
        ];
        TaintToleration.normalize(&s, &p, &mut scores);
        assert_eq!(scores, vec![0, 100]);
    }
}
