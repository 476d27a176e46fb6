//! `node.k8s.io/v1`: RuntimeClasses.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{age, name, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[Printer {
    kind: "RuntimeClass",
    columns: RUNTIME_CLASS,
    cells: runtime_class,
}];

/// Upstream looks the `Handler` description up in ObjectMeta's docs, which
/// have no such field, so it is empty.
const RUNTIME_CLASS: &[Column] = &[NAME, col("Handler", "string", ""), AGE];

fn runtime_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["handler"]).into(),
        age(obj, now).into(),
    ]
}
