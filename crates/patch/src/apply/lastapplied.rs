//! The bridge from client-side to server-side apply for kubectl: when the
//! manager is `kubectl` and the object carries the client-side
//! `last-applied-configuration` annotation, conflicts on fields that
//! annotation shows kubectl itself set (and that still have that value) are
//! not conflicts, and the annotation is kept in step with what was applied
//! (upstream's `lastAppliedManager` and `lastAppliedUpdater`).

use serde_json::Value;

use crate::fieldpath::FieldSet;
use crate::schema::SchemaNode;

use super::compare::compare;
use super::fieldset::to_field_set;

/// The annotation kubectl's client-side apply writes.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager name this bridge is reserved for.
pub(crate) const KUBECTL: &str = "kubectl";

fn annotation(obj: &Value) -> Option<&str> {
    obj.get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The fields kubectl's last client-side apply set that still hold the
/// value it set; `None` without a usable annotation.
pub(crate) fn allowed_conflicts(live: &Value, node: SchemaNode<'_>) -> Option<FieldSet> {
    let last: Value = serde_json::from_str(annotation(live)?).ok()?;
    if !last.is_object() || last.get("apiVersion") != live.get("apiVersion") {
        return None;
    }
    let set = to_field_set(&last, node);
    let cmp = compare(&last, live, node);
    Some(
        set.difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

/// Rewrites the annotation on `obj` to `applied` (without the annotation),
/// if `obj` has one.
pub(crate) fn sync_annotation(obj: &mut Value, applied: &Value) {
    if annotation(obj).is_none() {
        return;
    }
    let mut applied = applied.clone();
    if let Some(Value::Object(a)) = applied
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        a.shift_remove(LAST_APPLIED_ANNOTATION);
    }
    let text = serde_json::to_string(&applied).unwrap_or_default();
    if let Some(Value::Object(a)) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        a.insert(LAST_APPLIED_ANNOTATION.to_string(), Value::String(text));
    }
}
