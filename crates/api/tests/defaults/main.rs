//! Data-driven tests of defaulting: each case is an object as a client
//! sends it and the object upstream's API server stores for it (server
//! metadata, admission plugins' additions and status left out). Only
//! `check` touches the API, so the cases survive refactors.

mod apps_batch;
mod core;
mod others;

use serde_json::Value;
use skiff_api::defaults;

/// Splits `"apps/Deployment"` into group and kind; a bare kind is core.
fn group_kind(kind: &str) -> (&str, &str) {
    kind.rsplit_once('/').unwrap_or(("", kind))
}

/// Asserts that creating `input` as `kind` stores `expected`, and that
/// defaulting is idempotent.
#[track_caller]
fn check(kind: &str, input: Value, expected: Value) {
    let (group, kind) = group_kind(kind);
    let mut obj = input;
    defaults::apply_on_create(group, kind, &mut obj);
    assert_eq!(
        obj,
        expected,
        "\n got: {}\nwant: {}",
        serde_json::to_string_pretty(&obj).unwrap(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
    let mut again = obj.clone();
    defaults::apply(group, kind, &mut again);
    assert_eq!(again, obj, "defaulting is not idempotent");
}

/// Asserts that defaulting (as on any write) turns `input` into `expected`.
#[track_caller]
fn check_apply(kind: &str, input: Value, expected: Value) {
    let (group, kind) = group_kind(kind);
    let mut obj = input;
    defaults::apply(group, kind, &mut obj);
    assert_eq!(
        obj,
        expected,
        "\n got: {}\nwant: {}",
        serde_json::to_string_pretty(&obj).unwrap(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
}
