//! NodeName: a pod that names its node fits only there.

use crate::framework::{Ctx, CycleState, Plugin, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub struct NodeName;

pub const REASON: &str = "node(s) didn't match the requested node name";

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        if pod.node_name.is_empty() || pod.node_name == node.name {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn only_the_named_node() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let p = pod(json!({"spec": {"containers": [{"name": "c"}], "nodeName": "a"}}));
        let s = CycleState::default();
        assert!(
            NodeName
                .filter(&s, &p, &node("a", json!({})), &ctx)
                .is_success()
        );
        assert!(
            !NodeName
                .filter(&s, &p, &node("b", json!({})), &ctx)
                .is_success()
        );
    }
}
