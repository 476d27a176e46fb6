//! NodePorts: a host port (protocol, address) can be used once per node.

use crate::framework::{Ctx, CycleState, Plugin, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub struct NodePorts;

pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        let clash = pod
            .host_ports
            .iter()
            .any(|p| node.used_ports.iter().any(|u| u.conflicts(p)));
        if clash {
            Status::unschedulable(REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn same_port_and_protocol_conflict() {
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let with_port = |name: &str, port: i64, proto: &str| {
            pod(
                json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c",
                "ports": [{"containerPort": 80, "hostPort": port, "protocol": proto}]}]}}),
            )
        };
        let mut n = node("n", json!({}));
        n.add_pod(with_port("a", 8080, "TCP"));
        assert_eq!(
            NodePorts
                .filter(&s, &with_port("b", 8080, "TCP"), &n, &ctx)
                .reasons,
            vec![REASON]
        );
        assert!(
            NodePorts
                .filter(&s, &with_port("b", 8080, "UDP"), &n, &ctx)
                .is_success()
        );
        assert!(
            NodePorts
                .filter(&s, &with_port("b", 8081, "TCP"), &n, &ctx)
                .is_success()
        );
        n.remove_pod("uid-a");
        assert!(
            NodePorts
                .filter(&s, &with_port("b", 8080, "TCP"), &n, &ctx)
                .is_success()
        );
    }
}
