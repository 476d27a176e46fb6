//! Removing a set of fields from a value (upstream's `RemoveItems`), which
//! is how server-side apply deletes fields a manager stopped applying.

use serde_json::{Map, Value};

use crate::fieldpath::{FieldSet, PathElement};
use crate::schema::{ListType, SchemaNode};

use super::typed::{Atom, atom, field, item_path_element};

/// What becomes of a map or list the removal empties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Emptied {
    /// It stays as `null`, as upstream leaves it; pruning computes field
    /// sets on such intermediate values, where the `null` still counts.
    Null,
    /// It disappears, which is what `null` means once stored.
    Drop,
}

/// `value` without the paths in `to_remove` (`None`: nothing left).
pub(crate) fn remove_items(
    value: &Value,
    to_remove: &FieldSet,
    node: SchemaNode<'_>,
    emptied: Emptied,
) -> Option<Value> {
    let gone = || match emptied {
        Emptied::Null => Some(Value::Null),
        Emptied::Drop => None,
    };
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
            if kind == ListType::Atomic {
                // Only reached when the set reaches inside an atomic list,
                // which is owned whole: upstream drops it.
                return gone();
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
                    Some(sub) => out.extend(remove_items(item, sub, items, emptied)),
                    None => out.push(item.clone()),
                }
            }
            if out.is_empty() {
                return gone();
            }
            Some(Value::Array(out))
        }
        Atom::Map { node, atomic } => {
            let Value::Object(m) = value else {
                return Some(value.clone());
            };
            if m.is_empty() {
                return Some(value.clone());
            }
            if atomic {
                return gone();
            }
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let pe = PathElement::Field(k.clone());
                if to_remove.has_member(&pe) {
                    continue;
                }
                let kept = match to_remove.child(&pe) {
                    Some(sub) => remove_items(v, sub, field(node, k).0, emptied),
                    None => Some(v.clone()),
                };
                if let Some(v) = kept {
                    out.insert(k.clone(), v);
                }
            }
            if out.is_empty() {
                return gone();
            }
            Some(Value::Object(out))
        }
    }
}
