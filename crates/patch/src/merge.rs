//! JSON merge patch (RFC 7386), `application/merge-patch+json`.
//!
//! Objects merge recursively, `null` deletes, everything else (lists
//! included) replaces. kubectl sends this for `label`, `annotate`, `scale`
//! and for client-side apply of custom resources.

use serde_json::{Map, Value};

use crate::error::PatchError;

/// Merges `patch` into `doc` in place.
pub fn merge_patch_in_place(doc: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !doc.is_object() {
                *doc = Value::Object(Map::new());
            }
            if let Value::Object(d) = doc {
                merge_object(d, p);
            }
        }
        other => *doc = other.clone(),
    }
}

fn merge_object(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                doc.shift_remove(k);
            }
            Value::Object(_) => {
                let slot = doc.entry(k.clone()).or_insert(Value::Null);
                merge_patch_in_place(slot, v);
            }
            other => {
                doc.insert(k.clone(), other.clone());
            }
        }
    }
}

/// Applies a merge patch to a copy of `original`.
///
/// The patch must be an object: RFC 7386 would let any other value replace
/// the whole document, which for an API object can only yield something the
/// server rejects, so this is a 400 here (upstream: `Invalid JSON Patch` for
/// `null`, a decoding error later for the rest).
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::BadRequest("Invalid JSON Patch".into()));
    }
    let mut doc = original.clone();
    merge_patch_in_place(&mut doc, patch);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        // The test cases of RFC 7386, appendix A (those with object patches).
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(merge_patch(&doc, &patch).unwrap(), want, "{doc} + {patch}");
        }
    }

    #[test]
    fn keeps_key_order_and_appends_new_keys() {
        let out = merge_patch(&json!({"b": 1, "a": 2}), &json!({"c": 3, "b": 4})).unwrap();
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn non_object_patch_is_rejected() {
        assert_eq!(
            merge_patch(&json!({}), &json!([1]))
                .unwrap_err()
                .status_code(),
            400
        );
        assert_eq!(
            merge_patch(&json!({}), &Value::Null)
                .unwrap_err()
                .status_code(),
            400
        );
    }
}
