//! One scheduling attempt for one pod against the cache: PreFilter, Filter
//! over a rotating sample of nodes, PreScore, Score, and the choice of the
//! best node. Pure (no I/O), so it is unit-tested on cache contents.

use std::collections::{BTreeMap, HashMap};

use crate::cache::Cache;
use crate::framework::{Code, Ctx, CycleState, Framework, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

/// Why no node fit, in upstream's `FitError` shape.
#[derive(Debug, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// A PreFilter rejection, which applies to every node.
    pub pre_filter_msg: Option<String>,
    /// Each rejecting node's status.
    pub statuses: HashMap<String, Status>,
    /// What preemption said, appended as upstream's `PostFilterMsg`.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had
    /// untolerated taint {...}. preemption: ..."
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 && self.pre_filter_msg.is_none() {
            return "no nodes available to schedule pods".into();
        }
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        if let Some(p) = &self.pre_filter_msg {
            msg += &format!(" {p}.");
        }
        let mut hist: BTreeMap<&str, usize> = BTreeMap::new();
        for st in self.statuses.values() {
            for r in &st.reasons {
                *hist.entry(r.as_str()).or_default() += 1;
            }
        }
        let mut parts: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        if !parts.is_empty() {
            msg += &format!(" {}.", parts.join(", "));
        }
        if let Some(p) = &self.post_filter_msg {
            msg += &format!(" {p}");
        }
        msg
    }

    /// Plugins that rejected the pod somewhere (for requeue decisions).
    pub fn plugins(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.statuses.values().map(|s| s.plugin).collect();
        v.sort();
        v.dedup();
        v
    }
}

pub enum Outcome {
    Fit {
        node: String,
        state: CycleState,
        evaluated: usize,
    },
    NoFit(FitError),
    Error(String),
}

/// Upstream's adaptive `percentageOfNodesToScore`: every node below 100,
/// then a share that shrinks with cluster size (50% - n/125, at least 5%),
/// never fewer than 100 nodes.
pub fn num_feasible_to_find(all: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if all < MIN_FEASIBLE {
        return all;
    }
    let pct = (50i64 - (all as i64) / 125).max(5) as usize;
    (all * pct / 100).max(MIN_FEASIBLE)
}

/// Runs every Filter plugin not skipped by its PreFilter on one node.
pub fn run_filters(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    ctx: &Ctx,
) -> Status {
    for &i in &state.active_filters {
        let Some(p) = fw.plugins.get(i) else {
            continue;
        };
        let mut st = p.filter(state, pod, node, ctx);
        if !st.is_success() {
            st.plugin = p.name();
            return st;
        }
    }
    Status::success()
}

/// Runs the PreFilter plugins; a rejection is returned as is. On success
/// it also fixes the list of Filter plugins `run_filters` will call.
pub fn run_pre_filters(fw: &Framework, state: &mut CycleState, pod: &PodInfo, ctx: &Ctx) -> Status {
    state.active_filters.clear();
    for p in &fw.plugins {
        let mut st = p.pre_filter(state, pod, ctx);
        match st.code {
            Code::Success => {}
            Code::Skip => state.skip_filter.push(p.name()),
            _ => {
                st.plugin = p.name();
                return st;
            }
        }
    }
    state.active_filters = (fw.plugins.iter().enumerate())
        .filter(|(_, p)| p.has_filter() && !state.skip_filter.contains(&p.name()))
        .map(|(i, _)| i)
        .collect();
    Status::success()
}

/// A small deterministic generator for breaking score ties.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Schedules one pod. `start` rotates through the nodes between attempts
/// so sampling spreads over the whole cluster.
pub fn schedule(
    fw: &Framework,
    cache: &Cache,
    pod: &PodInfo,
    start: &mut usize,
    rng: &mut Rng,
) -> Outcome {
    let ctx = Ctx { cache };
    let all = cache.node_count();
    if all == 0 {
        return Outcome::NoFit(FitError::default());
    }
    let mut state = CycleState::default();
    let st = run_pre_filters(fw, &mut state, pod, &ctx);
    if st.code == Code::Error {
        return Outcome::Error(st.reasons.join(", "));
    }
    if !st.is_success() {
        let statuses = cache
            .nodes()
            .map(|n| {
                (
                    n.name.clone(),
                    Status {
                        reasons: vec![],
                        ..st.clone()
                    },
                )
            })
            .collect();
        return Outcome::NoFit(FitError {
            num_all_nodes: all,
            pre_filter_msg: Some(st.reasons.join(", ")),
            statuses,
            post_filter_msg: None,
        });
    }
    // A pod nominated by an earlier preemption tries its node first.
    if !pod.nominated_node.is_empty()
        && let Some(n) = cache.node(&pod.nominated_node)
        && run_filters(fw, &state, pod, n, &ctx).is_success()
    {
        return Outcome::Fit {
            node: n.name.clone(),
            state,
            evaluated: 1,
        };
    }
    let want = num_feasible_to_find(all);
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(all));
    let mut statuses = HashMap::new();
    let mut processed = 0;
    for i in 0..all {
        processed += 1;
        let Some(node) = cache.node_at((*start + i) % all) else {
            continue;
        };
        let st = run_filters(fw, &state, pod, node, &ctx);
        if st.is_success() {
            feasible.push(node);
            if feasible.len() >= want {
                break;
            }
        } else if st.code == Code::Error {
            return Outcome::Error(st.reasons.join(", "));
        } else {
            statuses.insert(node.name.clone(), st);
        }
    }
    *start = (*start + processed) % all;
    if feasible.is_empty() {
        return Outcome::NoFit(FitError {
            num_all_nodes: all,
            pre_filter_msg: None,
            statuses,
            post_filter_msg: None,
        });
    }
    if feasible.len() == 1 {
        return Outcome::Fit {
            node: feasible[0].name.clone(),
            state,
            evaluated: processed,
        };
    }
    let totals = score(fw, &mut state, pod, &feasible, &ctx);
    // Highest total; ties broken uniformly (reservoir sampling).
    let mut best = 0;
    let mut ties = 0u64;
    for (i, t) in totals.iter().enumerate() {
        if *t > totals[best] {
            best = i;
            ties = 1;
        } else if *t == totals[best] {
            ties += 1;
            if rng.next_u64().is_multiple_of(ties) {
                best = i;
            }
        }
    }
    Outcome::Fit {
        node: feasible[best].name.clone(),
        state,
        evaluated: processed,
    }
}

/// PreScore and Score: each plugin's scores normalized and weighted.
pub fn score(
    fw: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    nodes: &[&NodeInfo],
    ctx: &Ctx,
) -> Vec<i64> {
    let mut totals = vec![0i64; nodes.len()];
    let mut scores = vec![0i64; nodes.len()];
    for p in &fw.plugins {
        if !p.has_score() {
            continue;
        }
        if p.pre_score(state, pod, nodes, ctx).code == Code::Skip {
            continue;
        }
        let weight = fw.weights.get(p.name()).copied().unwrap_or(1);
        for (i, n) in nodes.iter().enumerate() {
            scores[i] = p.score(state, pod, n, ctx);
        }
        p.normalize(state, pod, &mut scores);
        for (t, s) in totals.iter_mut().zip(&scores) {
            *t += s * weight;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn sample_size_follows_upstream() {
        assert_eq!(num_feasible_to_find(50), 50);
        assert_eq!(num_feasible_to_find(100), 100);
        assert_eq!(num_feasible_to_find(5000), 500);
        assert_eq!(num_feasible_to_find(1000), 420);
    }

    #[test]
    fn message_has_upstreams_shape() {
        let fw = Framework::default_plugins();
        let c = cache(
            vec![
                (
                    "a",
                    json!({"status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"}}}),
                ),
                (
                    "b",
                    json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
                ),
                (
                    "c",
                    json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
                ),
            ],
            vec![],
        );
        let p = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let Outcome::NoFit(mut e) = schedule(&fw, &c, &p, &mut 0, &mut Rng::new(1)) else {
            panic!("expected no fit");
        };
        e.post_filter_msg = Some(
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
                .into(),
        );
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn picks_the_only_fitting_node_and_the_emptier_one() {
        let fw = Framework::default_plugins();
        let small = json!({"status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"}}});
        let big = json!({"status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "10"}}});
        let c = cache(vec![("small", small.clone()), ("big", big.clone())], vec![]);
        let p = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let Outcome::Fit { node, .. } = schedule(&fw, &c, &p, &mut 0, &mut Rng::new(1)) else {
            panic!("expected a fit");
        };
        assert_eq!(node, "big");
        let busy = pod(
            json!({"metadata": {"name": "busy"}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "6", "memory": "12Gi"}}}]}}),
        );
        let c = cache(vec![("x", big.clone()), ("y", big)], vec![("x", busy)]);
        let p = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
        );
        for seed in 1..5 {
            let Outcome::Fit { node, .. } = schedule(&fw, &c, &p, &mut 0, &mut Rng::new(seed))
            else {
                panic!("expected a fit");
            };
            assert_eq!(node, "y");
        }
    }
}
