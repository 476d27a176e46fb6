//! The ownership algorithm of structured-merge-diff's `merge.Updater`:
//! moving fields between managers on writes, detecting conflicts on apply,
//! and pruning fields an applier stopped applying.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fieldpath::{FieldSet, Path};
use crate::schema::SchemaNode;

use super::compare::{Comparison, compare};
use super::conflict::{Conflict, Conflicts};
use super::fieldset::{ensure_named_fields, to_field_set};
use super::managed::{ManagedSet, ManagerId};
use super::merge::merge;
use super::remove::{Emptied, remove_items};

pub(crate) type Managers = BTreeMap<ManagerId, ManagedSet>;

/// Upstream's `update`: compares `old` and `new`; every manager other than
/// `workflow` loses the fields `new` removed and, if `force`, the fields it
/// added or changed. Without `force` those are conflicts.
pub(crate) fn update(
    old: &Value,
    new: &Value,
    node: SchemaNode<'_>,
    managers: &mut Managers,
    workflow: Option<&ManagerId>,
    force: bool,
    ignored: &FieldSet,
) -> Result<Comparison, Conflicts> {
    let cmp = compare(old, new, node).exclude(ignored);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts: Vec<(ManagerId, FieldSet)> = Vec::new();
    for (id, ms) in managers.iter() {
        if Some(id) == workflow {
            continue;
        }
        let c = ms.set.intersection(&changed);
        if !c.is_empty() {
            conflicts.push((id.clone(), c));
        }
    }
    if !force && !conflicts.is_empty() {
        let list = conflicts
            .into_iter()
            .flat_map(|(id, set)| {
                set.paths().into_iter().map(move |path| Conflict {
                    manager: id.clone(),
                    path,
                })
            })
            .collect();
        return Err(Conflicts(list));
    }
    for (id, c) in conflicts {
        if let Some(ms) = managers.get_mut(&id) {
            ms.set = ms.set.difference(&c);
        }
    }
    if !cmp.removed.is_empty() {
        for (id, ms) in managers.iter_mut() {
            if Some(id) != workflow {
                ms.set = ms.set.difference(&cmp.removed);
            }
        }
    }
    managers.retain(|_, ms| !ms.set.is_empty());
    Ok(cmp)
}

/// Upstream's `Apply`: merges `config` into `live`, records `config`'s
/// fields as `manager`'s, removes fields it applied before and no longer
/// does (unless someone else owns them), and checks conflicts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    live: &Value,
    config: &Value,
    node: SchemaNode<'_>,
    managers: &mut Managers,
    manager: &ManagerId,
    api_version: &str,
    force: bool,
    ignored: &FieldSet,
) -> Result<Value, Conflicts> {
    let merged = merge(live, config, node);
    let last = managers.get(manager).map(|ms| ms.set.clone());
    let set = to_field_set(config, node).recursive_difference(ignored);
    managers.insert(
        manager.clone(),
        ManagedSet {
            set,
            api_version: api_version.to_string(),
            applied: true,
        },
    );
    // Pruning can only remove fields the applier owned before and does not
    // apply now; when it still applies all of them (the usual re-apply),
    // skip the several walks it costs.
    let new = match last {
        Some(last) if !last.difference(&managers[manager].set).is_empty() => {
            prune(merged, managers, &last, node)
        }
        _ => merged,
    };
    update(live, &new, node, managers, Some(manager), force, ignored)?;
    Ok(new)
}

/// Removes from `merged` the fields in `last` (the applier's previous set)
/// that nobody owns any more, following upstream's three steps (remove the
/// previous set, add back what anyone owns, add back what was never the
/// applier's) so that a struct disappears only with its last owned field.
pub(crate) fn prune(
    merged: Value,
    managers: &Managers,
    last: &FieldSet,
    node: SchemaNode<'_>,
) -> Value {
    let last = ensure_named_fields(last, node);
    let pruned = remove_items(&merged, &last, node, Emptied::Null).unwrap_or_else(empty_object);
    let mut owned = FieldSet::new();
    for ms in managers.values() {
        owned.union_with(&ms.set);
    }
    let owned = ensure_named_fields(&owned, node);
    let merged_set = ensure_named_fields(&to_field_set(&merged, node), node);
    let pruned_set = ensure_named_fields(&to_field_set(&pruned, node), node);
    let unowned = merged_set.difference(&pruned_set.union(&owned));
    let pruned = remove_items(&merged, &unowned, node, Emptied::Null).unwrap_or_else(empty_object);
    let pruned_set = ensure_named_fields(&to_field_set(&pruned, node), node);
    let dropped = merged_set.difference(&pruned_set).intersection(&last);
    remove_items(&merged, &dropped, node, Emptied::Drop).unwrap_or_else(empty_object)
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// The paths `paths` as a set of members (for reset fields).
pub(crate) fn set_of(paths: &[&[&str]]) -> FieldSet {
    let mut set = FieldSet::new();
    for p in paths {
        set.insert(&Path::fields(p).0);
    }
    set
}
