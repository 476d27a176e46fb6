//! Merging an applied configuration into the live object (upstream's
//! `TypedValue.Merge`): the configuration wins at every leaf it sets,
//! associative lists merge item by item, atomic values are replaced whole.
//!
//! Unlike upstream, a `null` leaf in the configuration removes the field
//! instead of storing `null`: upstream gets the same effect by decoding into
//! Go structs, where `null` becomes "unset", and Skiff stores JSON as is.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::fieldpath::PathElement;
use crate::schema::{ListType, SchemaNode};

use super::typed::{Atom, atom, field, item_path_element};

/// Merges `rhs` (the configuration) into `lhs` (the live object).
pub(crate) fn merge(lhs: &Value, rhs: &Value, node: SchemaNode<'_>) -> Value {
    merge_at(Some(lhs), Some(rhs), node).unwrap_or_else(|| Value::Object(Map::new()))
}

/// A leaf keeps the right side if present, else the left; `null` means
/// "no value".
fn leaf(l: Option<&Value>, r: Option<&Value>) -> Option<Value> {
    r.or(l).filter(|v| !v.is_null()).cloned()
}

fn merge_at(l: Option<&Value>, r: Option<&Value>, node: SchemaNode<'_>) -> Option<Value> {
    let shape_of = r.filter(|v| !v.is_null()).or(l)?;
    let a = atom(node, shape_of);
    if a.is_atomic() {
        return leaf(l, r);
    }
    match a {
        Atom::List { items, kind } => {
            let ll = list_view(l);
            let rl = list_view(r);
            let (Some(ll), Some(rl)) = (ll, rl) else {
                return leaf(l, r);
            };
            if ll.is_empty() && rl.is_empty() {
                return leaf(l, r);
            }
            Some(Value::Array(merge_lists(ll, rl, &kind, items)))
        }
        Atom::Map { node, .. } => {
            let (Some(lm), Some(rm)) = (map_view(l), map_view(r)) else {
                return leaf(l, r);
            };
            if lm.is_empty() && rm.is_empty() {
                return leaf(l, r);
            }
            let mut out = Map::with_capacity(lm.len().max(rm.len()));
            for (k, lv) in lm {
                if let Some(v) = merge_at(Some(lv), rm.get(k), field(node, k).0) {
                    out.insert(k.clone(), v);
                }
            }
            for (k, rv) in rm {
                if !lm.contains_key(k)
                    && let Some(v) = merge_at(None, Some(rv), field(node, k).0)
                {
                    out.insert(k.clone(), v);
                }
            }
            if out.is_empty() {
                return None;
            }
            Some(Value::Object(out))
        }
        Atom::Scalar => leaf(l, r),
    }
}

static EMPTY_LIST: Vec<Value> = Vec::new();
static EMPTY_MAP: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// A side as a list: absent and `null` are empty; `None` for another type.
fn list_view(v: Option<&Value>) -> Option<&[Value]> {
    match v {
        None | Some(Value::Null) => Some(&EMPTY_LIST),
        Some(Value::Array(a)) => Some(a),
        Some(_) => None,
    }
}

fn map_view(v: Option<&Value>) -> Option<&Map<String, Value>> {
    match v {
        None | Some(Value::Null) => Some(&EMPTY_MAP),
        Some(Value::Object(m)) => Some(m),
        Some(_) => None,
    }
}

/// Upstream's `visitListItems` for merging. The result follows the
/// configuration's order for the items it names; live items it does not
/// name stay where they were relative to the items around them. Live items
/// without a valid key are kept as they are.
fn merge_lists(l: &[Value], r: &[Value], kind: &ListType<'_>, items: SchemaNode<'_>) -> Vec<Value> {
    let lhs: Vec<(Option<PathElement>, &Value)> = l
        .iter()
        .map(|v| (item_path_element(kind, items, v).ok(), v))
        .collect();
    // The configuration was validated: its items have distinct, valid keys.
    let rhs: Vec<(PathElement, &Value)> = r
        .iter()
        .filter_map(|v| item_path_element(kind, items, v).ok().map(|pe| (pe, v)))
        .collect();
    let observed_rhs: BTreeMap<&PathElement, &Value> = rhs.iter().map(|(pe, v)| (pe, *v)).collect();
    // Live items by key; duplicated keys map to `None` and are not merged.
    let mut observed_lhs: BTreeMap<&PathElement, Option<&Value>> = BTreeMap::new();
    for (pe, v) in &lhs {
        if let Some(pe) = pe {
            observed_lhs
                .entry(pe)
                .and_modify(|e| *e = None)
                .or_insert(Some(*v));
        }
    }
    let mut shared = rhs
        .iter()
        .map(|(pe, _)| pe)
        .filter(|pe| observed_lhs.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let (mut li, mut ri) = (0, 0);
    let merge_item = |pe: &PathElement, lv: Option<&Value>| -> Option<Value> {
        merge_at(lv, observed_rhs.get(pe).copied(), items)
    };
    while li < lhs.len() || ri < rhs.len() {
        let progress = (li, ri);
        if li < lhs.len()
            && ri < rhs.len()
            && let Some(pe) = &lhs[li].0
        {
            if *pe == rhs[ri].0 {
                merged_rhs.insert(pe);
                out.extend(merge_item(pe, observed_lhs.get(pe).copied().flatten()));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                // A shared item, but not the next one the configuration wants.
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            match &lhs[li].0 {
                Some(pe) if observed_rhs.contains_key(pe) => {
                    if merged_rhs.contains(pe) {
                        li += 1;
                    }
                }
                pe => {
                    let lv = lhs[li].1;
                    match pe {
                        Some(_) => out.extend(merge_at(Some(lv), None, items)),
                        None => out.push(lv.clone()),
                    }
                    li += 1;
                    continue;
                }
            }
        }
        if ri < rhs.len() {
            let pe = &rhs[ri].0;
            merged_rhs.insert(pe);
            out.extend(merge_item(pe, observed_lhs.get(pe).copied().flatten()));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
        if progress == (li, ri) {
            // Cannot happen for consistent indexes; never loop forever.
            li += 1;
        }
    }
    out
}
