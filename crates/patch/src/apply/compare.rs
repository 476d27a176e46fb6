//! Which fields changed between two versions of an object (upstream's
//! `TypedValue.Compare`). Ownership moves along these sets: a write takes
//! the fields it added or modified from their previous owners, and fields it
//! removed leave every owner.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::fieldpath::{FieldSet, PathElement};
use crate::schema::SchemaNode;

use super::fieldset::to_field_set;
use super::typed::{Atom, atom, field, item_path_element};

/// The difference between two objects.
#[derive(Clone, Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    fn attach(&mut self, pe: &PathElement, child: Comparison) {
        self.added.attach(pe.clone(), child.added);
        self.modified.attach(pe.clone(), child.modified);
        self.removed.attach(pe.clone(), child.removed);
    }

    /// Records the child at `pe`: added if it was absent before, removed if
    /// absent after, modified if it is a changed leaf.
    fn record(
        &mut self,
        pe: PathElement,
        l: Option<&Value>,
        r: Option<&Value>,
        modified: bool,
        child: Comparison,
    ) {
        self.attach(&pe, child);
        if l.is_none() {
            self.added.insert_member(pe.clone());
        } else if r.is_none() {
            self.removed.insert_member(pe.clone());
        }
        if modified {
            self.modified.insert_member(pe);
        }
    }

    /// Drops the fields under any path of `ignored` (reset fields).
    pub(crate) fn exclude(self, ignored: &FieldSet) -> Comparison {
        if ignored.is_empty() {
            return self;
        }
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}

/// Compares `lhs` (before) with `rhs` (after).
pub(crate) fn compare(lhs: &Value, rhs: &Value, node: SchemaNode<'_>) -> Comparison {
    let mut out = Comparison::default();
    compare_at(Some(lhs), Some(rhs), node, &mut out);
    out
}

static EMPTY_LIST: Vec<Value> = Vec::new();

/// A value seen as a list: `null` is the empty list, as in upstream.
fn as_list(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) => Some(a),
        Value::Null => Some(&EMPTY_LIST),
        _ => None,
    }
}

fn as_map(v: &Value) -> Option<Option<&Map<String, Value>>> {
    match v {
        Value::Object(m) => Some(Some(m)),
        Value::Null => Some(None),
        _ => None,
    }
}

/// Records the differences below the compared values in `out` and returns
/// whether the values' own path is a modified leaf.
fn compare_at(
    l: Option<&Value>,
    r: Option<&Value>,
    node: SchemaNode<'_>,
    out: &mut Comparison,
) -> bool {
    let shape_of = r.filter(|v| !v.is_null()).or(l);
    let Some(shape_of) = shape_of else {
        return false;
    };
    let a = atom(node, shape_of);
    // A leaf is modified when present on both sides with different values.
    let leaf = || matches!((l, r), (Some(x), Some(y)) if x != y);
    if a.is_atomic() {
        return leaf();
    }
    match a {
        Atom::List { items, kind } => {
            let (ll, rl) = (l.map(as_list), r.map(as_list));
            // A change of JSON type: the old subtree goes, the new one comes.
            if matches!(ll, Some(None)) || matches!(rl, Some(None)) {
                return mismatch(l, r, node, out);
            }
            let ll = ll.flatten().unwrap_or(&[]);
            let rl = rl.flatten().unwrap_or(&[]);
            if ll.is_empty() && rl.is_empty() {
                return leaf();
            }
            compare_lists(ll, rl, &kind, items, out);
            false
        }
        Atom::Map { node, .. } => {
            let (lm, rm) = (l.map(as_map), r.map(as_map));
            if matches!(lm, Some(None)) || matches!(rm, Some(None)) {
                return mismatch(l, r, node, out);
            }
            let lm = lm.flatten().flatten();
            let rm = rm.flatten().flatten();
            if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                return leaf();
            }
            let empty = Map::new();
            let (lm, rm) = (lm.unwrap_or(&empty), rm.unwrap_or(&empty));
            for (k, lv) in lm {
                let rv = rm.get(k);
                compare_child(
                    PathElement::Field(k.clone()),
                    Some(lv),
                    rv,
                    field(node, k).0,
                    out,
                );
            }
            for (k, rv) in rm {
                if !lm.contains_key(k) {
                    compare_child(
                        PathElement::Field(k.clone()),
                        None,
                        Some(rv),
                        field(node, k).0,
                        out,
                    );
                }
            }
            false
        }
        Atom::Scalar => leaf(),
    }
}

fn compare_child(
    pe: PathElement,
    l: Option<&Value>,
    r: Option<&Value>,
    node: SchemaNode<'_>,
    out: &mut Comparison,
) {
    let mut child = Comparison::default();
    let modified = compare_at(l, r, node, &mut child);
    out.record(pe, l, r, modified, child);
}

/// The two sides have different JSON types: everything below the old one
/// is removed, everything below the new one added, and the path modified.
fn mismatch(
    l: Option<&Value>,
    r: Option<&Value>,
    node: SchemaNode<'_>,
    out: &mut Comparison,
) -> bool {
    if let Some(l) = l {
        out.removed.union_with(&to_field_set(l, node));
    }
    if let Some(r) = r {
        out.added.union_with(&to_field_set(r, node));
    }
    l.is_some() && r.is_some()
}

/// The items of a list by key; items without a valid key are skipped.
fn index_items<'v>(
    list: &'v [Value],
    kind: &crate::schema::ListType<'_>,
    items: SchemaNode<'_>,
) -> BTreeMap<PathElement, Vec<&'v Value>> {
    let mut map: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
    for item in list {
        if let Ok(pe) = item_path_element(kind, items, item) {
            map.entry(pe).or_default().push(item);
        }
    }
    map
}

/// Upstream's `visitListItems` for comparison, including its handling of
/// duplicate keys (compared as a whole).
fn compare_lists(
    l: &[Value],
    r: &[Value],
    kind: &crate::schema::ListType<'_>,
    items: SchemaNode<'_>,
    out: &mut Comparison,
) {
    let (left, right) = (index_items(l, kind, items), index_items(r, kind, items));
    let all: Vec<PathElement> = left
        .keys()
        .chain(right.keys().filter(|k| !left.contains_key(*k)))
        .cloned()
        .collect();
    for pe in all {
        let ll = left.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
        let rl = right.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
        match (ll.len(), rl.len()) {
            (0..=1, 0..=1) => {
                compare_child(pe, ll.first().copied(), rl.first().copied(), items, out)
            }
            (2.., 2..) => {
                if ll != rl {
                    out.modified.insert_member(pe);
                }
            }
            (2.., _) => {
                if let Some(rv) = rl.first() {
                    compare_child(pe.clone(), None, Some(rv), items, out);
                }
                out.removed.insert_member(pe);
            }
            (_, _) => {
                if let Some(lv) = ll.first() {
                    compare_child(pe.clone(), Some(lv), None, items, out);
                }
                out.added.insert_member(pe);
            }
        }
    }
}
