//! NodeUnschedulable: cordoned nodes take only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use super::taint_toleration::tolerates;
use crate::framework::{Ctx, CycleState, Plugin, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub struct NodeUnschedulable;

pub const REASON: &str = "node(s) were unschedulable";

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if pod.tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Status::success();
        }
        Status::unresolvable(REASON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn cordoned_node_rejects_unless_tolerated() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let n = node("n", json!({"spec": {"unschedulable": true}}));
        let st = NodeUnschedulable.filter(&CycleState::default(), &pod(json!({})), &n, &ctx);
        assert_eq!(st.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(st.reasons, vec![REASON]);
        let tolerant = pod(
            json!({"spec": {"containers": [{"name": "c"}], "tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        assert!(
            NodeUnschedulable
                .filter(&CycleState::default(), &tolerant, &n, &ctx)
                .is_success()
        );
    }
}
