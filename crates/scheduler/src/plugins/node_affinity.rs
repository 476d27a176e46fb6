//! NodeAffinity: `nodeSelector` and required node affinity (Filter);
//! the weights of matching preferred terms (Score).

use crate::framework::{Ctx, CycleState, Plugin, Status, default_normalize};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;
use crate::selector::any_term;

pub struct NodeAffinity;

pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// Whether the node satisfies the pod's nodeSelector and required node
/// affinity (also used by PodTopologySpread's domain counting).
pub fn required_match(pod: &PodInfo, node: &NodeInfo) -> bool {
    if let Some(sel) = &pod.node_selector
        && !sel.matches(&node.labels)
    {
        return false;
    }
    match &pod.required_node_terms {
        Some(terms) => any_term(terms, &node.labels, &node.name),
        None => true,
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        if required_match(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
    fn pre_score(&self, _: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo], _: &Ctx) -> Status {
        if pod.preferred_node_terms.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn has_score(&self) -> bool {
        true
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> i64 {
        pod.preferred_node_terms
            .iter()
            .filter(|(_, t)| t.matches(&node.labels, &node.name))
            .map(|(w, _)| *w as i64)
            .sum()
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn selector_and_required_terms() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let ssd = node(
            "a",
            json!({"metadata": {"labels": {"disk": "ssd", "zone": "z1"}}}),
        );
        let hdd = node(
            "b",
            json!({"metadata": {"labels": {"disk": "hdd", "zone": "z2"}}}),
        );
        let p =
            pod(json!({"spec": {"containers": [{"name": "c"}], "nodeSelector": {"disk": "ssd"}}}));
        assert!(NodeAffinity.filter(&s, &p, &ssd, &ctx).is_success());
        assert_eq!(
            NodeAffinity.filter(&s, &p, &hdd, &ctx).reasons,
            vec![REASON]
        );
        let p = pod(
            json!({"spec": {"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}]}}}}}),
        );
        assert!(!NodeAffinity.filter(&s, &p, &ssd, &ctx).is_success());
        assert!(NodeAffinity.filter(&s, &p, &hdd, &ctx).is_success());
        let p = pod(
            json!({"spec": {"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}}}}),
        );
        assert!(NodeAffinity.filter(&s, &p, &ssd, &ctx).is_success());
        assert!(!NodeAffinity.filter(&s, &p, &hdd, &ctx).is_success());
    }

    #[test]
    fn preferred_terms_score() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let p = pod(
            json!({"spec": {"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}},
                {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}}),
        );
        let a = node("a", json!({"metadata": {"labels": {"zone": "z1"}}}));
        let b = node(
            "b",
            json!({"metadata": {"labels": {"zone": "z1", "disk": "ssd"}}}),
        );
        let mut sc = vec![
            NodeAffinity.score(&s, &p, &a, &ctx),
            NodeAffinity.score(&s, &p, &b, &ctx),
        ];
        NodeAffinity.normalize(&s, &p, &mut sc);
        assert_eq!(sc, vec![25, 100]);
    }
}
