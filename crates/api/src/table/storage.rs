//! `storage.k8s.io/v1`: StorageClasses, VolumeAttachments, CSIDrivers,
//! CSINodes, CSIStorageCapacities and VolumeAttributesClasses.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{
    age, arr_at, at, bool_at, len_at, name, opt_bool_at, opt_str_at, quantity, str_at,
};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "StorageClass",
        columns: STORAGE_CLASS,
        cells: storage_class,
    },
    Printer {
        kind: "VolumeAttachment",
        columns: VOLUME_ATTACHMENT,
        cells: volume_attachment,
    },
    Printer {
        kind: "CSIDriver",
        columns: CSI_DRIVER,
        cells: csi_driver,
    },
    Printer {
        kind: "CSINode",
        columns: CSI_NODE,
        cells: csi_node,
    },
    Printer {
        kind: "CSIStorageCapacity",
        columns: CSI_STORAGE_CAPACITY,
        cells: csi_storage_capacity,
    },
    Printer {
        kind: "VolumeAttributesClass",
        columns: VOLUME_ATTRIBUTES_CLASS,
        cells: volume_attributes_class,
    },
];

const STORAGE_CLASS: &[Column] = &[
    NAME,
    col("Provisioner", "string", d::SC_PROVISIONER),
    col("ReclaimPolicy", "string", d::SC_RECLAIM_POLICY),
    col("VolumeBindingMode", "string", d::SC_BINDING_MODE),
    col("AllowVolumeExpansion", "string", d::SC_ALLOW_EXPANSION),
    AGE,
];

/// The annotations, GA and beta, that mark the cluster's default class.
const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

fn storage_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let is_default = DEFAULT_CLASS_ANNOTATIONS
        .iter()
        .any(|a| str_at(obj, &["metadata", "annotations", a]) == "true");
    let mut class_name = name(obj).to_string();
    if is_default {
        class_name.push_str(" (default)");
    }
    // Unset policies print as the values the API server defaults them to.
    vec![
        class_name.into(),
        str_at(obj, &["provisioner"]).into(),
        opt_str_at(obj, &["reclaimPolicy"])
            .unwrap_or("Delete")
            .into(),
        opt_str_at(obj, &["volumeBindingMode"])
            .unwrap_or("Immediate")
            .into(),
        bool_at(obj, &["allowVolumeExpansion"]).into(),
        age(obj, now).into(),
    ]
}

const VOLUME_ATTACHMENT: &[Column] = &[
    NAME,
    Column::new("Attacher", "string", "name", d::VA_ATTACHER, 0),
    col("PV", "string", d::VA_PV),
    col("Node", "string", d::VA_NODE),
    col("Attached", "boolean", d::VA_ATTACHED),
    AGE,
];

fn volume_attachment(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "attacher"]).into(),
        str_at(obj, &["spec", "source", "persistentVolumeName"]).into(),
        str_at(obj, &["spec", "nodeName"]).into(),
        bool_at(obj, &["status", "attached"]).into(),
        age(obj, now).into(),
    ]
}

const CSI_DRIVER: &[Column] = &[
    NAME,
    col("AttachRequired", "boolean", d::CSIDRIVER_ATTACH_REQUIRED),
    col("PodInfoOnMount", "boolean", d::CSIDRIVER_POD_INFO_ON_MOUNT),
    col("StorageCapacity", "boolean", d::CSIDRIVER_STORAGE_CAPACITY),
    col("TokenRequests", "string", d::CSIDRIVER_TOKEN_REQUESTS),
    col(
        "RequiresRepublish",
        "boolean",
        d::CSIDRIVER_REQUIRES_REPUBLISH,
    ),
    col("Modes", "string", d::CSIDRIVER_MODES),
    AGE,
];

fn csi_driver(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec_bool =
        |field: &str, default: bool| opt_bool_at(obj, &["spec", field]).unwrap_or(default);
    let modes: Vec<&str> = arr_at(obj, &["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    // An empty list reads back from storage as unset, so it prints the same.
    let audiences: Vec<&str> = arr_at(obj, &["spec", "tokenRequests"])
        .iter()
        .map(|t| str_at(t, &["audience"]))
        .collect();
    let token_requests = if audiences.is_empty() {
        "<unset>".to_string()
    } else {
        audiences.join(",")
    };
    vec![
        name(obj).into(),
        spec_bool("attachRequired", true).into(),
        spec_bool("podInfoOnMount", false).into(),
        spec_bool("storageCapacity", false).into(),
        token_requests.into(),
        spec_bool("requiresRepublish", false).into(),
        modes.into(),
        age(obj, now).into(),
    ]
}

const CSI_NODE: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

fn csi_node(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        len_at(obj, &["spec", "drivers"]).into(),
        age(obj, now).into(),
    ]
}

const CSI_STORAGE_CAPACITY: &[Column] = &[
    NAME,
    col("StorageClassName", "string", d::CSISC_STORAGE_CLASS),
    col("Capacity", "string", d::CSISC_CAPACITY),
];

fn csi_storage_capacity(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let capacity = match at(obj, &["capacity"]) {
        Some(q) => quantity(Some(q)),
        None => "<unset>".to_string(),
    };
    vec![
        name(obj).into(),
        str_at(obj, &["storageClassName"]).into(),
        capacity.into(),
    ]
}

const VOLUME_ATTRIBUTES_CLASS: &[Column] =
    &[NAME, col("DriverName", "string", d::VAC_DRIVER_NAME), AGE];

/// Upstream also appends ` (default)` to a class annotated as the default;
/// that annotation is not handled here.
fn volume_attributes_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["driverName"]).into(),
        age(obj, now).into(),
    ]
}
