//! Merging lists: the `merge` patch strategy, `$patch` list items and
//! `$deleteFromPrimitiveList`.

use serde_json::Value;

use crate::error::{StrategicMergeError, go_type_name};
use crate::schema::SchemaNode;

use super::directives::{self, DELETE, MERGE, PATCH, REPLACE, bad_patch_type, map_text};
use super::merge_map;
use super::order::{Identity, normalize, partition};

type Result<T> = std::result::Result<T, StrategicMergeError>;

/// What a list holds, as far as merging cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ElementKind {
    /// Maps, merged by a key.
    Map,
    /// Scalars (or nulls), merged as a set.
    Scalar,
}

/// Upstream's `sliceElementType`: every item of both lists must have the same
/// JSON type (integers and floats count as different, as in Go), and lists of
/// lists are refused. `None` when both lists are empty.
pub(crate) fn element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>> {
    let mut first: Option<&Value> = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        match first {
            None => {
                if item.is_array() {
                    return Err(StrategicMergeError::NoListOfLists);
                }
                first = Some(item);
            }
            Some(f) => {
                if go_type_name(f) != go_type_name(item) {
                    let all: Vec<&[Value]> = lists.to_vec();
                    return Err(StrategicMergeError::MixedListElements(
                        serde_json::to_string(&all).unwrap_or_default(),
                    ));
                }
            }
        }
    }
    Ok(first.map(|f| {
        if f.is_object() {
            ElementKind::Map
        } else {
            ElementKind::Scalar
        }
    }))
}

/// Merges list `patch` into `original` according to the field's strategy:
/// `merge` (or a deletion list) merges, anything else replaces.
pub(crate) fn merge_list_field(
    original: Vec<Value>,
    patch: &[Value],
    field: SchemaNode<'_>,
    strategy: Option<&str>,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    merge_list_field_traced(original, patch, field, strategy, is_delete_list).map(|m| m.items)
}

/// A merged list, and the server order `$setElementOrder` ordering sees.
pub(crate) struct Merged {
    pub(crate) items: Vec<Value>,
    /// Set when merging by key rewrote the original's order: upstream's
    /// ordering then sees the original list after deletions, followed by
    /// as many appended items as there were deletions (its deletions and
    /// appends share the original's backing array). Reproduced because it
    /// decides where new items land next to server-only ones.
    pub(crate) server_order: Option<Vec<Value>>,
}

fn merge_list_field_traced(
    original: Vec<Value>,
    patch: &[Value],
    field: SchemaNode<'_>,
    strategy: Option<&str>,
    is_delete_list: bool,
) -> Result<Merged> {
    if strategy == Some(MERGE) || is_delete_list {
        merge_list(original, patch, field, is_delete_list)
    } else {
        Ok(Merged {
            items: directives::clean_list(patch)?,
            server_order: None,
        })
    }
}

/// Upstream's `mergeSlice`.
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    field: SchemaNode<'_>,
    is_delete_list: bool,
) -> Result<Merged> {
    let plain = |items| Merged {
        items,
        server_order: None,
    };
    let Some(kind) = element_kind(&[&original, patch])? else {
        return Ok(plain(original));
    };
    match kind {
        ElementKind::Scalar => {
            if is_delete_list {
                // Deletion keeps the survivors' order; no reordering follows.
                let kept = original.into_iter().filter(|v| !patch.contains(v));
                return Ok(plain(kept.collect()));
            }
            let server_order = original.clone();
            let mut merged = original;
            for p in patch {
                if !merged.contains(p) {
                    merged.push(p.clone());
                }
            }
            // The union keeps the first copy of a duplicate the server had.
            dedup_in_place(&mut merged);
            let order: Vec<&Value> = patch.iter().collect();
            let (hit, miss) = partition(merged, &order, Identity::Value);
            normalize(hit, miss, &order, &server_order, Identity::Value).map(plain)
        }
        ElementKind::Map => {
            let Some(key) = field.patch_merge_key() else {
                return Err(StrategicMergeError::NoMergeKeyInSchema(
                    "object".to_string(),
                ));
            };
            let identity = Identity::MergeKey(key);
            let (original, patch, deleted) = apply_list_directives(original, patch, key)?;
            let server_order = identity.all(&original)?;
            let (merged, appended) = merge_items(original, &patch, key, items_of(field))?;
            let mut aliased = server_order.clone();
            aliased.extend(appended.into_iter().take(deleted));
            let (hit, miss) = partition(merged, &patch, identity);
            let items = normalize(hit, miss, &patch, &server_order, identity)?;
            Ok(Merged {
                items,
                server_order: Some(aliased),
            })
        }
    }
}

fn dedup_in_place(items: &mut Vec<Value>) {
    let mut i = 0;
    while i < items.len() {
        if items[..i].contains(&items[i]) {
            items.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Upstream's `mergeSliceWithSpecialElements`: `$patch: delete` items remove
/// the original items with their key, a `{"$patch": "replace"}` item makes
/// the rest of the patch list replace the original. Returns the original to
/// merge into and the patch items left to merge.
/// Also returns how many original items deletions removed.
fn apply_list_directives<'p>(
    mut original: Vec<Value>,
    patch: &'p [Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<&'p Value>, usize)> {
    let before = original.len();
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(m) = item.as_object() else {
            rest.push(item);
            continue;
        };
        let Some(directive) = m.get(PATCH) else {
            rest.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let Some(kv) = m.get(key) else {
                    return Err(StrategicMergeError::NoMergeKey {
                        map: map_text(m),
                        key: key.to_string(),
                    });
                };
                original.retain(|o| o.get(key) != Some(kv));
            }
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(StrategicMergeError::MergeDirectiveInList),
            _ => return Err(bad_patch_type(directive, m)),
        }
    }
    if replace {
        let mut replaced = Vec::with_capacity(rest.len());
        for item in rest {
            replaced.extend(directives::clean(item)?);
        }
        return Ok((replaced, Vec::new(), 0));
    }
    let deleted = before - original.len();
    Ok((original, rest, deleted))
}

/// Upstream's `mergeSliceWithoutSpecialElements`: each patch item merges
/// into the first original item with the same key, or is appended. Also
/// returns the keys of the appended items.
fn merge_items(
    mut original: Vec<Value>,
    patch: &[&Value],
    key: &str,
    items: SchemaNode<'_>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut appended = Vec::new();
    for p in patch {
        let Some(pm) = p.as_object() else {
            return Err(StrategicMergeError::BadArgType {
                expected: "map[string]interface {}",
                actual: go_type_name(p),
            });
        };
        let Some(kv) = pm.get(key) else {
            return Err(StrategicMergeError::NoMergeKey {
                map: map_text(pm),
                key: key.to_string(),
            });
        };
        match original.iter_mut().find(|o| o.get(key) == Some(kv)) {
            Some(Value::Object(om)) => merge_map(om, pm, items)?,
            Some(other) => {
                return Err(StrategicMergeError::BadArgType {
                    expected: "map[string]interface {}",
                    actual: go_type_name(other),
                });
            }
            None => {
                appended.push(kv.clone());
                original.extend(directives::clean(p)?);
            }
        }
    }
    Ok((original, appended))
}

/// The schema of a list's items. Like upstream's OpenAPI v3 lookup, a list
/// field declared without `items` (a `$ref` to the item type itself) uses
/// its own schema.
fn items_of(field: SchemaNode<'_>) -> SchemaNode<'_> {
    if field.declares_items() {
        field.items()
    } else {
        field
    }
}

/// Handles `$setElementOrder/<field>` together with the field's patch list:
/// merges them, then orders the result by the directive (upstream's
/// `mergePatchIntoOriginal`). Returns `None` when neither list exists.
pub(crate) fn merge_with_element_order(
    original: Option<Vec<Value>>,
    patch: Option<&[Value]>,
    order: &[Value],
    field: SchemaNode<'_>,
    strategy: Option<&str>,
) -> Result<Option<Vec<Value>>> {
    let merge_key = field.patch_merge_key();
    if let Some(p) = patch {
        validate_element_order(p, order, merge_key)?;
    }
    let kind = element_kind(&[original.as_deref().unwrap_or(&[]), patch.unwrap_or(&[])])?;
    let server_list = original.as_deref().unwrap_or(&[]);
    let identity = match merge_key {
        Some(k) => Identity::MergeKey(k),
        None => Identity::Value,
    };
    let server_order = match kind {
        Some(ElementKind::Map) => identity.all(server_list)?,
        _ => server_list.to_vec(),
    };
    let mut server_order = server_order;
    let merged = match (original, patch) {
        (None, None) => return Ok(None),
        (Some(o), None) => o,
        (None, Some(p)) => directives::clean_list(p)?,
        (Some(o), Some(p)) => {
            let m = merge_list_field_traced(o, p, field, strategy, false)?;
            if let Some(order) = m.server_order {
                server_order = order;
            }
            m.items
        }
    };
    let Some(kind) = kind else {
        return Ok(Some(merged));
    };
    let identity = match kind {
        ElementKind::Map => identity,
        ElementKind::Scalar => Identity::Value,
    };
    let order: Vec<&Value> = order.iter().collect();
    let (hit, miss) = partition(merged, &order, identity);
    normalize(hit, miss, &order, &server_order, identity).map(Some)
}

/// Upstream's `validatePatchWithSetOrderList`: the patch list's items (other
/// than deletions) must appear in the order list, in the same relative order.
fn validate_element_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = match key {
        Some(_) => {
            let mut v = Vec::with_capacity(patch.len());
            for item in patch {
                let Some(m) = item.as_object() else {
                    return Err(StrategicMergeError::BadArgType {
                        expected: "map[string]interface {}",
                        actual: go_type_name(item),
                    });
                };
                if m.get(PATCH).and_then(Value::as_str) != Some(DELETE) {
                    v.push(item);
                }
            }
            v
        }
        None => patch.iter().collect(),
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi].get(PATCH).is_some() {
            pi += 1;
            continue;
        }
        if key_equal(non_delete[pi], &order[oi], key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(StrategicMergeError::SetElementOrderMismatch {
            patch: serde_json::to_string(patch).unwrap_or_default(),
            order: serde_json::to_string(order).unwrap_or_default(),
        });
    }
    Ok(())
}

fn key_equal(left: &Value, right: &Value, key: Option<&str>) -> Result<bool> {
    let Some(key) = key else {
        return Ok(left == right);
    };
    let get = |v: &Value| -> Result<Value> {
        let m = v.as_object().ok_or(StrategicMergeError::BadArgType {
            expected: "map[string]interface {}",
            actual: go_type_name(v),
        })?;
        m.get(key)
            .cloned()
            .ok_or_else(|| StrategicMergeError::NoMergeKey {
                map: map_text(m),
                key: key.to_string(),
            })
    };
    Ok(get(left)? == get(right)?)
}
