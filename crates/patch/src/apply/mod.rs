//! Server-side apply (`application/apply-patch+yaml`) and the field
//! ownership bookkeeping every write does (`metadata.managedFields`).
//!
//! The model is upstream's (`k8s.io/apimachinery/pkg/util/managedfields`
//! over `sigs.k8s.io/structured-merge-diff`): each manager owns a set of
//! fields; an apply owns exactly the fields of its configuration, takes
//! them from others only with `force`, and drops fields it applied before
//! and no longer applies when nobody else owns them; every other write
//! (create, update, patch) takes the fields it changed as an `Update`
//! manager, which is what later applies conflict with.
//!
//! Not modelled: conversion between API versions (all entries are read as
//! if recorded at the object's version) and unions.

mod compare;
mod conflict;
mod created;
pub(crate) mod fieldset;
mod lastapplied;
pub(crate) mod managed;
pub(crate) mod merge;
mod remove;
mod timestamps;
mod typed;
mod update;
pub(crate) mod updater;

use serde_json::{Map, Value};

use crate::fieldpath::{FieldSet, Path};
use crate::schema::SchemaNode;

pub use conflict::{ApplyError, Conflict, Conflicts};
pub use lastapplied::LAST_APPLIED_ANNOTATION;
pub use managed::{ManagerId, Operation};
pub use timestamps::restore_unchanged_timestamps;
pub use update::{update_managed_fields, update_managed_fields_with};

use update::record_update;

use managed::Managed;
use updater::set_of;

/// The manager recorded for fields an object had before its first apply.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The manager older Update entries are folded into beyond the cap.
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// How many Update managers an object keeps (upstream's
/// `DefaultMaxUpdateManagers`).
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// Who is writing, and how.
#[derive(Clone, Copy, Debug)]
pub struct ManagerOptions<'a> {
    /// The request's `fieldManager` (upstream uses `unknown` when empty).
    pub manager: &'a str,
    /// The subresource written through (`status`, `scale`), if any.
    pub subresource: Option<&'a str>,
    /// The time to record, RFC 3339 (`2024-01-02T03:04:05Z`).
    pub now: &'a str,
    /// Fields this endpoint resets (e.g. `status` on the main resource,
    /// `spec` on `/status`): never owned, never conflicting.
    pub reset_fields: &'a [&'a [&'a str]],
}

impl<'a> ManagerOptions<'a> {
    /// Options for `manager` at `now`, without subresource or reset fields.
    pub fn new(manager: &'a str, now: &'a str) -> Self {
        ManagerOptions {
            manager,
            subresource: None,
            now,
            reset_fields: &[],
        }
    }

    fn id(&self, operation: Operation, api_version: &str) -> ManagerId {
        ManagerId {
            manager: if self.manager.is_empty() {
                "unknown"
            } else {
                self.manager
            }
            .to_string(),
            operation,
            api_version: (operation == Operation::Update).then(|| api_version.to_string()),
            subresource: self
                .subresource
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
}

/// Fields no manager ever owns (upstream's `stripMetaManager`).
/// Built once: every write of every object consults it.
fn strip_set() -> &'static FieldSet {
    static STRIP: std::sync::LazyLock<FieldSet> = std::sync::LazyLock::new(build_strip_set);
    &STRIP
}

fn build_strip_set() -> FieldSet {
    let mut set = set_of(&[&["apiVersion"], &["kind"], &["metadata"]]);
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&Path::fields(&["metadata", f]).0);
    }
    set
}

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

fn api_version_of(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

/// Writes the encoded entries into `obj.metadata.managedFields` (removing
/// the field when there are none).
fn store_managed_fields(obj: &mut Value, managed: &Managed) {
    put_managed_fields(obj, managed::encode(managed));
}

/// Sets `metadata.managedFields` to `encoded`, or removes it.
fn put_managed_fields(obj: &mut Value, encoded: Option<Value>) {
    let Value::Object(root) = obj else { return };
    if encoded.is_none() && !root.contains_key("metadata") {
        return;
    }
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        match encoded {
            Some(v) => {
                meta.insert("managedFields".to_string(), v);
            }
            None => {
                meta.shift_remove("managedFields");
            }
        }
    }
}

fn remove_managed_fields(obj: &mut Value) {
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.shift_remove("managedFields");
    }
}

/// Server-side apply of `applied` by `manager`, creating the object when
/// `live` is `None`. Returns the new object including
/// `metadata.managedFields`; the caller still defaults, validates and
/// stores it (and sets name, namespace and system fields on create).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    schema: SchemaNode<'_>,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_with(
        live,
        applied,
        force,
        schema,
        &ManagerOptions::new(manager, now),
    )
}

/// [`apply`] with a subresource and reset fields.
pub fn apply_with(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    schema: SchemaNode<'_>,
    opts: &ManagerOptions<'_>,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::BadRequest(
            "error decoding patch: the applied configuration must be an object".to_string(),
        ));
    }
    if managed_fields_of(applied).is_some_and(|v| !v.is_null()) {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".to_string(),
        ));
    }
    check_kind(live, applied)?;
    fieldset::validate(applied, schema).map_err(ApplyError::Invalid)?;

    let empty = Value::Object(Map::new());
    let live_value = live.unwrap_or(&empty);
    let mut managed =
        managed::decode(managed_fields_of(live_value)).map_err(ApplyError::ManagedFields)?;
    let api_version = api_version_of(applied).to_string();
    let ignored = set_of(opts.reset_fields);
    let strip = strip_set();

    // An object nobody tracked yet: its current fields become
    // `before-first-apply`'s, so the apply conflicts with them.
    if managed.fields.is_empty() && live.is_some() {
        let before = ManagerOptions {
            manager: BEFORE_FIRST_APPLY,
            ..*opts
        };
        record_update(
            &empty,
            live_value,
            schema,
            &mut managed,
            &before,
            &api_version,
            &ignored,
            strip,
        );
    }

    let id = opts.id(Operation::Apply, &api_version);
    let mut result = apply_once(
        live_value,
        applied,
        schema,
        managed.fields.clone(),
        &id,
        &api_version,
        force,
        &ignored,
    );
    if let Err(conflicts) = &result
        && opts.manager == lastapplied::KUBECTL
        && let Some(allowed) = lastapplied::allowed_conflicts(live_value, schema)
    {
        let remaining: Vec<Conflict> = conflicts
            .0
            .iter()
            .filter(|c| !allowed.has(&c.path.0))
            .cloned()
            .collect();
        result = if remaining.is_empty() {
            apply_once(
                live_value,
                applied,
                schema,
                managed.fields.clone(),
                &id,
                &api_version,
                true,
                &ignored,
            )
        } else {
            Err(Conflicts(remaining))
        };
    }
    let (mut new, fields) = result.map_err(|conflicts| ApplyError::Conflict { conflicts })?;
    managed.fields = fields;
    if let Some(ms) = managed.fields.get_mut(&id) {
        ms.set = ms.set.difference(strip);
        if ms.set.is_empty() {
            managed.fields.remove(&id);
        }
    }
    managed.fields.retain(|_, ms| !ms.set.is_empty());
    managed
        .times
        .retain(|id, _| managed.fields.contains_key(id));
    managed.times.insert(id, opts.now.to_string());

    if opts.manager == lastapplied::KUBECTL {
        lastapplied::sync_annotation(&mut new, applied);
    }
    remove_managed_fields(&mut new);
    store_managed_fields(&mut new, &managed);
    Ok(new)
}

/// One attempt at the structured apply; returns the object and the new
/// ownership.
#[allow(clippy::too_many_arguments)]
fn apply_once(
    live: &Value,
    applied: &Value,
    schema: SchemaNode<'_>,
    mut fields: updater::Managers,
    id: &ManagerId,
    api_version: &str,
    force: bool,
    ignored: &FieldSet,
) -> Result<(Value, updater::Managers), Conflicts> {
    let new = updater::apply(
        live,
        applied,
        schema,
        &mut fields,
        id,
        api_version,
        force,
        ignored,
    )?;
    Ok((new, fields))
}

fn check_kind(live: Option<&Value>, applied: &Value) -> Result<(), ApplyError> {
    let gvk = |v: &Value| {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        (text("apiVersion"), text("kind"))
    };
    let (gv, kind) = gvk(applied);
    // Upstream decodes the configuration into the request's kind: it must
    // name one, and the live object's.
    let matches = !gv.is_empty()
        && !kind.is_empty()
        && live.is_none_or(|live| {
            let (live_gv, live_kind) = gvk(live);
            live_gv.is_empty() || live_kind.is_empty() || (gv == live_gv && kind == live_kind)
        });
    if matches {
        return Ok(());
    }
    let gv = if gv.contains('/') {
        gv
    } else {
        format!("/{gv}")
    };
    Err(ApplyError::BadRequest(format!(
        "invalid object type: {gv}, Kind={kind}"
    )))
}

#[cfg(test)]
mod tests;
