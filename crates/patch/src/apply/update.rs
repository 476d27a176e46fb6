//! Ownership bookkeeping for ordinary writes (create, update, non-apply
//! patch): the writer becomes an `Update` manager of what it changed.

use serde_json::{Map, Value};

use crate::fieldpath::FieldSet;
use crate::schema::SchemaNode;

use super::managed::{self, Managed, ManagerId, Operation};
use super::updater::{self, set_of};
use super::{
    ANCIENT_CHANGES, MAX_UPDATE_MANAGERS, ManagerOptions, api_version_of, managed_fields_of,
    put_managed_fields, remove_managed_fields, store_managed_fields, strip_set,
};

/// Records an ordinary write (create, update, patch; operation `Update`)
/// of `new` over `old` (`None` on create) by `manager`, and returns `new`
/// with `metadata.managedFields` brought up to date.
///
/// Never fails: like upstream's `UpdateNoErrors`, undecodable managedFields
/// are treated as absent.
pub fn update_managed_fields(
    old: Option<&Value>,
    new: Value,
    manager: &str,
    now: &str,
    schema: SchemaNode<'_>,
) -> Value {
    update_managed_fields_with(old, new, schema, &ManagerOptions::new(manager, now))
}

/// [`update_managed_fields`] with a subresource and reset fields.
pub fn update_managed_fields_with(
    old: Option<&Value>,
    mut new: Value,
    schema: SchemaNode<'_>,
    opts: &ManagerOptions<'_>,
) -> Value {
    let empty = Value::Object(Map::new());
    let old_value = old.unwrap_or(&empty);
    let decode_old = || managed::decode(managed_fields_of(old_value)).unwrap_or_default();
    // A write may carry managedFields (a client round-tripping the object, or
    // resetting them with `[]`); writes to subresources never set them.
    let mut managed = if opts.subresource.is_some() {
        decode_old()
    } else if managed::is_reset(managed_fields_of(&new)) {
        Managed::default()
    } else {
        match managed::decode(managed_fields_of(&new)) {
            Ok(m) if !m.fields.is_empty() => m,
            _ => decode_old(),
        }
    };
    remove_managed_fields(&mut new);
    // Objects that exist without managedFields stay untracked until their
    // first apply (upstream's `skipNonAppliedManager`).
    if managed.fields.is_empty() && old.is_some() {
        return new;
    }
    let api_version = api_version_of(&new).to_string();
    let ignored = set_of(opts.reset_fields);
    if old.is_none() && managed.fields.is_empty() {
        // The common write, a create with no managers yet: its one entry
        // is written straight from the object (what `record_create` and
        // `store_managed_fields` would make, without the field set).
        let fields = super::created::created_fields_v1(&new, schema, &ignored, strip_set());
        if !fields.is_empty() {
            let id = opts.id(Operation::Update, &api_version);
            let entry = managed::entry(
                &id,
                Operation::Update,
                &api_version,
                Some(opts.now),
                Value::Object(fields),
            );
            put_managed_fields(&mut new, Some(Value::Array(vec![entry])));
        }
        return new;
    }
    record_update(
        old_value,
        &new,
        schema,
        &mut managed,
        opts,
        &api_version,
        &ignored,
        strip_set(),
    );
    cap_update_managers(&mut managed);
    store_managed_fields(&mut new, &managed);
    new
}

/// Upstream's Update path: other managers lose what this write changed or
/// removed, and this manager (as an Update entry) gains what it changed.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_update(
    old: &Value,
    new: &Value,
    schema: SchemaNode<'_>,
    managed: &mut Managed,
    opts: &ManagerOptions<'_>,
    api_version: &str,
    ignored: &FieldSet,
    strip: &FieldSet,
) {
    let Ok(cmp) = updater::update(old, new, schema, &mut managed.fields, None, true, ignored)
    else {
        return;
    };
    let mut set = cmp.modified.union(&cmp.added);
    set.subtract_recursive(ignored);
    set.subtract(strip);
    managed
        .times
        .retain(|id, _| managed.fields.contains_key(id));
    own_as_update(managed, opts, api_version, set);
}

/// The writer (as an Update entry, stamped now) gains `set`, on top of
/// what it owned before; an empty set changes nothing.
fn own_as_update(
    managed: &mut Managed,
    opts: &ManagerOptions<'_>,
    api_version: &str,
    mut set: FieldSet,
) {
    if set.is_empty() {
        return;
    }
    let id = opts.id(Operation::Update, api_version);
    if let Some(prev) = managed.fields.get(&id) {
        set.union_with(&prev.set);
    }
    managed.fields.insert(
        id.clone(),
        managed::ManagedSet {
            set,
            api_version: api_version.to_string(),
            applied: false,
        },
    );
    managed.times.insert(id, opts.now.to_string());
}

/// [`record_update`] for a create with no managers yet, as a set: compared
/// with nothing, every field of `new` is added and nobody loses anything,
/// so the writer's set is every path of `new`. The reference the write
/// path's direct encoding (`created.rs`) is tested against.
#[cfg(test)]
pub(super) fn record_create(
    new: &Value,
    schema: SchemaNode<'_>,
    managed: &mut Managed,
    opts: &ManagerOptions<'_>,
    api_version: &str,
    ignored: &FieldSet,
) {
    let mut set = super::fieldset::to_added_set(new, schema);
    set.subtract_recursive(ignored);
    set.subtract(strip_set());
    own_as_update(managed, opts, api_version, set);
}

/// Upstream's `capManagersManager`: beyond [`MAX_UPDATE_MANAGERS`] Update
/// entries, the oldest are folded into `ancient-changes`, one per version.
fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<ManagerId> = managed
        .fields
        .iter()
        .filter(|(_, ms)| !ms.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    let secs = |id: &ManagerId| {
        managed
            .times
            .get(id)
            .and_then(|t| managed::rfc3339_seconds(t))
            .unwrap_or(0)
    };
    updaters.sort_by(|a, b| secs(a).cmp(&secs(b)).then_with(|| a.cmp(b)));
    let mut remaining = updaters.len();
    let mut first_per_version: std::collections::BTreeMap<String, ManagerId> = Default::default();
    for id in updaters {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(ms) = managed.fields.get(&id).cloned() else {
            continue;
        };
        let bucket = ManagerId {
            manager: ANCIENT_CHANGES.to_string(),
            operation: Operation::Update,
            api_version: Some(ms.api_version.clone()),
            subresource: None,
        };
        match first_per_version.get(&ms.api_version) {
            None => {
                first_per_version.insert(ms.api_version.clone(), id);
            }
            Some(first) => {
                if !managed.fields.contains_key(&bucket)
                    && let Some(first_set) = managed.fields.remove(first)
                {
                    managed.times.remove(first);
                    managed.fields.insert(bucket.clone(), first_set);
                }
                let time = managed.times.remove(&id);
                managed.fields.remove(&id);
                if let Some(b) = managed.fields.get_mut(&bucket) {
                    b.set.union_with(&ms.set);
                }
                if let Some(t) = time {
                    managed.times.insert(bucket, t);
                }
                remaining -= 1;
            }
        }
    }
}
