//! The set of fields a value sets (upstream's `ToFieldSet`), the
//! "named fields are members" widening used by pruning, and validation of
//! applied configurations.

use serde_json::Value;

use crate::fieldpath::{FieldSet, Path, PathElement};
use crate::schema::SchemaNode;

use super::typed::{Atom, atom, field, item_path_element, keyed_items};

/// The fields `value` sets. Leaves are scalars and atomic lists/maps; items
/// of associative lists and keys of maps are members themselves (that is
/// the `"."` in `FieldsV1`), fields of structs only when null or empty.
pub(crate) fn to_field_set(value: &Value, node: SchemaNode<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    collect(value, node, false, &mut set);
    set
}

/// Every path of `value`, intermediate ones too: what comparing `value`
/// with nothing reports as added (`compare::compare` from `{}`), in one
/// walk. The reference for the create path's direct encoding.
#[cfg(test)]
pub(crate) fn to_added_set(value: &Value, node: SchemaNode<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    collect(value, node, true, &mut set);
    set
}

/// Fills `out` with the paths below `value` (with `every`, also those
/// that lead to others); returns whether the path of `value` itself is a
/// member (it is a leaf).
fn collect(value: &Value, node: SchemaNode<'_>, every: bool, out: &mut FieldSet) -> bool {
    let a = atom(node, value);
    if a.is_atomic() {
        return true;
    }
    match (a, value) {
        (Atom::List { items, kind }, Value::Array(list)) => {
            for (item, pe, duplicated) in keyed_items(list, &kind, items) {
                out.insert_member(pe.clone());
                if duplicated.is_some() {
                    continue;
                }
                let mut child = FieldSet::new();
                collect(item, items, every, &mut child);
                out.attach(pe, child);
            }
            false
        }
        (Atom::Map { node, .. }, Value::Object(m)) => {
            for (k, v) in m {
                let (child_node, named) = field(node, k);
                let mut child = FieldSet::new();
                let leaf = collect(v, child_node, every, &mut child);
                let empty_map = v.as_object().is_some_and(|m| m.is_empty());
                let pe = PathElement::Field(k.clone());
                if every || leaf || v.is_null() || empty_map || !named {
                    out.insert_member(pe.clone());
                }
                out.attach(pe, child);
            }
            false
        }
        _ => true,
    }
}

/// Upstream's `EnsureNamedFieldsAreMembers`: every path that leads through
/// a declared struct field also owns that field, so that removing a
/// manager's fields can remove the struct that held them.
pub(crate) fn ensure_named_fields(set: &FieldSet, node: SchemaNode<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    for m in set.members() {
        out.insert_member(m.clone());
    }
    for (pe, child) in set.children() {
        let child_node = match pe {
            PathElement::Field(name) => {
                if node.has_property(name) {
                    out.insert_member(pe.clone());
                }
                node.field(name)
            }
            _ => node.items(),
        };
        out.attach(pe.clone(), ensure_named_fields(child, child_node));
    }
    out
}

/// Checks an applied configuration the way upstream's typed conversion
/// does: every item of an associative list must have a key, and no key may
/// appear twice.
pub(crate) fn validate(value: &Value, node: SchemaNode<'_>) -> Result<(), String> {
    validate_at(value, node, &mut Vec::new())
}

fn validate_at(
    value: &Value,
    node: SchemaNode<'_>,
    path: &mut Vec<PathElement>,
) -> Result<(), String> {
    let a = atom(node, value);
    if a.is_atomic() {
        return Ok(());
    }
    match (a, value) {
        (Atom::List { items, kind }, Value::Array(list)) => {
            let mut seen: Vec<PathElement> = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                let pe = item_path_element(&kind, items, item)
                    .map_err(|e| format!("{}: element {i}: {e}", Path(path.clone())))?;
                if seen.contains(&pe) {
                    return Err(format!(
                        "{}: duplicate entries for key {pe}",
                        Path(path.clone())
                    ));
                }
                path.push(pe.clone());
                validate_at(item, items, path)?;
                path.pop();
                seen.push(pe);
            }
            Ok(())
        }
        (Atom::Map { node, .. }, Value::Object(m)) => {
            for (k, v) in m {
                path.push(PathElement::Field(k.clone()));
                validate_at(v, node.field(k), path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
