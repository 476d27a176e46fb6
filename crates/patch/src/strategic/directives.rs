//! The directive keys of strategic merge patch, and removing them.
//!
//! Directives are instructions to the merge, never data: whatever path a
//! patch value takes into the result (merged, inserted whole, or replacing),
//! it must come out without them.

use serde_json::{Map, Value};

use crate::error::{StrategicMergeError, go_type_name};

/// `$patch: replace | merge | delete`, on a map or as a list item.
pub(crate) const PATCH: &str = "$patch";
/// `$retainKeys: [..]`: keys of the original map to keep.
pub(crate) const RETAIN_KEYS: &str = "$retainKeys";
/// `$deleteFromPrimitiveList/<field>: [..]`.
pub(crate) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
/// `$setElementOrder/<field>: [..]`.
pub(crate) const SET_ELEMENT_ORDER: &str = "$setElementOrder";

pub(crate) const REPLACE: &str = "replace";
pub(crate) const MERGE: &str = "merge";
pub(crate) const DELETE: &str = "delete";
pub(crate) const RETAIN_KEYS_STRATEGY: &str = "retainKeys";

type Result<T> = std::result::Result<T, StrategicMergeError>;

/// Whether `key` is a directive rather than a field.
pub(crate) fn is_directive_key(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}

/// The field a prefixed directive applies to: `$setElementOrder/containers`
/// gives `containers`. A key with the prefix but no `/` is malformed.
pub(crate) fn extract_key<'k>(key: &'k str, prefix: &str) -> Result<&'k str> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => {
            Err(StrategicMergeError::BadPatchFormatForPrimitiveList)
        }
        _ => Err(StrategicMergeError::BadPatchFormatForSetElementOrderList),
    }
}

/// The JSON text of a map, for error messages.
pub(crate) fn map_text(m: &Map<String, Value>) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

pub(crate) fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> StrategicMergeError {
    StrategicMergeError::BadPatchType {
        directive: match directive {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        map: map_text(m),
    }
}

pub(crate) fn expect_list(v: &Value) -> Result<&Vec<Value>> {
    v.as_array().ok_or(StrategicMergeError::BadArgType {
        expected: "[]interface {}",
        actual: go_type_name(v),
    })
}

/// A patch value as it should land in the result when there is nothing to
/// merge it with: directives and `null`s removed (upstream drops unmatched
/// nulls on the server). `None` means "no value": a map that asked for its
/// own deletion.
///
/// Upstream inserts such values nearly verbatim and, for a map carrying
/// `$patch: replace`, drops it entirely; here a replace keeps its content,
/// which is what the directive asks for.
pub(crate) fn clean(v: &Value) -> Result<Option<Value>> {
    match v {
        Value::Object(m) => clean_map(m).map(|m| m.map(Value::Object)),
        Value::Array(items) => Ok(Some(Value::Array(clean_list(items)?))),
        other => Ok(Some(other.clone())),
    }
}

/// [`clean`] for a map.
pub(crate) fn clean_map(m: &Map<String, Value>) -> Result<Option<Map<String, Value>>> {
    match m.get(PATCH) {
        None => {}
        Some(Value::String(s)) if s == REPLACE => {}
        Some(Value::String(s)) if s == DELETE => return Ok(None),
        Some(other) => return Err(bad_patch_type(other, m)),
    }
    let mut out = Map::with_capacity(m.len());
    for (k, v) in m {
        if v.is_null() || is_directive_key(k) {
            continue;
        }
        if let Some(c) = clean(v)? {
            out.insert(k.clone(), c);
        }
    }
    Ok(Some(out))
}

/// [`clean`] for a list: items that are directives (`{"$patch": ..}`) go.
pub(crate) fn clean_list(items: &[Value]) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.get(PATCH).is_some() {
            continue;
        }
        if let Some(c) = clean(item)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Splits `x-kubernetes-patch-strategy` into "retainKeys or not" and the
/// other strategy, rejecting combinations upstream rejects.
pub(crate) fn other_strategy<'a>(strategies: &[&'a str]) -> Result<Option<&'a str>> {
    match strategies {
        [] => Ok(None),
        [s] if *s == RETAIN_KEYS_STRATEGY => Ok(None),
        [s] => Ok(Some(s)),
        [a, b] if *a == RETAIN_KEYS_STRATEGY => Ok(Some(b)),
        [a, b] if *b == RETAIN_KEYS_STRATEGY => Ok(Some(a)),
        _ => Err(StrategicMergeError::UnexpectedPatchStrategy(format!(
            "[{}]",
            strategies.join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clean_strips_directives_and_nulls() {
        let v = json!({
            "a": null,
            "b": {"$patch": "replace", "c": 1, "$setElementOrder/d": [], "d": [{"$patch": "delete", "k": 1}, {"k": 2}]},
            "e": {"$patch": "delete"},
            "$retainKeys": ["b"],
        });
        assert_eq!(
            clean(&v).unwrap().unwrap(),
            json!({"b": {"c": 1, "d": [{"k": 2}]}})
        );
        assert!(clean(&json!({"$patch": "frob"})).is_err());
    }

    #[test]
    fn extract_key_checks_prefix() {
        assert_eq!(
            extract_key("$setElementOrder/a/b", SET_ELEMENT_ORDER).unwrap(),
            "a/b"
        );
        assert_eq!(
            extract_key("$setElementOrderx", SET_ELEMENT_ORDER).unwrap_err(),
            StrategicMergeError::BadPatchFormatForSetElementOrderList
        );
        assert_eq!(
            extract_key("$deleteFromPrimitiveListx/a", DELETE_FROM_PRIMITIVE_LIST).unwrap_err(),
            StrategicMergeError::BadPatchFormatForPrimitiveList
        );
    }

    #[test]
    fn strategies() {
        assert_eq!(
            other_strategy(&["merge", "retainKeys"]).unwrap(),
            Some("merge")
        );
        assert_eq!(other_strategy(&["retainKeys"]).unwrap(), None);
        assert!(other_strategy(&["merge", "replace"]).is_err());
    }
}
