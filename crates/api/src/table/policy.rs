//! `policy/v1`: PodDisruptionBudgets.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{age, at, int_at, int_or_string, name};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[Printer {
    kind: "PodDisruptionBudget",
    columns: PDB,
    cells: pdb,
}];

const PDB: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pdb(obj: &Value, now: Timestamp) -> Vec<Value> {
    // Either bound may be a count or a percentage; `N/A` when not set.
    let bound = |field: &str| at(obj, &["spec", field]).map_or("N/A".to_string(), int_or_string);
    vec![
        name(obj).into(),
        bound("minAvailable").into(),
        bound("maxUnavailable").into(),
        int_at(obj, &["status", "disruptionsAllowed"]).into(),
        age(obj, now).into(),
    ]
}
