//! Which pods go first when a controller scales down: upstream's
//! `ActivePodsWithRanks` order, so the cheapest pods to lose are deleted
//! first.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;

use super::pods;

/// The annotation users set to make a pod cheaper (or dearer) to delete.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn deletion_cost(p: &Pod) -> i64 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0) as i64
}

fn phase_rank(p: &Pod) -> u8 {
    match pods::phase(p) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Orders pods so that the first are the ones to delete first:
/// unscheduled before scheduled, pending before unknown before running,
/// not ready before ready, lower deletion cost first, ready for a shorter
/// time first, more restarts first, newer first.
pub fn delete_first(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| !pods::node_name(p).is_empty();
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| pods::is_ready(a).cmp(&pods::is_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| match (pods::ready_since(a), pods::ready_since(b)) {
            // Ready more recently: less established, goes first.
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| pods::restarts(b).cmp(&pods::restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            // Newer first; no timestamp counts as newest.
            match (created(a), created(b)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(&x),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, node: &str, phase: &str, ready: Option<i64>, created: i64) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(created).unwrap()));
        p.spec = Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.to_string()),
            ..Default::default()
        });
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions: ready.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(jiff::Timestamp::from_second(t).unwrap())),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        p
    }

    fn order(mut v: Vec<Pod>) -> Vec<String> {
        v.sort_by(delete_first);
        v.into_iter().map(|p| p.metadata.name.unwrap()).collect()
    }

    #[test]
    fn upstream_ranking() {
        let got = order(vec![
            pod("ready-old", "n", "Running", Some(10), 1),
            pod("unscheduled", "", "Pending", None, 1),
            pod("pending", "n", "Pending", None, 1),
            pod("running-unready", "n", "Running", None, 1),
            pod("ready-new", "n", "Running", Some(20), 1),
        ]);
        assert_eq!(
            got,
            [
                "unscheduled",
                "pending",
                "running-unready",
                "ready-new",
                "ready-old"
            ]
        );
    }

    #[test]
    fn cost_restarts_and_age() {
        let mut cheap = pod("cheap", "n", "Running", Some(10), 1);
        cheap
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(DELETION_COST.into(), "-5".into());
        let mut crashy = pod("crashy", "n", "Running", Some(10), 1);
        crashy.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            restart_count: 4,
            ..Default::default()
        }]);
        let got = order(vec![
            pod("older", "n", "Running", Some(10), 1),
            crashy,
            pod("newer", "n", "Running", Some(10), 5),
            cheap,
        ]);
        assert_eq!(got, ["cheap", "crashy", "newer", "older"]);
    }
}
