//! `apps/v1`: Deployments, ReplicaSets, StatefulSets, DaemonSets and
//! ControllerRevisions.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, arr_at, at, bool_at, container_cells, int_at, name, str_at};
use super::labels::{format_label_selector, format_labels, selector_string};
use super::{AGE, Column, NAME, Printer, col, wide};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "Deployment",
        columns: DEPLOYMENT,
        cells: deployment,
    },
    Printer {
        kind: "ReplicaSet",
        columns: REPLICA_SET,
        cells: replica_set,
    },
    Printer {
        kind: "StatefulSet",
        columns: STATEFUL_SET,
        cells: stateful_set,
    },
    Printer {
        kind: "DaemonSet",
        columns: DAEMON_SET,
        cells: daemon_set,
    },
    Printer {
        kind: "ControllerRevision",
        columns: CONTROLLER_REVISION,
        cells: controller_revision,
    },
];

const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// The names and images of `spec.template`'s containers.
fn template_containers(obj: &Value) -> (String, String) {
    container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]))
}

const DEPLOYMENT: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", d::DEPLOY_UPDATED),
    col("Available", "string", d::DEPLOY_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", d::DEPLOY_SELECTOR),
];

fn deployment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    // Unlike the other workloads, an empty selector prints as nothing here.
    let selector = selector_string(at(obj, &["spec", "selector"]))
        .unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        name(obj).into(),
        ready_of_desired(obj).into(),
        int_at(obj, &["status", "updatedReplicas"]).into(),
        int_at(obj, &["status", "availableReplicas"]).into(),
        age(obj, now).into(),
        names.into(),
        images.into(),
        selector.into(),
    ]
}

/// `READY` as `ready/desired`.
fn ready_of_desired(obj: &Value) -> String {
    format!(
        "{}/{}",
        int_at(obj, &["status", "readyReplicas"]),
        int_at(obj, &["spec", "replicas"])
    )
}

const REPLICA_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", d::RS_SPEC_REPLICAS),
    col("Current", "integer", d::RS_STATUS_REPLICAS),
    col("Ready", "integer", d::RS_STATUS_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", d::RS_SELECTOR),
];

fn replica_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        name(obj).into(),
        int_at(obj, &["spec", "replicas"]).into(),
        int_at(obj, &["status", "replicas"]).into(),
        int_at(obj, &["status", "readyReplicas"]).into(),
        age(obj, now).into(),
        names.into(),
        images.into(),
        format_label_selector(at(obj, &["spec", "selector"])).into(),
    ]
}

const STATEFUL_SET: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

fn stateful_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        name(obj).into(),
        ready_of_desired(obj).into(),
        age(obj, now).into(),
        names.into(),
        images.into(),
    ]
}

const DAEMON_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", d::DS_DESIRED),
    col("Current", "integer", d::DS_CURRENT),
    col("Ready", "integer", d::DS_READY),
    col("Up-to-date", "integer", d::DS_UPDATED),
    col("Available", "integer", d::DS_AVAILABLE),
    col("Node Selector", "string", d::POD_NODE_SELECTOR),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", d::DS_SELECTOR),
];

fn daemon_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    let status = |field: &str| int_at(obj, &["status", field]);
    vec![
        name(obj).into(),
        status("desiredNumberScheduled").into(),
        status("currentNumberScheduled").into(),
        status("numberReady").into(),
        status("updatedNumberScheduled").into(),
        status("numberAvailable").into(),
        format_labels(at(obj, &["spec", "template", "spec", "nodeSelector"])).into(),
        age(obj, now).into(),
        names.into(),
        images.into(),
        format_label_selector(at(obj, &["spec", "selector"])).into(),
    ]
}

const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col("Revision", "string", d::CONTROLLER_REVISION_REVISION),
    AGE,
];

fn controller_revision(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        controller_of(obj).into(),
        int_at(obj, &["revision"]).into(),
        age(obj, now).into(),
    ]
}

/// The controlling owner as `kind.group/name` (`daemonset.apps/fluentd`),
/// or `<none>`.
fn controller_of(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| bool_at(o, &["controller"]))
    else {
        return "<none>".to_string();
    };
    let owner_name = str_at(owner, &["name"]);
    let kind = str_at(owner, &["kind"]);
    // The group is the part of apiVersion before the slash ("" for "v1").
    let group = match str_at(owner, &["apiVersion"]).split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    match (kind, group) {
        ("", "") => owner_name.to_string(),
        (kind, "") => format!("{}/{owner_name}", kind.to_lowercase()),
        (kind, group) => format!("{}/{owner_name}", format!("{kind}.{group}").to_lowercase()),
    }
}
