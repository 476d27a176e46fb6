//! The `FieldsV1` of a create, written straight from the object.
//!
//! A create with no managers yet owns every path of the object, minus the
//! fields no manager owns and the reset fields. Building that as a
//! [`FieldSet`] (two ordered trees of cloned path elements), subtracting
//! from it and encoding it was most of the managed-fields cost of a create,
//! itself a seventh of the API server's CPU for pod creates in
//! `skiff bench schedule`. This walks the object once and writes the
//! encoding directly; `tests::the_direct_encoding_equals_the_field_set`
//! holds it to the set-based path.

use serde_json::{Map, Value};

use crate::fieldpath::{FieldSet, PathElement};
use crate::schema::SchemaNode;

use super::typed::{Atom, atom, field, keyed_items};

/// The `FieldsV1` object of every path of `value` that is neither under a
/// path of `ignored` nor a member of `strip` (exact paths), as
/// `to_added_set` + `subtract_recursive(ignored)` + `subtract(strip)` +
/// `to_fields_v1` give it.
pub(crate) fn created_fields_v1(
    value: &Value,
    node: SchemaNode<'_>,
    ignored: &FieldSet,
    strip: &FieldSet,
) -> Map<String, Value> {
    below(value, node, Some(ignored), Some(strip))
}

/// One level's entry: the path element, whether it is a member, and the
/// encoding of what lies below it.
type Entry = (PathElement, bool, Map<String, Value>);

fn below(
    value: &Value,
    node: SchemaNode<'_>,
    ignored: Option<&FieldSet>,
    strip: Option<&FieldSet>,
) -> Map<String, Value> {
    let a = atom(node, value);
    if a.is_atomic() {
        return Map::new();
    }
    let mut entries: Vec<Entry> = Vec::new();
    match (a, value) {
        (Atom::List { items, kind }, Value::Array(list)) => {
            for (item, pe, duplicated) in keyed_items(list, &kind, items) {
                match duplicated {
                    // Owned as a whole: one entry, at the first of them.
                    Some(true) => push(&mut entries, pe, None, ignored, strip),
                    Some(false) => {}
                    None => push(&mut entries, pe, Some((item, items)), ignored, strip),
                }
            }
        }
        (Atom::Map { node, .. }, Value::Object(m)) => {
            for (k, v) in m {
                let child_node = field(node, k).0;
                push(
                    &mut entries,
                    PathElement::Field(k.clone()),
                    Some((v, child_node)),
                    ignored,
                    strip,
                );
            }
        }
        _ => return Map::new(),
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Map::new();
    for (pe, member, child) in entries {
        let encoded = if member && !child.is_empty() {
            let mut with_self = Map::new();
            with_self.insert(".".to_string(), Value::Object(Map::new()));
            with_self.extend(child);
            with_self
        } else {
            child
        };
        out.insert(pe.to_fields_v1_key(), Value::Object(encoded));
    }
    out
}

/// Adds the entry for `pe` (with the value and schema below it, unless it
/// is owned as a whole) unless it is ignored, or stripped with nothing
/// left below it.
fn push(
    entries: &mut Vec<Entry>,
    pe: PathElement,
    below_it: Option<(&Value, SchemaNode<'_>)>,
    ignored: Option<&FieldSet>,
    strip: Option<&FieldSet>,
) {
    if ignored.is_some_and(|s| s.has_member(&pe)) {
        return;
    }
    let member = !strip.is_some_and(|s| s.has_member(&pe));
    let child = match below_it {
        Some((v, n)) => below(
            v,
            n,
            ignored.and_then(|s| s.child(&pe)),
            strip.and_then(|s| s.child(&pe)),
        ),
        None => Map::new(),
    };
    if member || !child.is_empty() {
        entries.push((pe, member, child));
    }
}
