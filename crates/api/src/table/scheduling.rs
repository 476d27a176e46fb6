//! `scheduling.k8s.io/v1`: PriorityClasses.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, bool_at, int_at, name, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[Printer {
    kind: "PriorityClass",
    columns: PRIORITY_CLASS,
    cells: priority_class,
}];

/// Upstream marks `PreemptionPolicy` as a default column although it only
/// fills it in wide output; the server always prints wide, so it shows.
const PRIORITY_CLASS: &[Column] = &[
    NAME,
    col("Value", "integer", d::PRIORITYCLASS_VALUE),
    col("Global-Default", "boolean", d::PRIORITYCLASS_GLOBAL_DEFAULT),
    AGE,
    col("PreemptionPolicy", "string", d::PRIORITYCLASS_PREEMPTION),
];

fn priority_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        int_at(obj, &["value"]).into(),
        bool_at(obj, &["globalDefault"]).into(),
        age(obj, now).into(),
        str_at(obj, &["preemptionPolicy"]).into(),
    ]
}
