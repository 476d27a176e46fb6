//! Upstream's defaulting for built-in kinds, on `serde_json::Value`.
//!
//! Upstream fills unset fields every time it decodes an object (the
//! `SetDefaults_*` functions in `pkg/apis/*/v1/defaults.go` plus the
//! `+default=` markers), and re-serializes every resource quantity in its
//! canonical form. Clients (`kubectl get -o yaml`, `kubectl apply` diffs)
//! and every controller rely on the defaulted shape, so the API server runs
//! these functions on every write.
//!
//! Rules shared by every function here:
//!
//! - Never panic, whatever the input shape: a field of the wrong type is
//!   left alone (validation reports it).
//! - A JSON `null` counts as unset, as Go's decoder treats it.
//! - An empty string counts as unset where upstream's Go field is a plain
//!   string (`dnsPolicy: ""` is defaulted), and a zero number counts as
//!   unset where the Go field is a plain integer (probe periods).
//! - Idempotent: applying twice gives the same object as applying once.
//! - Quantities that do not parse are left as they are: upstream rejects
//!   them while decoding, here `validation::validate` reports them.

mod apps;
mod batch;
mod core;
mod others;
mod pod;

use serde_json::{Map, Value};

use crate::quantity::Quantity;

pub use pod::image_tag;

/// Fills upstream's defaults into `obj`, a built-in object of `kind` in
/// `group` ("" for core), at any version; does nothing for kinds without
/// defaults (and for custom resources, whose defaults come from their
/// schema).
///
/// Call it on every write (create, update, patch results) before
/// validation. It covers what upstream does while *decoding* an object;
/// what upstream does only when *creating* one is in [`apply_on_create`].
///
/// Version-dependent defaults read `obj["apiVersion"]` (only the
/// autoscaling group differs between versions).
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match group {
        "" => core::apply(kind, obj),
        "apps" => apps::apply(kind, obj),
        "batch" => batch::apply(kind, obj),
        _ => others::apply(group, kind, obj),
    }
}

/// [`apply`] plus the steps upstream's registry runs only on create
/// (`PrepareForCreate`), for the fields users see defaulted:
///
/// - Namespace: `spec.finalizers` gets `kubernetes` (only on create:
///   the namespace controller removes it later, and re-adding it on update
///   would make namespaces undeletable).
/// - Job (unless `spec.manualSelector` is true): the generated selector and
///   pod labels (`batch.kubernetes.io/controller-uid`, `controller-uid`,
///   `batch.kubernetes.io/job-name`, `job-name`). Needs `metadata.uid` and
///   `metadata.name` to be set already; skipped when they are not.
/// - Service: `spec.clusterIPs` mirrors `spec.clusterIP` (allocation of a
///   cluster IP itself is not done here).
///
/// Upstream applies defaults again whenever it reads the object back, so
/// this runs [`apply`] before and after the create-only steps: the stored
/// object then looks like what upstream serves (a Job's `metadata.labels`
/// copied from the generated template labels, for example).
///
/// Status-dependent defaults (PersistentVolume(Claim) `status.phase:
/// Pending`, Namespace `status.phase: Active`) are applied too, so call
/// this after resetting `status` for the create, not before.
pub fn apply_on_create(group: &str, kind: &str, obj: &mut Value) {
    apply(group, kind, obj);
    match (group, kind) {
        ("", "Namespace") => core::namespace_on_create(obj),
        ("", "Service") => core::service_cluster_ips(obj),
        ("", "Pod") => pod::default_toleration_seconds(obj),
        ("batch", "Job") => batch::generate_selector(obj),
        _ => {}
    }
    apply(group, kind, obj);
}

/// The object under `key`, created when absent or `null`; `None` when the
/// field holds something else.
pub(crate) fn ensure_obj<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The object under `key` if there is one.
pub(crate) fn obj_mut<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// Whether `key` is absent or `null` (a nil pointer, map or slice in Go).
pub(crate) fn unset(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).is_none_or(Value::is_null)
}

/// Sets `key` when unset (Go pointer fields).
pub(crate) fn default(m: &mut Map<String, Value>, key: &str, v: Value) {
    if unset(m, key) {
        m.insert(key.to_string(), v);
    }
}

/// Sets a string field when unset or empty (Go plain string fields).
pub(crate) fn default_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    if unset(m, key) || m.get(key).and_then(Value::as_str) == Some("") {
        m.insert(key.to_string(), Value::String(v.to_string()));
    }
}

/// Sets an integer field when unset or zero (Go plain integer fields).
pub(crate) fn default_int(m: &mut Map<String, Value>, key: &str, v: i64) {
    if unset(m, key) || m.get(key).and_then(Value::as_i64) == Some(0) {
        m.insert(key.to_string(), Value::from(v));
    }
}

/// Runs `f` on every object in the array under `key`.
pub(crate) fn each_obj(
    m: &mut Map<String, Value>,
    key: &str,
    mut f: impl FnMut(&mut Map<String, Value>),
) {
    if let Some(items) = m.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// Whether an array or object field has at least one element.
pub(crate) fn non_empty(m: &Map<String, Value>, key: &str) -> bool {
    match m.get(key) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        _ => false,
    }
}

/// Rewrites one quantity field in canonical form (any `Quantity` field).
pub(crate) fn canon_quantity(m: &mut Map<String, Value>, key: &str) {
    if let Some(v) = m.get_mut(key)
        && let Ok(q) = Quantity::from_json(v)
    {
        *v = Value::String(q.to_string());
    }
}

/// Rewrites a resource list (`ResourceList`, e.g. `limits`): each quantity
/// rounded up to milli precision, as upstream's `SetDefaults_ResourceList`,
/// and canonical (`1000m` becomes `1`, `0.1m` becomes `1m`).
pub(crate) fn canon_list(m: &mut Map<String, Value>, key: &str) {
    if let Some(list) = obj_mut(m, key) {
        for v in list.values_mut() {
            if let Ok(mut q) = Quantity::from_json(v) {
                q.round_up(-3);
                *v = Value::String(q.to_string());
            }
        }
    }
}

/// `limits` and `requests` of a `ResourceRequirements` under `key`.
pub(crate) fn canon_requirements(m: &mut Map<String, Value>, key: &str) {
    if let Some(r) = obj_mut(m, key) {
        canon_list(r, "limits");
        canon_list(r, "requests");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_shapes_are_left_alone() {
        for mut v in [
            json!(null),
            json!("x"),
            json!({"spec": "x"}),
            json!({"spec": {"template": 3}}),
            json!({"spec": {"template": {"spec": {"containers": "x", "volumes": [1, null]}}}}),
        ] {
            for (g, k) in [
                ("apps", "Deployment"),
                ("", "Pod"),
                ("batch", "CronJob"),
                ("", "Service"),
            ] {
                apply(g, k, &mut v);
                apply_on_create(g, k, &mut v);
            }
        }
    }
}
