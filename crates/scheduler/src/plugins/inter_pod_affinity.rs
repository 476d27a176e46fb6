//! InterPodAffinity: required pod affinity and anti-affinity of the
//! incoming pod, and the required anti-affinity of pods already placed
//! (Filter); preferred terms both ways (Score). Counts are per topology
//! pair (label key, value), computed once per cycle in PreFilter.

use std::collections::HashMap;

use crate::framework::{Ctx, CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::{AffinityTerm, PodInfo};
use crate::selector::Labels;

pub struct InterPodAffinity;

pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI: &str = "node(s) didn't satisfy existing pods anti-affinity rules";

type Pair = (String, String);

#[derive(Default)]
struct FilterState {
    existing_anti: HashMap<Pair, i64>,
    affinity: HashMap<Pair, i64>,
    anti: HashMap<Pair, i64>,
}

fn ns_lookup<'a>(ctx: &'a Ctx) -> impl Fn(&str) -> Option<Labels> + 'a {
    move |ns: &str| ctx.cache.ns_labels.get(ns).cloned()
}

fn bump(map: &mut HashMap<Pair, i64>, term: &AffinityTerm, node: &NodeInfo, by: i64) {
    if let Some(v) = node.labels.get(&term.topology_key) {
        *map.entry((term.topology_key.clone(), v.clone()))
            .or_insert(0) += by;
    }
}

fn update(
    s: &mut FilterState,
    pod: &PodInfo,
    other: &PodInfo,
    node: &NodeInfo,
    by: i64,
    ctx: &Ctx,
) {
    let ns = ns_lookup(ctx);
    for t in &other.anti_affinity {
        if t.matches(pod, &ns) {
            bump(&mut s.existing_anti, t, node, by);
        }
    }
    if !pod.affinity.is_empty() && pod.affinity.iter().all(|t| t.matches(other, &ns)) {
        for t in &pod.affinity {
            bump(&mut s.affinity, t, node, by);
        }
    }
    for t in &pod.anti_affinity {
        if t.matches(other, &ns) {
            bump(&mut s.anti, t, node, by);
        }
    }
}

fn has_pair(map: &HashMap<Pair, i64>, key: &str, node: &NodeInfo) -> bool {
    node.labels.get(key).is_some_and(|v| {
        map.get(&(key.to_string(), v.clone()))
            .is_some_and(|n| *n > 0)
    })
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, ctx: &Ctx) -> Status {
        let own_terms = !pod.affinity.is_empty() || !pod.anti_affinity.is_empty();
        if !own_terms && !ctx.cache.any_pod_with_required_anti_affinity() {
            return Status::skip();
        }
        let mut s = FilterState::default();
        for node in ctx.cache.nodes() {
            if !own_terms && node.pods_with_required_anti_affinity == 0 {
                continue;
            }
            for other in &node.pods {
                if other.uid == pod.uid {
                    continue;
                }
                if !own_terms && other.anti_affinity.is_empty() {
                    continue;
                }
                update(&mut s, pod, other, node, 1, ctx);
            }
        }
        if !own_terms && s.existing_anti.is_empty() {
            return Status::skip();
        }
        state.write("InterPodAffinity", s);
        Status::success()
    }
    fn remove_pod(&self, state: &mut CycleState, pod: &PodInfo, victim: &PodInfo, node: &NodeInfo) {
        // `Ctx` is not needed for terms without a namespaceSelector; the
        // empty cache keeps that path cheap and conservative.
        let empty = crate::cache::Cache::default();
        let ctx = Ctx { cache: &empty };
        if let Some(s) = state.read_mut::<FilterState>("InterPodAffinity") {
            update(s, pod, victim, node, -1, &ctx);
        }
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        let Some(s) = state.read::<FilterState>("InterPodAffinity") else {
            return Status::success();
        };
        if node.labels.iter().any(|(k, v)| {
            s.existing_anti
                .get(&(k.clone(), v.clone()))
                .is_some_and(|n| *n > 0)
        }) {
            return Status::unschedulable(REASON_EXISTING_ANTI);
        }
        if pod
            .anti_affinity
            .iter()
            .any(|t| has_pair(&s.anti, &t.topology_key, node))
        {
            return Status::unschedulable(REASON_ANTI);
        }
        if !pod.affinity.is_empty() {
            let all = pod
                .affinity
                .iter()
                .all(|t| has_pair(&s.affinity, &t.topology_key, node));
            if !all {
                // The first pod of a group that selects itself may go
                // anywhere the topology keys exist.
                let none_anywhere = s.affinity.values().all(|n| *n <= 0);
                let empty_ns = ctx_none();
                let selfish = pod.affinity.iter().all(|t| t.matches(pod, &empty_ns));
                let keys = pod
                    .affinity
                    .iter()
                    .all(|t| node.labels.contains_key(&t.topology_key));
                if !(none_anywhere && selfish && keys) {
                    return Status::unresolvable(REASON_AFFINITY);
                }
            }
        }
        Status::success()
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        ctx: &Ctx,
    ) -> Status {
        let own = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if !own && !ctx.cache.any_pod_with_affinity() {
            return Status::skip();
        }
        let ns = ns_lookup(ctx);
        let mut scores: HashMap<Pair, i64> = HashMap::new();
        let mut add = |t: &AffinityTerm, node: &NodeInfo, w: i64| {
            if let Some(v) = node.labels.get(&t.topology_key) {
                *scores
                    .entry((t.topology_key.clone(), v.clone()))
                    .or_insert(0) += w;
            }
        };
        let mut any = false;
        for node in ctx.cache.nodes() {
            if !own && node.pods_with_affinity == 0 {
                continue;
            }
            for other in &node.pods {
                if own {
                    for (w, t) in &pod.preferred_affinity {
                        if t.matches(other, &ns) {
                            add(t, node, *w as i64);
                            any = true;
                        }
                    }
                    for (w, t) in &pod.preferred_anti_affinity {
                        if t.matches(other, &ns) {
                            add(t, node, -(*w as i64));
                            any = true;
                        }
                    }
                }
                // Symmetry: what the placed pods prefer about this one;
                // their required affinity counts with weight 1
                // (hardPodAffinityWeight).
                for (w, t) in &other.preferred_affinity {
                    if t.matches(pod, &ns) {
                        add(t, node, *w as i64);
                        any = true;
                    }
                }
                for (w, t) in &other.preferred_anti_affinity {
                    if t.matches(pod, &ns) {
                        add(t, node, -(*w as i64));
                        any = true;
                    }
                }
                for t in &other.affinity {
                    if t.matches(pod, &ns) {
                        add(t, node, 1);
                        any = true;
                    }
                }
            }
        }
        if !any {
            return Status::skip();
        }
        state.write("InterPodAffinityScore", scores);
        Status::success()
    }
    fn has_score(&self) -> bool {
        true
    }
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo, _: &Ctx) -> i64 {
        let Some(s) = state.read::<HashMap<Pair, i64>>("InterPodAffinityScore") else {
            return 0;
        };
        node.labels
            .iter()
            .filter_map(|(k, v)| s.get(&(k.clone(), v.clone())))
            .sum()
    }
    fn normalize(&self, state: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        if state
            .read::<HashMap<Pair, i64>>("InterPodAffinityScore")
            .is_none()
        {
            return;
        }
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max == min {
                0
            } else {
                MAX_NODE_SCORE * (*s - min) / (max - min)
            };
        }
    }
}

fn ctx_none() -> impl Fn(&str) -> Option<Labels> {
    |_: &str| None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn labelled(name: &str, app: &str, spec_extra: serde_json::Value) -> std::sync::Arc<PodInfo> {
        let mut spec = json!({"containers": [{"name": "c"}]});
        if let Some(o) = spec_extra.as_object() {
            for (k, v) in o {
                spec[k] = v.clone();
            }
        }
        pod(json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": spec}))
    }

    fn host(n: &str) -> serde_json::Value {
        json!({"metadata": {"labels": {"kubernetes.io/hostname": n}}})
    }

    fn anti(app: &str) -> serde_json::Value {
        json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}]}}})
    }

    fn run_filter(c: &crate::cache::Cache, p: &PodInfo, node: &str) -> Status {
        let ctx = Ctx { cache: c };
        let mut s = CycleState::default();
        if InterPodAffinity.pre_filter(&mut s, p, &ctx).code == crate::framework::Code::Skip {
            return Status::success();
        }
        InterPodAffinity.filter(&s, p, c.node(node).unwrap(), &ctx)
    }

    #[test]
    fn anti_affinity_both_ways() {
        // The incoming pod's own anti-affinity.
        let plain_web = cache(
            vec![("a", host("a")), ("b", host("b"))],
            vec![("a", labelled("x", "web", json!({})))],
        );
        let p = labelled("p", "web", anti("web"));
        assert_eq!(run_filter(&plain_web, &p, "a").reasons, vec![REASON_ANTI]);
        assert!(run_filter(&plain_web, &p, "b").is_success());
        // Both: the placed pod's rule is checked first, as upstream.
        let c = cache(
            vec![("a", host("a")), ("b", host("b"))],
            vec![("a", labelled("x", "web", anti("web")))],
        );
        assert_eq!(run_filter(&c, &p, "a").reasons, vec![REASON_EXISTING_ANTI]);
        // The placed pod's anti-affinity against a pod without terms.
        let plain = labelled("q", "web", json!({}));
        assert_eq!(
            run_filter(&c, &plain, "a").reasons,
            vec![REASON_EXISTING_ANTI]
        );
        let other = labelled("r", "db", json!({}));
        assert!(run_filter(&c, &other, "a").is_success());
    }

    #[test]
    fn required_affinity_and_the_first_pod() {
        let aff = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
        let c = cache(
            vec![("a", host("a")), ("b", host("b"))],
            vec![("b", labelled("x", "cache", json!({})))],
        );
        let p = labelled("p", "web", aff.clone());
        assert_eq!(run_filter(&c, &p, "a").reasons, vec![REASON_AFFINITY]);
        assert!(run_filter(&c, &p, "b").is_success());
        // A pod whose affinity selects itself, with no match anywhere yet.
        let empty = cache(vec![("a", host("a"))], vec![]);
        let selfish = labelled(
            "s",
            "cache",
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}]}}}),
        );
        assert!(run_filter(&empty, &selfish, "a").is_success());
    }

    #[test]
    fn preferred_anti_affinity_scores_away() {
        let c = cache(
            vec![("a", host("a")), ("b", host("b"))],
            vec![("a", labelled("x", "web", json!({})))],
        );
        let ctx = Ctx { cache: &c };
        let p = labelled(
            "p",
            "web",
            json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]}}}),
        );
        let mut s = CycleState::default();
        let nodes: Vec<&NodeInfo> = c.nodes().collect();
        assert!(
            InterPodAffinity
                .pre_score(&mut s, &p, &nodes, &ctx)
                .is_success()
        );
        let mut sc: Vec<i64> = nodes
            .iter()
            .map(|n| InterPodAffinity.score(&s, &p, n, &ctx))
            .collect();
        InterPodAffinity.normalize(&s, &p, &mut sc);
        assert_eq!(sc, vec![0, 100]);
    }
}
