//! What server-side apply sees at each point of an object: the "atom" of
//! structured-merge-diff, decided by the schema and, where the schema is
//! silent or disagrees, by the value itself (upstream's "deduced" type).

use serde_json::Value;

use crate::fieldpath::PathElement;
use crate::schema::{ListType, SchemaNode, Shape};

/// How a value takes part in merging and ownership.
#[derive(Clone, Debug)]
pub(crate) enum Atom<'a> {
    /// A leaf: owned and replaced whole.
    Scalar,
    /// A list; atomic lists are leaves.
    List {
        items: SchemaNode<'a>,
        kind: ListType<'a>,
    },
    /// An object. `node` answers field lookups; atomic maps are leaves.
    Map { node: SchemaNode<'a>, atomic: bool },
}

impl Atom<'_> {
    /// Whether the whole value is one leaf (scalars, atomic lists and maps).
    pub(crate) fn is_atomic(&self) -> bool {
        match self {
            Atom::Scalar => true,
            Atom::List { kind, .. } => *kind == ListType::Atomic,
            Atom::Map { atomic, .. } => *atomic,
        }
    }
}

/// The atom of `value` at `node`. Upstream's deduced type makes objects
/// granular maps and lists atomic; a value whose JSON type contradicts the
/// schema is treated as deduced rather than rejected, since the API server
/// validates types separately.
pub(crate) fn atom<'a>(node: SchemaNode<'a>, value: &Value) -> Atom<'a> {
    match value {
        Value::Object(_) => match node.shape() {
            Shape::Object | Shape::Untyped => Atom::Map {
                node,
                atomic: node.is_atomic_map(),
            },
            _ => Atom::Map {
                node: SchemaNode::none(),
                atomic: false,
            },
        },
        Value::Array(_) => match node.shape() {
            Shape::Array => Atom::List {
                items: node.items(),
                kind: node.list_type(),
            },
            _ => Atom::List {
                items: SchemaNode::none(),
                kind: ListType::Atomic,
            },
        },
        _ => Atom::Scalar,
    }
}

/// The schema of field `name` of a map, and whether it is a declared
/// property (a "named field") rather than a map key.
pub(crate) fn field<'a>(node: SchemaNode<'a>, name: &str) -> (SchemaNode<'a>, bool) {
    (node.field(name), node.has_property(name))
}

/// The items of a non-atomic list that have a valid path element, each
/// with it and whether it is the first of several items with the same one
/// (`Some(true)`), a later one (`Some(false)`), or unique (`None`).
/// Duplicates are owned as a whole, never field by field.
pub(crate) fn keyed_items<'v>(
    list: &'v [Value],
    kind: &ListType<'_>,
    items: SchemaNode<'_>,
) -> Vec<(&'v Value, PathElement, Option<bool>)> {
    let keyed: Vec<(&Value, PathElement)> = list
        .iter()
        .filter_map(|item| Some((item, item_path_element(kind, items, item).ok()?)))
        .collect();
    let mut counts: std::collections::BTreeMap<&PathElement, usize> = Default::default();
    for (_, pe) in &keyed {
        *counts.entry(pe).or_default() += 1;
    }
    let mut seen: std::collections::BTreeSet<&PathElement> = Default::default();
    let duplicated: Vec<Option<bool>> = keyed
        .iter()
        .map(|(_, pe)| (counts.get(pe).copied().unwrap_or(0) > 1).then(|| seen.insert(pe)))
        .collect();
    keyed
        .iter()
        .zip(duplicated)
        .map(|((item, pe), d)| (*item, pe.clone(), d))
        .collect()
}

/// The path element of an item of an associative list (upstream's
/// `listItemToPathElement`). Key fields the item omits take the schema's
/// `default`, as upstream does for `protocol` in port lists.
pub(crate) fn item_path_element(
    kind: &ListType<'_>,
    items: SchemaNode<'_>,
    item: &Value,
) -> Result<PathElement, String> {
    match kind {
        ListType::Atomic => Err("invalid indexing of non-associative list".to_string()),
        ListType::Map(keys) => {
            let m = match item {
                Value::Object(m) => m,
                Value::Null => {
                    return Err(
                        "associative list with keys may not have a null element".to_string()
                    );
                }
                _ => {
                    return Err(
                        "associative list with keys may not have non-map elements".to_string()
                    );
                }
            };
            let mut fields: Vec<(String, Value)> = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(v) = m.get(*key) {
                    fields.push(((*key).to_string(), v.clone()));
                } else if let Some(d) = items.property_default(key) {
                    fields.push(((*key).to_string(), d.clone()));
                }
            }
            if fields.is_empty() {
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {keys:?} (and doesn't have default values for any key fields)"
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListType::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".to_string())
            }
            Value::Array(_) => {
                Err("not supported: associative list with lists as elements".to_string())
            }
            Value::Null => Err(
                "associative list without keys has an element that's an explicit null".to_string(),
            ),
            v => Ok(PathElement::Value(v.clone())),
        },
    }
}
