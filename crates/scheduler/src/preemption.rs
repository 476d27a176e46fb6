//! PostFilter: preemption. When no node fits, find a node where evicting
//! pods of lower priority would make room, choosing (as upstream's
//! `pickOneNodeForPreemption`) the lowest highest-victim priority, then the
//! lowest sum of victim priorities, then the fewest victims; victims that
//! can stay are reprieved, highest priority first.
//!
//! PodDisruptionBudgets shape the choice as upstream's: victims whose
//! eviction would break a budget are reprieved first, and the node with
//! the fewest broken budgets wins before any priority comparison. Budgets
//! are a preference, not a veto (preemption deletes; it does not evict).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::algorithm::{FitError, run_filters, run_pre_filters};
use crate::cache::Cache;
use crate::framework::{Code, Ctx, CycleState, Framework};
use crate::podinfo::PodInfo;

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

#[derive(Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
    /// Victims whose eviction breaks a PodDisruptionBudget.
    pub violations: usize,
}

/// Splits `pods` (most important first) into those whose removal would
/// break a budget and those whose would not, consuming each budget's
/// allowed disruptions in that order (upstream's
/// `filterPodsWithPDBViolation`).
fn split_by_budget(cache: &Cache, pods: &[Arc<PodInfo>]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<(&crate::cache::Budget, i32)> =
        cache.pdbs.values().map(|b| (b, b.allowed)).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut breaks = false;
        for (b, left) in allowed.iter_mut() {
            let matches = b.namespace == p.namespace
                && b.selector.as_ref().is_some_and(|s| s.matches(&p.labels));
            if matches {
                *left -= 1;
                breaks |= *left < 0;
            }
        }
        if breaks {
            violating.push(p.clone());
        } else {
            fine.push(p.clone());
        }
    }
    (violating, fine)
}

pub enum Preemption {
    /// Nominate `node`, evict `victims`.
    Nominate(Candidate),
    /// Nothing to do; the message for the FitError.
    NotHelpful(String),
}

fn summary(all: usize, hist: &BTreeMap<&str, usize>) -> String {
    let mut parts: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    format!(
        "preemption: 0/{all} nodes are available: {}.",
        parts.join(", ")
    )
}

/// Whether `pod` fits on `node` with `victims` removed.
fn fits_without(
    fw: &Framework,
    cache: &Cache,
    pod: &PodInfo,
    node: &str,
    gone: &[Arc<PodInfo>],
) -> bool {
    let Some(info) = cache.node(node) else {
        return false;
    };
    let ctx = Ctx { cache };
    let mut copy = info.clone_shallow();
    let mut state = CycleState::default();
    if !run_pre_filters(fw, &mut state, pod, &ctx).is_success() {
        return false;
    }
    for v in gone {
        copy.remove_pod(&v.uid);
        for p in &fw.plugins {
            p.remove_pod(&mut state, pod, v, info);
        }
    }
    run_filters(fw, &state, pod, &copy, &ctx).is_success()
}

pub fn preempt(fw: &Framework, cache: &Cache, pod: &PodInfo, fit: &FitError) -> Preemption {
    let all = fit.num_all_nodes;
    if pod.preempt_never {
        return Preemption::NotHelpful(
            "preemption: not eligible due to preemptionPolicy=Never.".into(),
        );
    }
    // An earlier preemption for this pod is still making room.
    if !pod.nominated_node.is_empty()
        && cache.node(&pod.nominated_node).is_some_and(|n| {
            n.pods
                .iter()
                .any(|p| p.deleting && p.priority < pod.priority)
        })
    {
        return Preemption::NotHelpful(
            "preemption: not eligible due to a terminating pod on the nominated node.".into(),
        );
    }
    let mut hist: BTreeMap<&str, usize> = BTreeMap::new();
    let mut candidates = Vec::new();
    let mut names: Vec<&String> = fit.statuses.keys().collect();
    names.sort();
    for name in names {
        let st = &fit.statuses[name];
        if st.code != Code::Unschedulable {
            *hist.entry(NOT_HELPFUL).or_default() += 1;
            continue;
        }
        let Some(info) = cache.node(name) else {
            continue;
        };
        let mut lower: Vec<Arc<PodInfo>> = info
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority && !p.deleting)
            .cloned()
            .collect();
        if lower.is_empty() || !fits_without(fw, cache, pod, name, &lower) {
            *hist.entry(NO_VICTIMS).or_default() += 1;
            continue;
        }
        // Reprieve: try to keep each, budget-breaking ones first, then
        // the rest, most important first within each group.
        lower.sort_by_key(|v| std::cmp::Reverse(v.priority));
        let (violating, fine) = split_by_budget(cache, &lower);
        let mut victims = lower.clone();
        let mut violations = 0;
        for (p, breaks) in
            (violating.iter().map(|p| (p, true))).chain(fine.iter().map(|p| (p, false)))
        {
            let without: Vec<Arc<PodInfo>> =
                victims.iter().filter(|v| v.uid != p.uid).cloned().collect();
            if fits_without(fw, cache, pod, name, &without) {
                victims = without;
            } else if breaks {
                violations += 1;
            }
        }
        candidates.push(Candidate {
            node: name.clone(),
            victims,
            violations,
        });
    }
    let nodes_without_status = all.saturating_sub(fit.statuses.len());
    if nodes_without_status > 0 && candidates.is_empty() {
        *hist.entry(NOT_HELPFUL).or_default() += nodes_without_status;
    }
    let best = candidates.into_iter().min_by_key(|c| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| v.priority as i64 + (1 << 31))
            .sum();
        (c.violations, highest, sum, c.victims.len())
    });
    match best {
        Some(c) => Preemption::Nominate(c),
        None => Preemption::NotHelpful(summary(all, &hist)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{Outcome, Rng, schedule};
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn p(name: &str, prio: i32, cpu: &str) -> Arc<PodInfo> {
        pod(
            json!({"metadata": {"name": name}, "spec": {"priority": prio,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}),
        )
    }

    #[test]
    fn evicts_the_cheapest_lower_priority_set() {
        let fw = Framework::default_plugins();
        let alloc = json!({"status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}});
        let c = cache(
            vec![("a", alloc.clone()), ("b", alloc)],
            vec![
                ("a", p("a-low", 10, "1")),
                ("a", p("a-mid", 50, "1")),
                ("b", p("b-low1", 5, "1")),
                ("b", p("b-low2", 5, "1")),
            ],
        );
        let hi = p("hi", 100, "1");
        let Outcome::NoFit(fit) = schedule(&fw, &c, &hi, &mut 0, &mut Rng::new(1)) else {
            panic!("nodes are full");
        };
        let Preemption::Nominate(cand) = preempt(&fw, &c, &hi, &fit) else {
            panic!("expected a candidate");
        };
        // One victim suffices on each node; b's has the lower priority.
        assert_eq!(cand.node, "b");
        assert_eq!(cand.victims.len(), 1);
        assert_eq!(cand.victims[0].priority, 5);
    }

    #[test]
    fn not_helpful_and_no_victims_messages() {
        let fw = Framework::default_plugins();
        let c = cache(
            vec![
                (
                    "a",
                    json!({"status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"}}}),
                ),
                (
                    "t",
                    json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
                ),
            ],
            vec![("a", p("same", 100, "1"))],
        );
        let hi = p("hi", 100, "1");
        let Outcome::NoFit(fit) = schedule(&fw, &c, &hi, &mut 0, &mut Rng::new(1)) else {
            panic!("no fit");
        };
        let Preemption::NotHelpful(msg) = preempt(&fw, &c, &hi, &fit) else {
            panic!("nothing to preempt");
        };
        assert_eq!(
            msg,
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn prefers_the_node_whose_victims_break_no_budget() {
        let fw = Framework::default_plugins();
        let alloc = json!({"status": {"allocatable": {"cpu": "1", "memory": "4Gi", "pods": "10"}}});
        let guarded = pod(
            json!({"metadata": {"name": "guarded", "labels": {"app": "db"}},
            "spec": {"priority": 1, "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
        );
        let mut c = cache(
            vec![("a", alloc.clone()), ("b", alloc)],
            vec![("a", guarded), ("b", p("free", 50, "1"))],
        );
        let hi = p("hi", 100, "1");
        let Outcome::NoFit(fit) = schedule(&fw, &c, &hi, &mut 0, &mut Rng::new(1)) else {
            panic!("nodes are full");
        };
        // Without a budget the cheaper victim (priority 1, on a) is chosen.
        let Preemption::Nominate(cand) = preempt(&fw, &c, &hi, &fit) else {
            panic!("expected a candidate");
        };
        assert_eq!((cand.node.as_str(), cand.violations), ("a", 0));
        // A budget with no disruptions left on app=db moves it to b.
        let sel = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([("app".to_string(), "db".to_string())].into()),
            ..Default::default()
        };
        c.pdbs.insert(
            "pdb".into(),
            crate::cache::Budget {
                namespace: "default".into(),
                selector: Some(crate::selector::Selector::parse(Some(&sel))),
                allowed: 0,
            },
        );
        let Preemption::Nominate(cand) = preempt(&fw, &c, &hi, &fit) else {
            panic!("expected a candidate");
        };
        assert_eq!((cand.node.as_str(), cand.violations), ("b", 0));
    }
}
