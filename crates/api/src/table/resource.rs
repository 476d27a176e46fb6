//! `resource.k8s.io` (dynamic resource allocation): DeviceClasses,
//! ResourceClaims, ResourceClaimTemplates and ResourceSlices.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, arr_at, deleting, is_set, name, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "DeviceClass",
        columns: NAME_AGE,
        cells: name_age,
    },
    Printer {
        kind: "ResourceClaim",
        columns: RESOURCE_CLAIM,
        cells: resource_claim,
    },
    Printer {
        kind: "ResourceClaimTemplate",
        columns: NAME_AGE,
        cells: name_age,
    },
    Printer {
        kind: "ResourceSlice",
        columns: RESOURCE_SLICE,
        cells: resource_slice,
    },
];

const NAME_AGE: &[Column] = &[NAME, AGE];

fn name_age(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), age(obj, now).into()]
}

const RESOURCE_CLAIM: &[Column] = &[
    NAME,
    col(
        "State",
        "string",
        "A summary of the current state (allocated, pending, reserved, etc.).",
    ),
    AGE,
];

/// `STATE`: `deleted`, `pending`, `allocated` and `reserved`, as they apply.
fn resource_claim(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut states = Vec::new();
    if deleting(obj) {
        states.push("deleted");
    }
    if !is_set(obj, &["status", "allocation"]) {
        if !deleting(obj) {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !arr_at(obj, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    vec![
        name(obj).into(),
        states.join(",").into(),
        age(obj, now).into(),
    ]
}

const RESOURCE_SLICE: &[Column] = &[
    NAME,
    col("Node", "string", d::RESOURCE_SLICE_NODE),
    col("Driver", "string", d::RESOURCE_SLICE_DRIVER),
    col("Pool", "string", d::RESOURCE_POOL_NAME),
    AGE,
];

fn resource_slice(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "nodeName"]).into(),
        str_at(obj, &["spec", "driver"]).into(),
        str_at(obj, &["spec", "pool", "name"]).into(),
        age(obj, now).into(),
    ]
}
