//! NodeResourcesFit: the pod's effective request must fit in what the
//! node has left (Filter; never overcommitted, pods count included, room
//! kept for pods nominated there with at least this priority), and
//! LeastAllocated scoring (more free CPU and memory scores higher).

use crate::framework::{Ctx, CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;
use crate::resources::Resource;

pub struct NodeResourcesFit;

/// Every resource that does not fit, with upstream's reasons.
pub fn insufficient(
    pod: &PodInfo,
    node: &NodeInfo,
    extra: &Resource,
    extra_pods: i64,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let alloc = &node.allocatable;
    let used = &node.requested;
    if used.pods + extra_pods + 1 > alloc.pods {
        reasons.push("Too many pods".to_string());
    }
    let r = &pod.requests;
    if r.milli_cpu > 0 && r.milli_cpu > alloc.milli_cpu - used.milli_cpu - extra.milli_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if r.memory > 0 && r.memory > alloc.memory - used.memory - extra.memory {
        reasons.push("Insufficient memory".into());
    }
    if r.ephemeral_storage > 0
        && r.ephemeral_storage
            > alloc.ephemeral_storage - used.ephemeral_storage - extra.ephemeral_storage
    {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    for (name, want) in &r.scalar {
        if *want > 0 && *want > alloc.scalar(name) - used.scalar(name) - extra.scalar(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, ctx: &Ctx) -> Status {
        let mut extra = Resource::default();
        let mut extra_pods = 0;
        for n in ctx.cache.nominated(&node.name) {
            if n.uid != pod.uid && n.priority >= pod.priority {
                extra.add(&n.requests);
                extra_pods += 1;
            }
        }
        let reasons = insufficient(pod, node, &extra, extra_pods);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                reasons,
                ..Status::unschedulable("")
            }
        }
    }
    fn has_score(&self) -> bool {
        true
    }
    /// LeastAllocated over CPU and memory (weight 1 each), on requests
    /// with the scoring defaults for containers that set none.
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> i64 {
        let least = |alloc: i64, used: i64| {
            if alloc <= 0 || used > alloc {
                0
            } else {
                (alloc - used) * MAX_NODE_SCORE / alloc
            }
        };
        let cpu = least(
            node.allocatable.milli_cpu,
            node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu,
        );
        let mem = least(
            node.allocatable.memory,
            node.non_zero_requested.memory + pod.non_zero.memory,
        );
        (cpu + mem) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn req(name: &str, cpu: &str, mem: &str) -> std::sync::Arc<PodInfo> {
        pod(
            json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}),
        )
    }

    #[test]
    fn never_overcommits() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let mut n = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "2"}}}),
        );
        assert!(
            NodeResourcesFit
                .filter(&s, &req("a", "1500m", "1Gi"), &n, &ctx)
                .is_success()
        );
        n.add_pod(req("a", "1500m", "1Gi"));
        let st = NodeResourcesFit.filter(&s, &req("b", "600m", "1Gi"), &n, &ctx);
        assert_eq!(st.code, Code::Unschedulable);
        assert_eq!(st.reasons, vec!["Insufficient cpu"]);
        assert!(
            NodeResourcesFit
                .filter(&s, &req("b", "500m", "3Gi"), &n, &ctx)
                .is_success()
        );
        n.add_pod(req("b", "500m", "3Gi"));
        let st = NodeResourcesFit.filter(&s, &req("c", "0", "0"), &n, &ctx);
        assert_eq!(st.reasons, vec!["Too many pods"]);
    }

    #[test]
    fn extended_resources_and_init_containers() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let n = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10", "example.com/gpu": "1"}}}),
        );
        let gpu = |k: i64| {
            pod(json!({"spec": {"containers": [{"name": "c",
            "resources": {"requests": {"example.com/gpu": k.to_string()}}}]}}))
        };
        assert!(NodeResourcesFit.filter(&s, &gpu(1), &n, &ctx).is_success());
        assert_eq!(
            NodeResourcesFit.filter(&s, &gpu(2), &n, &ctx).reasons,
            vec!["Insufficient example.com/gpu"]
        );
        let init = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}]}}),
        );
        assert_eq!(
            NodeResourcesFit.filter(&s, &init, &n, &ctx).reasons,
            vec!["Insufficient cpu"]
        );
    }

    #[test]
    fn nominated_pods_keep_their_room() {
        let high = pod(
            json!({"metadata": {"name": "hi"}, "spec": {"priority": 100, "containers": [{"name": "c",
            "resources": {"requests": {"cpu": "1500m"}}}]}}),
        );
        let c = {
            let mut c = cache(
                vec![(
                    "n",
                    json!({"status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}}),
                )],
                vec![],
            );
            c.set_nominated(&high, Some("n"));
            c
        };
        let ctx = Ctx { cache: &c };
        let n = c.node("n").unwrap();
        let st = NodeResourcesFit.filter(&CycleState::default(), &req("lo", "1", "0"), n, &ctx);
        assert_eq!(st.reasons, vec!["Insufficient cpu"]);
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let empty = node("a", json!({}));
        let mut busy = node("b", json!({}));
        busy.add_pod(req("x", "3", "6Gi"));
        let p = req("p", "1", "1Gi");
        assert!(
            NodeResourcesFit.score(&s, &p, &empty, &ctx)
                > NodeResourcesFit.score(&s, &p, &busy, &ctx)
        );
    }
}
