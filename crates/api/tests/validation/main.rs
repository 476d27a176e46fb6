//! Data-driven tests of validation: each case is an object as a client
//! sends it and the messages upstream's API server answers with (422
//! causes, `field: Type: detail`). Objects are defaulted first, as the API
//! server does. Only `check` and `check_update` touch the API.

mod apps_batch;
mod core;
mod pods;

use serde_json::Value;
use skiff_api::{defaults, validation};

fn group_kind(kind: &str) -> (&str, &str) {
    kind.rsplit_once('/').unwrap_or(("", kind))
}

fn messages(errs: Vec<validation::FieldError>) -> Vec<String> {
    errs.iter().map(validation::FieldError::message).collect()
}

/// Asserts that creating `obj` as `kind` fails with exactly `expected`.
#[track_caller]
fn check(kind: &str, obj: Value, expected: &[&str]) {
    let (group, kind) = group_kind(kind);
    let mut obj = obj;
    defaults::apply_on_create(group, kind, &mut obj);
    assert_eq!(messages(validation::validate(group, kind, &obj)), expected);
}

/// Asserts that updating `old` to `new` fails with exactly `expected`.
#[track_caller]
fn check_update(kind: &str, old: Value, new: Value, expected: &[&str]) {
    let (group, kind) = group_kind(kind);
    let (mut old, mut new) = (old, new);
    defaults::apply_on_create(group, kind, &mut old);
    defaults::apply(group, kind, &mut new);
    assert_eq!(
        messages(validation::validate_update(group, kind, &old, &new)),
        expected
    );
}
