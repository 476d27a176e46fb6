//! Storage admission on create (upstream's `DefaultStorageClass` and
//! `StorageObjectInUseProtection` plugins): a PersistentVolumeClaim that
//! names no class (the field absent, not `""`) gets the default
//! StorageClass (annotation `storageclass.kubernetes.io/is-default-class:
//! "true"`, the newest when several are), and claims and volumes get the
//! `kubernetes.io/pvc-protection` / `kubernetes.io/pv-protection`
//! finalizers, which the PV controller removes once nothing uses them.

use serde_json::{Value, json};

use crate::App;
use crate::object;

pub const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// The default class's name among `classes` (newest, then by name, as
/// upstream's `GetDefaultClass`).
pub fn default_class(classes: &[Value]) -> Option<String> {
    classes
        .iter()
        .filter(|c| {
            c.pointer("/metadata/annotations")
                .and_then(|a| a.get(DEFAULT_CLASS))
                == Some(&json!("true"))
        })
        .max_by(|a, b| {
            let ts = |o: &Value| {
                o.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            ts(a)
                .cmp(&ts(b))
                .then_with(|| object::name(b).cmp(&object::name(a)))
        })
        .and_then(|c| object::name(c).map(str::to_string))
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let meta = object::meta_mut(obj);
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(l) = list.as_array_mut()
        && !l.iter().any(|x| x == f)
    {
        l.push(json!(f));
    }
}

/// The admission step for a create of core `plural`.
pub fn admit_create(app: &App, plural: &str, obj: &mut Value) {
    match plural {
        "persistentvolumeclaims" => {
            let missing = obj
                .pointer("/spec/storageClassName")
                .is_none_or(Value::is_null);
            if missing {
                let (classes, _, _) =
                    app.cache
                        .list("/registry/storage.k8s.io/storageclasses/", None, 0, |_| {
                            true
                        });
                let values: Vec<Value> = classes.iter().map(|c| c.value.clone()).collect();
                if let Some(name) = default_class(&values)
                    && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
                {
                    spec.insert("storageClassName".into(), json!(name));
                }
            }
            add_finalizer(obj, PVC_PROTECTION);
        }
        "persistentvolumes" => add_finalizer(obj, PV_PROTECTION),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_default_class_wins() {
        let c = |n: &str, ts: &str, d: bool| {
            json!({"metadata": {"name": n, "creationTimestamp": ts,
                "annotations": {DEFAULT_CLASS: if d { "true" } else { "false" }}}})
        };
        let classes = vec![
            c("a", "2024-01-01T00:00:00Z", true),
            c("b", "2024-02-01T00:00:00Z", true),
            c("c", "2024-03-01T00:00:00Z", false),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("b"));
        assert_eq!(default_class(&classes[2..]), None);
    }
}
