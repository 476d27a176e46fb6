//! PersistentVolumes and PersistentVolumeClaims.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, arr_at, at, deleting, name, opt_str_at, quantity, str_at};
use super::{AGE, Column, NAME, col, wide};

pub(super) const PV_COLUMNS: &[Column] = &[
    NAME,
    col("Capacity", "string", d::PV_CAPACITY),
    col("Access Modes", "string", d::PV_ACCESS_MODES),
    col("Reclaim Policy", "string", d::PV_RECLAIM_POLICY),
    col("Status", "string", d::PV_PHASE),
    col("Claim", "string", d::PV_CLAIM_REF),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col("Reason", "string", d::PV_REASON),
    AGE,
    wide("VolumeMode", "string", d::PV_VOLUME_MODE),
];

pub(super) const PVC_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", d::PVC_PHASE),
    col("Volume", "string", d::PVC_VOLUME_NAME),
    col("Capacity", "string", d::PVC_CAPACITY),
    col("Access Modes", "string", d::PVC_ACCESS_MODES),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide("VolumeMode", "string", d::PVC_VOLUME_MODE),
];

/// The beta annotation that, when present, overrides `storageClassName`.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub(super) fn pv_cells(pv: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match at(pv, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, &["status", "phase"])
    };
    let class = opt_str_at(pv, &["metadata", "annotations", BETA_STORAGE_CLASS])
        .unwrap_or_else(|| str_at(pv, &["spec", "storageClassName"]));
    vec![
        name(pv).into(),
        quantity(at(pv, &["spec", "capacity", "storage"])).into(),
        access_modes(arr_at(pv, &["spec", "accessModes"])).into(),
        str_at(pv, &["spec", "persistentVolumeReclaimPolicy"]).into(),
        phase.into(),
        claim.into(),
        class.into(),
        unset_if_missing(opt_str_at(pv, &["spec", "volumeAttributesClassName"])).into(),
        str_at(pv, &["status", "reason"]).into(),
        age(pv, now).into(),
        unset_if_missing(opt_str_at(pv, &["spec", "volumeMode"])).into(),
    ]
}

pub(super) fn pvc_cells(pvc: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, &["status", "phase"])
    };
    let volume = str_at(pvc, &["spec", "volumeName"]);
    // Capacity and access modes are the bound volume's, so blank until bound.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(pvc, &["status", "capacity", "storage"])),
            access_modes(arr_at(pvc, &["status", "accessModes"])),
        )
    };
    let class = opt_str_at(pvc, &["metadata", "annotations", BETA_STORAGE_CLASS])
        .or_else(|| opt_str_at(pvc, &["spec", "storageClassName"]))
        .unwrap_or("");
    vec![
        name(pvc).into(),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class.into(),
        unset_if_missing(opt_str_at(pvc, &["spec", "volumeAttributesClassName"])).into(),
        age(pvc, now).into(),
        unset_if_missing(opt_str_at(pvc, &["spec", "volumeMode"])).into(),
    ]
}

/// Upstream's `GetAccessModesAsString`: the distinct modes abbreviated, always
/// in the order RWO, ROX, RWX, RWOP.
fn access_modes(modes: &[Value]) -> String {
    let has = |mode: &str| modes.iter().any(|m| m.as_str() == Some(mode));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn unset_if_missing(s: Option<&str>) -> &str {
    s.unwrap_or("<unset>")
}
