//! Item order of merged lists.
//!
//! Upstream's rule (the "preserve order in strategic merge patch" design):
//! items named in the patch (or in `$setElementOrder`) keep the patch's
//! order, items only on the server keep the server's order, and the two runs
//! are interleaved so that an item never moves relative to a neighbour the
//! server already had it next to. kubectl relies on this to keep
//! `kubectl apply` from reshuffling containers and env vars.

use serde_json::Value;

use crate::error::{StrategicMergeError, go_type_name};

use super::directives::map_text;

type Result<T> = std::result::Result<T, StrategicMergeError>;

/// How list items are told apart: by the merge key's value for lists of
/// maps, by the value itself for lists of scalars.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Identity<'k> {
    /// A list of maps merged by this key.
    MergeKey(&'k str),
    /// A list of scalars.
    Value,
}

impl Identity<'_> {
    /// The item's identity, without checking it has one.
    pub(crate) fn of<'v>(&self, item: &'v Value) -> Option<&'v Value> {
        match self {
            Identity::MergeKey(k) => item.get(*k),
            Identity::Value => Some(item),
        }
    }

    /// The identities of all items, failing like upstream's
    /// `validateMergeKeyInLists` when a map item lacks the merge key.
    pub(crate) fn all<'v>(&self, items: impl IntoIterator<Item = &'v Value>) -> Result<Vec<Value>> {
        items
            .into_iter()
            .map(|item| match self {
                Identity::Value => Ok(item.clone()),
                Identity::MergeKey(k) => match item {
                    Value::Object(m) => {
                        m.get(*k)
                            .cloned()
                            .ok_or_else(|| StrategicMergeError::NoMergeKey {
                                map: map_text(m),
                                key: (*k).to_string(),
                            })
                    }
                    other => Err(StrategicMergeError::BadArgType {
                        expected: "map[string]interface {}",
                        actual: go_type_name(other),
                    }),
                },
            })
            .collect()
    }
}

fn position(order: &[Value], id: Option<&Value>) -> Option<usize> {
    let id = id?;
    order.iter().position(|o| o == id)
}

/// Splits `merged` into the items whose identity appears in `present` and
/// the rest, each in their current order.
pub(crate) fn partition(
    merged: Vec<Value>,
    present: &[&Value],
    identity: Identity<'_>,
) -> (Vec<Value>, Vec<Value>) {
    let ids: Vec<Option<&Value>> = present.iter().map(|p| identity.of(p)).collect();
    let (mut hit, mut miss) = (Vec::new(), Vec::new());
    for item in merged {
        let id = identity.of(&item);
        if id.is_some() && ids.contains(&id) {
            hit.push(item);
        } else {
            miss.push(item);
        }
    }
    (hit, miss)
}

/// Sorts items by the position of their identity in `order` (stable; items
/// not in `order` go last, which upstream's comparator leaves unspecified).
fn sort_by_order(items: &mut [Value], order: &[Value], identity: Identity<'_>) {
    items.sort_by_cached_key(|item| position(order, identity.of(item)).unwrap_or(usize::MAX));
}

/// Upstream's `normalizeElementOrder`: `patch_items` ordered by
/// `patch_order`, `server_only` by `server_order`, then interleaved.
pub(crate) fn normalize(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[&Value],
    server_order: &[Value],
    identity: Identity<'_>,
) -> Result<Vec<Value>> {
    let patch_order_ids = identity.all(patch_order.iter().copied())?;
    identity.all(&patch_items)?;
    identity.all(&server_only)?;
    sort_by_order(&mut patch_items, &patch_order_ids, identity);
    sort_by_order(&mut server_only, server_order, identity);
    Ok(interleave(server_only, patch_items, server_order, identity))
}

/// Upstream's `mergeSortedSlice`: walks both runs, taking the server item
/// first only when both are known to the server and it came first there.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    identity: Identity<'_>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                let li = position(server_order, identity.of(l));
                let ri = position(server_order, identity.of(r));
                matches!((li, ri), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(|i| i["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn patch_order_wins_server_items_keep_their_neighbours() {
        let server = vec![
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        let server_ids = Identity::MergeKey("name").all(&server).unwrap();
        // The patch names c then a; b is server-only and came before c on the
        // server, so it stays before c.
        let patch_order = [json!({"name": "c"}), json!({"name": "a"})];
        let merged = vec![
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        let order: Vec<&Value> = patch_order.iter().collect();
        let (hit, miss) = partition(merged, &order, Identity::MergeKey("name"));
        let out = normalize(hit, miss, &order, &server_ids, Identity::MergeKey("name")).unwrap();
        assert_eq!(names(&out), ["b", "c", "a"]);
    }

    #[test]
    fn missing_merge_key_is_an_error() {
        let err = Identity::MergeKey("name")
            .all(&[json!({"x": 1})])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"map: {"x":1} does not contain declared merge key: name"#
        );
    }
}
