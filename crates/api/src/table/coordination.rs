//! `coordination.k8s.io`: Leases and LeaseCandidates.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, name, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "Lease",
        columns: LEASE,
        cells: lease,
    },
    Printer {
        kind: "LeaseCandidate",
        columns: LEASE_CANDIDATE,
        cells: lease_candidate,
    },
];

const LEASE: &[Column] = &[NAME, col("Holder", "string", d::LEASE_HOLDER), AGE];

fn lease(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "holderIdentity"]).into(),
        age(obj, now).into(),
    ]
}

const LEASE_CANDIDATE: &[Column] = &[
    NAME,
    col("LeaseName", "string", d::LEASE_CANDIDATE_LEASE_NAME),
    // Upstream looks these descriptions up in ObjectMeta's docs, which have
    // no such fields, so they are empty.
    col("BinaryVersion", "string", ""),
    col("EmulationVersion", "string", ""),
    AGE,
];

fn lease_candidate(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "leaseName"]).into(),
        str_at(obj, &["spec", "binaryVersion"]).into(),
        str_at(obj, &["spec", "emulationVersion"]).into(),
        age(obj, now).into(),
    ]
}
