//! Data-driven tests of the Table printers: each case is an object and the
//! cells upstream's API server returns for it. Only `check` and its siblings
//! touch the API, so the cases survive refactors.

mod apps_batch;
mod core;
mod crd;
mod duration;
mod others;
mod pods;
mod robustness;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use skiff_api::table;

/// The fixed "current time" of every case.
const NOW: &str = "2024-05-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// The RFC 3339 time `secs` seconds before [`NOW`].
fn ago(secs: i64) -> String {
    let t = now() - SignedDuration::from_secs(secs);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Splits `"apps/Deployment"` into group and kind; a bare kind is core.
fn group_kind(kind: &str) -> (&str, &str) {
    kind.rsplit_once('/').unwrap_or(("", kind))
}

/// Asserts that `obj`, printed as `kind`, gives exactly `expected` cells,
/// and as many cells as the kind has columns.
#[track_caller]
fn check(kind: &str, obj: Value, expected: Value) {
    let (group, kind) = group_kind(kind);
    let cells = table::cells(group, kind, &obj, now());
    assert_eq!(
        Value::Array(cells.clone()),
        expected,
        "cells of {group}/{kind}"
    );
    assert_eq!(
        cells.len(),
        table::columns(group, kind).len(),
        "columns of {group}/{kind}"
    );
}

/// Asserts the column headers of `kind`: `(name, priority)` pairs.
#[track_caller]
fn check_headers(kind: &str, expected: &[(&str, i32)]) {
    let (group, kind) = group_kind(kind);
    let columns = table::columns(group, kind);
    let got: Vec<(&str, i32)> = columns
        .iter()
        .map(|c| (c.name.as_ref(), c.priority))
        .collect();
    assert_eq!(got, expected, "columns of {group}/{kind}");
}
