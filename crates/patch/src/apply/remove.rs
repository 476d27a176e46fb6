//! Removing a set of fields from a value (upstream's `RemoveItems`), which
//! is how server-side apply deletes fields a manager stopped applying.

use serde_json::{Map, Value};

use crate::fieldpath::{FieldSet, PathElement};
use crate::schema::SchemaNode;

use super::typed::{Atom, atom, field, item_path_element};

/// `value` without the paths in `to_remove`; a map or list emptied by the
/// removal disappears (`None`), as upstream turns it into `null`.
pub(crate) fn remove_items(
    value: &Value,
    to_remove: &FieldSet,
    node: SchemaNode<'_>,
) -> Option<Value> {
    if to_remove.is_empty() {
        return Some(value.clone());
    }
    match atom(node, value) {
        Atom::Scalar => Some(value.clone()),
        Atom::List { items, kind } => {
            let Value::Array(list) = value else {
                return Some(value.clone());
            };
            if list.is_empty() {
                return Some(value.clone());
            }
            if kind == crate::schema::ListType::Atomic {
                // Only reached when the set reaches inside an atomic list,
                // which owns it whole: upstream drops it.
                return None;
            }
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                let Ok(pe) = item_path_element(&kind, items, item) else {
                    out.push(item.clone());
                    continue;
                };
                if to_remove.has_member(&pe) {
                    continue;
                }
                match to_remove.child(&pe) {
                    Some(sub) => out.extend(remove_items(item, sub, items)),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Atom::Map { node, atomic } => {
            let Value::Object(m) = value else {
                return Some(value.clone());
            };
            if m.is_empty() {
                return Some(value.clone());
            }
            if atomic {
                return None;
            }
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let pe = PathElement::Field(k.clone());
                if to_remove.has_member(&pe) {
                    continue;
                }
                match to_remove.child(&pe) {
                    Some(sub) => {
                        if let Some(v) = remove_items(v, sub, field(node, k).0) {
                            out.insert(k.clone(), v);
                        }
                    }
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}
