//! NodeResourcesBalancedAllocation: prefer nodes where CPU and memory
//! would be used in similar fractions (1 - standard deviation).

use crate::framework::{Ctx, CycleState, MAX_NODE_SCORE, Plugin};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
    fn has_score(&self) -> bool {
        true
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> i64 {
        let frac = |used: i64, alloc: i64| {
            if alloc <= 0 {
                0.0
            } else {
                (used as f64 / alloc as f64).min(1.0)
            }
        };
        let cpu = frac(
            node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu,
            node.allocatable.milli_cpu,
        );
        let mem = frac(
            node.non_zero_requested.memory + pod.non_zero.memory,
            node.allocatable.memory,
        );
        // The standard deviation of two values is half their distance.
        let std = (cpu - mem).abs() / 2.0;
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn balanced_beats_lopsided() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let n = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}}),
        );
        let even = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}),
        );
        let odd = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "4", "memory": "200Mi"}}}]}}),
        );
        assert_eq!(BalancedAllocation.score(&s, &even, &n, &ctx), 100);
        assert!(BalancedAllocation.score(&s, &odd, &n, &ctx) < 60);
    }
}
