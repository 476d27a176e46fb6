//! JSON patch (RFC 6902), `application/json-patch+json`.
//!
//! The operations themselves come from the `json-patch` crate; this module
//! adds what the API server needs around them: upstream's operation limit,
//! and error messages in the shape of the Go library upstream uses
//! (`evanphx/json-patch`), so that a failed `test` reads the same.

use json_patch::{Patch, PatchErrorKind, PatchOperation};
use serde::Deserialize;
use serde_json::Value;

use crate::error::PatchError;

/// Upstream's cap on operations in one JSON patch (`maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Decodes a JSON patch document (an array of operations).
///
/// A body that is not such an array is a 400, like upstream's `DecodePatch`.
pub fn decode_json_patch(ops: &Value) -> Result<Patch, PatchError> {
    let patch = Patch::deserialize(ops)
        .map_err(|e| PatchError::BadRequest(format!("error decoding patch: {e}")))?;
    if patch.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: patch.0.len(),
        });
    }
    Ok(patch)
}

/// Applies `ops` to `doc` in place. On error `doc` may be partly patched: the
/// caller works on its own copy and discards it, which saves the undo log.
pub fn json_patch_in_place(doc: &mut Value, ops: &Patch) -> Result<(), PatchError> {
    json_patch::patch_unsafe(doc, &ops.0).map_err(|e| {
        let op = ops.0.get(e.operation);
        PatchError::Unprocessable(describe(op, &e.kind, e.path.as_str()))
    })
}

/// Applies the JSON patch `ops` (already parsed JSON) to a copy of `original`.
pub fn json_patch(original: &Value, ops: &Value) -> Result<Value, PatchError> {
    let patch = decode_json_patch(ops)?;
    let mut doc = original.clone();
    json_patch_in_place(&mut doc, &patch)?;
    Ok(doc)
}

fn op_name(op: Option<&PatchOperation>) -> &'static str {
    match op {
        Some(PatchOperation::Add(_)) => "add",
        Some(PatchOperation::Remove(_)) => "remove",
        Some(PatchOperation::Replace(_)) => "replace",
        Some(PatchOperation::Move(_)) => "move",
        Some(PatchOperation::Copy(_)) => "copy",
        Some(PatchOperation::Test(_)) => "test",
        None => "unknown",
    }
}

fn from_path(op: Option<&PatchOperation>) -> &str {
    match op {
        Some(PatchOperation::Move(m)) => m.from.as_str(),
        Some(PatchOperation::Copy(c)) => c.from.as_str(),
        _ => "",
    }
}

/// Words an error like `evanphx/json-patch` v5 does.
fn describe(op: Option<&PatchOperation>, kind: &PatchErrorKind, path: &str) -> String {
    let name = op_name(op);
    match kind {
        PatchErrorKind::TestFailed => format!("testing value {path} failed: test failed"),
        PatchErrorKind::InvalidFromPointer => format!(
            "{name} operation does not apply: doc is missing from path: \"{}\": missing value",
            from_path(op)
        ),
        PatchErrorKind::CannotMoveInsideItself => format!(
            "{name} operation does not apply: cannot move \"{}\" into its own child \"{path}\"",
            from_path(op)
        ),
        _ => format!(
            "{name} operation does not apply: doc is missing path: \"{path}\": missing value"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_operations_in_order() {
        let doc = json!({"spec": {"replicas": 1, "finalizers": ["a"]}});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "add", "path": "/spec/finalizers/-", "value": "b"},
                {"op": "remove", "path": "/spec/finalizers/0"},
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"replicas": 3, "finalizers": ["b"]}}));
    }

    #[test]
    fn failed_test_is_unprocessable() {
        let err = json_patch(
            &json!({"spec": {"replicas": 1}}),
            &json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), 422);
        assert_eq!(
            err.to_string(),
            "testing value /spec/replicas failed: test failed"
        );
    }

    #[test]
    fn missing_path_is_unprocessable() {
        let err = json_patch(
            &json!({}),
            &json!([{"op": "replace", "path": "/spec/x", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), 422);
        assert!(
            err.to_string()
                .starts_with("replace operation does not apply"),
            "{err}"
        );
    }

    #[test]
    fn malformed_patch_is_bad_request() {
        for body in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add"}]),
        ] {
            let err = json_patch(&json!({}), &body).unwrap_err();
            assert_eq!(err.status_code(), 400, "{body}");
        }
    }

    #[test]
    fn operation_limit() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "", "value": {}}))
            .collect();
        let err = json_patch(&json!({}), &Value::Array(ops)).unwrap_err();
        assert_eq!(err.status_code(), 413);
    }
}
