//! Strategic merge patch (`application/strategic-merge-patch+json`), the
//! patch kubectl's client-side apply, `kubectl patch` and `kubectl edit`
//! send for built-in kinds.
//!
//! Semantics follow `k8s.io/apimachinery/pkg/util/strategicpatch` as the
//! API server runs it (`MergeParallelList` and `IgnoreUnmatchedNulls` on):
//!
//! * maps merge recursively; `null` deletes a key;
//! * lists follow the field's `x-kubernetes-patch-strategy`: `merge` merges
//!   maps by `x-kubernetes-patch-merge-key` and unions scalars, anything else
//!   replaces the list;
//! * directives: `$patch: replace | delete` on maps, `$patch: replace |
//!   delete` items in lists, `$retainKeys`, `$setElementOrder/<field>`,
//!   `$deleteFromPrimitiveList/<field>`;
//! * without schema information a field merges like JSON merge patch.
//!
//! Where upstream copies patch values into the result verbatim (a key the
//! original lacks, an appended list item), directives and nulls are removed
//! here so that none can reach storage.

mod directives;
mod list;
mod order;

use serde_json::{Map, Value};

use crate::error::{PatchError, StrategicMergeError, go_type_name};
use crate::schema::SchemaNode;

use directives::{
    DELETE, DELETE_FROM_PRIMITIVE_LIST, PATCH, REPLACE, RETAIN_KEYS, SET_ELEMENT_ORDER,
    bad_patch_type, expect_list, extract_key, other_strategy,
};

type Result<T> = std::result::Result<T, StrategicMergeError>;

/// Applies strategic merge `patch` to a copy of `original`; `schema` is the
/// node of the object's kind (e.g. `io.k8s.api.apps.v1.Deployment`).
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    schema: SchemaNode<'_>,
) -> std::result::Result<Value, PatchError> {
    let mut doc = original.clone();
    strategic_merge_in_place(&mut doc, patch, schema)?;
    Ok(doc)
}

/// [`strategic_merge`] on the caller's document. On error the document may
/// be partly patched.
pub fn strategic_merge_in_place(
    doc: &mut Value,
    patch: &Value,
    schema: SchemaNode<'_>,
) -> std::result::Result<(), PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (doc, patch) else {
        return Err(StrategicMergeError::BadJsonDoc.into());
    };
    merge_map(original, patch, schema)?;
    Ok(())
}

/// Upstream's `mergeMap`: merges `patch` into `original`, whose schema is
/// `node`.
pub(crate) fn merge_map(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    node: SchemaNode<'_>,
) -> Result<()> {
    if let Some(directive) = patch.get(PATCH) {
        return match directive.as_str() {
            // Replace the map by the patch's content, directives removed.
            Some(REPLACE) => {
                *original = directives::clean_map(patch)?.unwrap_or_default();
                Ok(())
            }
            Some(DELETE) => {
                original.clear();
                Ok(())
            }
            _ => Err(bad_patch_type(directive, patch)),
        };
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        apply_retain_keys(original, patch, retain)?;
    }

    // Lists with a `$setElementOrder` are merged and ordered first; their
    // patch entries are then skipped below.
    let mut ordered: Vec<&str> = Vec::new();
    for (key, order) in patch {
        if !key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        let order = expect_list(order)?;
        let field = extract_key(key, SET_ELEMENT_ORDER)?;
        let original_list = match original.get_mut(field) {
            Some(Value::Array(items)) => Some(std::mem::take(items)),
            Some(other) => {
                return Err(StrategicMergeError::BadArgType {
                    expected: "[]interface {}",
                    actual: go_type_name(other),
                });
            }
            None => None,
        };
        let patch_list = patch.get(field).map(expect_list).transpose()?;
        let child = node.field(field);
        let strategy = other_strategy(&child.patch_strategies())?;
        if let Some(merged) = list::merge_with_element_order(
            original_list,
            patch_list.map(Vec::as_slice),
            order,
            child,
            strategy,
        )? {
            original.insert(field.to_string(), Value::Array(merged));
        }
        ordered.push(field);
    }

    for (key, patch_value) in patch {
        if key == PATCH || key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        let (field, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else {
            if ordered.contains(&key.as_str()) {
                continue;
            }
            (key.as_str(), false)
        };
        merge_field(original, field, patch_value, node, is_delete_list)?;
    }
    Ok(())
}

/// Merges one patch entry into `original[field]`.
fn merge_field(
    original: &mut Map<String, Value>,
    field: &str,
    patch_value: &Value,
    node: SchemaNode<'_>,
    is_delete_list: bool,
) -> Result<()> {
    if patch_value.is_null() {
        original.shift_remove(field);
        return Ok(());
    }
    let Some(current) = original.get_mut(field) else {
        if !is_delete_list && let Some(v) = directives::clean(patch_value)? {
            original.insert(field.to_string(), v);
        }
        return Ok(());
    };
    match (current, patch_value) {
        (Value::Object(o), Value::Object(p)) => {
            let child = node.field(field);
            if other_strategy(&child.patch_strategies())? == Some(REPLACE) {
                *o = directives::clean_map(p)?.unwrap_or_default();
            } else {
                merge_map(o, p, child)?;
            }
        }
        (Value::Array(o), Value::Array(p)) => {
            let child = node.field(field);
            let strategy = other_strategy(&child.patch_strategies())?;
            let merged =
                list::merge_list_field(std::mem::take(o), p, child, strategy, is_delete_list)?;
            *o = merged;
        }
        (current, p) => {
            // Scalars, or a change of type: the patch value wins. A deletion
            // list never replaces a value of another type.
            if is_delete_list && go_type_name(current) != go_type_name(p) {
                return Ok(());
            }
            match directives::clean(p)? {
                Some(v) => *current = v,
                None => {
                    original.shift_remove(field);
                }
            }
        }
    }
    Ok(())
}

/// Upstream's `applyRetainKeysDirective`: every non-null patch key must be
/// listed, and original keys not listed are dropped (this is how kubectl
/// switches a Deployment's `strategy` from `RollingUpdate` to `Recreate`).
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
) -> Result<()> {
    let Some(retain) = retain.as_array() else {
        return Err(StrategicMergeError::BadPatchFormatForRetainKeys);
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch {
        if v.is_null()
            || k == RETAIN_KEYS
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(StrategicMergeError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

#[cfg(test)]
mod tests;
