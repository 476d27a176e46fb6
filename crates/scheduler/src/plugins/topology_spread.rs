//! PodTopologySpread: keep matching pods evenly spread over topology
//! domains (zones, hostnames). `DoNotSchedule` constraints filter, and
//! `ScheduleAnyway` ones (plus upstream's default constraints for pods of
//! a workload controller) score.

use std::collections::HashMap;

use super::node_affinity::required_match;
use super::taint_toleration::tolerates;
use crate::framework::{Ctx, CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::{PodInfo, SpreadConstraint};
use crate::selector::Selector;

pub struct PodTopologySpread;

pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const HOSTNAME: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

/// Upstream's default constraints (`SystemDefaulting`), applied to pods
/// that set none and belong to a workload controller. Upstream selects
/// with the selectors of the Services and controllers matching the pod;
/// here the pod's own labels stand in for them.
fn default_constraints(pod: &PodInfo) -> Vec<SpreadConstraint> {
    let owned = matches!(
        pod.controller_kind.as_deref(),
        Some("ReplicaSet" | "StatefulSet" | "ReplicationController")
    );
    if !pod.spread.is_empty() || !owned || pod.labels.is_empty() {
        return vec![];
    }
    let sel = Selector::from_map(&pod.labels);
    [(HOSTNAME, 3), (ZONE, 5)]
        .into_iter()
        .map(|(k, skew)| SpreadConstraint {
            max_skew: skew,
            topology_key: k.into(),
            hard: false,
            selector: sel.clone(),
            min_domains: None,
            honor_affinity: true,
            honor_taints: false,
        })
        .collect()
}

fn counts_node(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    if c.honor_affinity && !required_match(pod, node) {
        return false;
    }
    if c.honor_taints
        && node
            .taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .any(|t| !pod.tolerations.iter().any(|tol| tolerates(tol, t)))
    {
        return false;
    }
    true
}

fn matching(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> i64 {
    node.pods
        .iter()
        .filter(|p| p.namespace == pod.namespace && !p.deleting && c.selector.matches(&p.labels))
        .count() as i64
}

/// Per hard constraint: matching pods per domain value.
struct FilterState {
    constraints: Vec<SpreadConstraint>,
    counts: Vec<HashMap<String, i64>>,
}

struct ScoreState {
    constraints: Vec<SpreadConstraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, ctx: &Ctx) -> Status {
        let constraints: Vec<SpreadConstraint> =
            pod.spread.iter().filter(|c| c.hard).cloned().collect();
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut counts = vec![HashMap::new(); constraints.len()];
        for node in ctx.cache.nodes() {
            // A node counts only if it has every constraint's key.
            if !constraints
                .iter()
                .all(|c| node.labels.contains_key(&c.topology_key))
            {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !counts_node(c, pod, node) {
                    continue;
                }
                let v = &node.labels[&c.topology_key];
                *counts[i].entry(v.clone()).or_insert(0) += matching(c, pod, node);
            }
        }
        state.write(
            "PodTopologySpread",
            FilterState {
                constraints,
                counts,
            },
        );
        Status::success()
    }
    fn remove_pod(&self, state: &mut CycleState, pod: &PodInfo, victim: &PodInfo, node: &NodeInfo) {
        if let Some(s) = state.read_mut::<FilterState>("PodTopologySpread") {
            for (i, c) in s.constraints.iter().enumerate() {
                if victim.namespace == pod.namespace
                    && c.selector.matches(&victim.labels)
                    && let Some(v) = node.labels.get(&c.topology_key)
                    && let Some(n) = s.counts[i].get_mut(v)
                {
                    *n -= 1;
                }
            }
        }
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        let Some(s) = state.read::<FilterState>("PodTopologySpread") else {
            return Status::success();
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                return Status::unresolvable(REASON_LABEL);
            };
            let domains = &s.counts[i];
            let mut min = domains.values().copied().min().unwrap_or(0);
            if c.min_domains.is_some_and(|m| (domains.len() as i32) < m) {
                min = 0;
            }
            let self_match = i64::from(c.selector.matches(&pod.labels));
            let here = domains.get(value).copied().unwrap_or(0);
            if here + self_match - min > c.max_skew as i64 {
                return Status::unschedulable(REASON);
            }
        }
        Status::success()
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        ctx: &Ctx,
    ) -> Status {
        let mut constraints: Vec<SpreadConstraint> =
            pod.spread.iter().filter(|c| !c.hard).cloned().collect();
        if pod.spread.is_empty() {
            constraints = default_constraints(pod);
        }
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut counts = vec![HashMap::new(); constraints.len()];
        // Domains come from the nodes being scored; pods from all nodes.
        for node in nodes {
            for (i, c) in constraints.iter().enumerate() {
                if let Some(v) = node.labels.get(&c.topology_key) {
                    counts[i].entry(v.clone()).or_insert(0);
                }
            }
        }
        for node in ctx.cache.nodes() {
            for (i, c) in constraints.iter().enumerate() {
                if let Some(v) = node.labels.get(&c.topology_key)
                    && counts_node(c, pod, node)
                    && let Some(n) = counts[i].get_mut(v)
                {
                    *n += matching(c, pod, node);
                }
            }
        }
        // More domains, more weight: log(domains + 2), as upstream.
        let weights = counts.iter().map(|m| ((m.len() + 2) as f64).ln()).collect();
        state.write(
            "PodTopologySpreadScore",
            ScoreState {
                constraints,
                counts,
                weights,
            },
        );
        Status::success()
    }
    fn has_score(&self) -> bool {
        true
    }
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo, _: &Ctx) -> i64 {
        let Some(s) = state.read::<ScoreState>("PodTopologySpreadScore") else {
            return 0;
        };
        let mut total = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            if let Some(v) = node.labels.get(&c.topology_key) {
                let n = s.counts[i].get(v).copied().unwrap_or(0) as f64;
                total += (n + (c.max_skew - 1) as f64) * s.weights[i];
            }
        }
        total.round() as i64
    }
    /// Fewer matching pods is better: min..max maps to 100..0 relative.
    fn normalize(&self, state: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        if state.read::<ScoreState>("PodTopologySpreadScore").is_none() {
            return;
        }
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn spread_pod(name: &str, when: &str) -> std::sync::Arc<PodInfo> {
        pod(
            json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {
            "containers": [{"name": "c"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": ZONE,
                "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
        )
    }

    fn zoned(z: &str) -> serde_json::Value {
        json!({"metadata": {"labels": {ZONE: z}}})
    }

    #[test]
    fn do_not_schedule_keeps_skew() {
        let c = cache(
            vec![
                ("a", zoned("z1")),
                ("b", zoned("z2")),
                ("nolabel", json!({})),
            ],
            vec![("a", spread_pod("x", "DoNotSchedule"))],
        );
        let ctx = Ctx { cache: &c };
        let p = spread_pod("p", "DoNotSchedule");
        let mut s = CycleState::default();
        assert!(PodTopologySpread.pre_filter(&mut s, &p, &ctx).is_success());
        assert_eq!(
            PodTopologySpread
                .filter(&s, &p, c.node("a").unwrap(), &ctx)
                .reasons,
            vec![REASON]
        );
        assert!(
            PodTopologySpread
                .filter(&s, &p, c.node("b").unwrap(), &ctx)
                .is_success()
        );
        assert_eq!(
            PodTopologySpread
                .filter(&s, &p, c.node("nolabel").unwrap(), &ctx)
                .reasons,
            vec![REASON_LABEL]
        );
    }

    #[test]
    fn schedule_anyway_scores_the_emptier_zone_higher() {
        let c = cache(
            vec![("a", zoned("z1")), ("b", zoned("z2"))],
            vec![("a", spread_pod("x", "ScheduleAnyway"))],
        );
        let ctx = Ctx { cache: &c };
        let p = spread_pod("p", "ScheduleAnyway");
        let mut s = CycleState::default();
        let nodes: Vec<&NodeInfo> = c.nodes().collect();
        assert!(
            PodTopologySpread
                .pre_score(&mut s, &p, &nodes, &ctx)
                .is_success()
        );
        let mut sc: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread.score(&s, &p, n, &ctx))
            .collect();
        PodTopologySpread.normalize(&s, &p, &mut sc);
        assert!(sc[1] > sc[0], "{sc:?}");
    }
}
