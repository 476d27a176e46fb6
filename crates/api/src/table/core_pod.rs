//! Pods and PodTemplates. The pod `STATUS` column is upstream's most
//! intricate cell, and the one users read most, so its logic follows
//! upstream's `printPod` step by step.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{
    age, arr_at, at, bool_at, container_cells, deleting, int_at, is_set, name, opt_bool_at, since,
    str_at, time_at,
};
use super::labels::format_labels;
use super::{AGE, Column, NAME, col, wide};

pub(super) const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", d::POD_IP),
    wide("Node", "string", d::POD_NODE_NAME),
    wide("Nominated Node", "string", d::POD_NOMINATED_NODE),
    wide("Readiness Gates", "string", d::POD_READINESS_GATES),
];

pub(super) const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of each container in the template.",
    ),
    col(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    col("Pod Labels", "string", "The labels for the pod template."),
];

/// The pod reason upstream reports for pods on an unreachable node.
const NODE_LOST: &str = "NodeLost";

/// A sidecar: an init container with `restartPolicy: Always`, which keeps
/// running and counts towards `READY` like a regular container.
fn is_restartable_init(init_containers: &[Value], name: &str) -> bool {
    init_containers
        .iter()
        .find(|c| str_at(c, &["name"]) == name)
        .is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

/// When the container last terminated, for the `RESTARTS` "(5m ago)" suffix.
fn last_terminated(status: &Value) -> Option<Timestamp> {
    time_at(status, &["lastState", "terminated", "finishedAt"])
}

fn condition_true(pod: &Value, type_: &str) -> bool {
    arr_at(pod, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// The reason a terminated container gives: its reason, else its signal or
/// exit code.
fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = str_at(terminated, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int_at(terminated, &["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int_at(terminated, &["exitCode"]))
    }
}

pub(super) fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let spec_inits = arr_at(pod, &["spec", "initContainers"]);
    let mut total = arr_at(pod, &["spec", "containers"]).len();
    total += spec_inits
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();
    let mut ready = 0;
    let mut restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut sidecar_restarts: i64 = 0;
    let mut sidecar_last_restart: Option<Timestamp> = None;

    let phase = str_at(pod, &["status", "phase"]);
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let gated = arr_at(pod, &["status", "conditions"]).iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    });
    if gated {
        reason = "SchedulingGated".to_string();
    }

    // Init containers run in order; the first one not done decides the status.
    let mut initializing = false;
    for (i, status) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let restart_count = int_at(status, &["restartCount"]);
        restarts = restarts.wrapping_add(restart_count);
        last_restart = last_restart.max(last_terminated(status));
        let sidecar = is_restartable_init(spec_inits, str_at(status, &["name"]));
        if sidecar {
            sidecar_restarts = sidecar_restarts.wrapping_add(restart_count);
            sidecar_last_restart = sidecar_last_restart.max(last_terminated(status));
        }
        let terminated = at(status, &["state", "terminated"]);
        let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
        match terminated {
            Some(t) if int_at(t, &["exitCode"]) == 0 => continue,
            _ if sidecar && opt_bool_at(status, &["started"]) == Some(true) => {
                if bool_at(status, &["ready"]) {
                    ready += 1;
                }
                continue;
            }
            Some(t) => reason = terminated_reason(t, "Init:"),
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                reason = format!("Init:{waiting_reason}");
            }
            None => reason = format!("Init:{i}/{}", spec_inits.len()),
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        // Walked backwards so that the first container's state wins.
        for status in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts = restarts.wrapping_add(int_at(status, &["restartCount"]));
            last_restart = last_restart.max(last_terminated(status));
            let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
            let terminated = at(status, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if bool_at(status, &["ready"]) && is_set(status, &["state", "running"]) {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed while another still runs.
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    if deleting(pod) && str_at(pod, &["status", "reason"]) == NODE_LOST {
        reason = "Unknown".to_string();
    } else if deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.into(),
        age(pod, now).into(),
        none_if_empty(pod_ip(pod)).into(),
        none_if_empty(str_at(pod, &["spec", "nodeName"])).into(),
        none_if_empty(str_at(pod, &["status", "nominatedNodeName"])).into(),
        readiness_gates(pod).into(),
    ]
}

/// The pod's primary IP. `status.podIP` wins over `status.podIPs[0]`, as in
/// upstream's conversion to its internal type.
fn pod_ip(pod: &Value) -> &str {
    match str_at(pod, &["status", "podIP"]) {
        "" => arr_at(pod, &["status", "podIPs"])
            .first()
            .map_or("", |ip| str_at(ip, &["ip"])),
        ip => ip,
    }
}

/// `READINESS GATES`: how many of the pod's readiness gates are `True`.
fn readiness_gates(pod: &Value) -> String {
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = arr_at(pod, &["status", "conditions"]);
    let met = gates
        .iter()
        .filter(|gate| {
            let type_ = str_at(gate, &["conditionType"]);
            conditions
                .iter()
                .find(|c| str_at(c, &["type"]) == type_)
                .is_some_and(|c| str_at(c, &["status"]) == "True")
        })
        .count();
    format!("{met}/{}", gates.len())
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

pub(super) fn pod_template_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["template", "spec", "containers"]));
    vec![
        name(obj).into(),
        names.into(),
        images.into(),
        format_labels(at(obj, &["template", "metadata", "labels"])).into(),
    ]
}
