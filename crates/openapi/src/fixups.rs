//! Turns k8s-openapi's schemars output into what upstream publishes.
//!
//! k8s-openapi's schemas carry descriptions and types only. Upstream's also
//! carry `x-kubernetes-*` extensions (which kubectl's client-side apply and
//! our strategic merge patch and server-side apply need), upstream `required`
//! lists, GVKs on top-level kinds, and particular shapes for a few scalar
//! types. This module adds all of that to a map of definitions.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::facts::{self, F};

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Objects that hold arbitrary JSON objects. Upstream gives them no
/// properties; we add `x-kubernetes-preserve-unknown-fields` so that field
/// validation (which treats a property-less `type: object` as closed, as for
/// custom resources) does not reject their contents.
const FREE_OBJECTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
];

/// Definitions that hold any JSON value. Upstream gives them no `type`;
/// k8s-openapi's `type: object` and `oneOf` would reject `true` or a list.
const ANY_JSON: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// Applies every upstream fact to `defs`, in place.
pub(crate) fn apply(defs: &mut Map<String, Value>) {
    let gvks = builtin_gvks();
    for (name, schema) in defs.iter_mut() {
        let Some(obj) = schema.as_object_mut() else {
            continue;
        };
        apply_required(name, obj);
        apply_definition_facts(name, obj);
        apply_field_facts(name, obj);
        fix_scalar(name, obj);
        if let Some(list) = gvks.get(name.as_str()) {
            obj.insert(
                "x-kubernetes-group-version-kind".into(),
                Value::Array(list.clone()),
            );
        }
    }
}

/// Definition name → GVKs of the built-in kinds it is the schema of.
fn builtin_gvks() -> HashMap<String, Vec<Value>> {
    let mut map: HashMap<String, Vec<Value>> = HashMap::new();
    for b in crate::builtin::BUILTINS {
        map.entry(b.name.to_string())
            .or_default()
            .push(json!({ "group": b.group, "kind": b.kind, "version": b.version }));
    }
    map
}

fn apply_required(name: &str, obj: &mut Map<String, Value>) {
    let Ok(i) = facts::REQUIRED.binary_search_by(|(d, _)| (*d).cmp(name)) else {
        return;
    };
    let required = facts::REQUIRED[i].1;
    if required.is_empty() {
        obj.remove("required");
    } else {
        obj.insert("required".into(), json!(required));
    }
}

fn apply_definition_facts(name: &str, obj: &mut Map<String, Value>) {
    let Ok(i) = facts::DEFS.binary_search_by(|d| d.def.cmp(name)) else {
        return;
    };
    let d = facts::DEFS[i];
    if let Some(map_type) = d.map_type {
        obj.insert("x-kubernetes-map-type".into(), map_type.into());
    }
    if let Some(unions) = d.unions.and_then(|u| serde_json::from_str::<Value>(u).ok()) {
        obj.insert("x-kubernetes-unions".into(), unions);
    }
}

/// The field facts of one definition: a contiguous run of the sorted table.
pub(crate) fn field_facts(def: &str) -> &'static [F] {
    let start = facts::FIELDS.partition_point(|f| f.def < def);
    let len = facts::FIELDS[start..].partition_point(|f| f.def == def);
    &facts::FIELDS[start..start + len]
}

fn apply_field_facts(name: &str, obj: &mut Map<String, Value>) {
    let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for f in field_facts(name) {
        let Some(prop) = props.get_mut(f.field).and_then(Value::as_object_mut) else {
            continue;
        };
        let mut put = |key: &str, v: Option<&str>| {
            if let Some(v) = v {
                prop.insert(key.into(), v.into());
            }
        };
        put("x-kubernetes-patch-strategy", f.strategy);
        put("x-kubernetes-patch-merge-key", f.merge_key);
        put("x-kubernetes-list-type", f.list_type);
        put("x-kubernetes-map-type", f.map_type);
        if !f.map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(f.map_keys));
        }
        if let (Some(lt), Some(items)) = (
            f.items_list_type,
            prop.get_mut("items").and_then(Value::as_object_mut),
        ) {
            items.insert("x-kubernetes-list-type".into(), lt.into());
        }
    }
}

/// Gives the special scalar types upstream's OpenAPI v3 shapes.
fn fix_scalar(name: &str, obj: &mut Map<String, Value>) {
    match name {
        // Upstream v3: `format: int-or-string` with a oneOf; no `type`, so
        // kubectl explain prints `<IntOrString>`. We keep k8s-openapi's
        // `x-kubernetes-int-or-string`, which is what CRD schemas use.
        INT_OR_STRING => {
            obj.insert("format".into(), "int-or-string".into());
            obj.insert(
                "oneOf".into(),
                json!([{ "type": "integer" }, { "type": "string" }]),
            );
            obj.insert("x-kubernetes-int-or-string".into(), true.into());
        }
        // A quantity may be a JSON number such as 0.5, so it is not
        // int-or-string (which k8s-openapi claims); upstream v3 says
        // string-or-number.
        QUANTITY => {
            obj.remove("x-kubernetes-int-or-string");
            obj.insert(
                "oneOf".into(),
                json!([{ "type": "string" }, { "type": "number" }]),
            );
        }
        _ if FREE_OBJECTS.contains(&name) => {
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        _ if ANY_JSON.contains(&name) => {
            obj.remove("type");
            obj.remove("oneOf");
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted<T>(items: &[T], key: impl Fn(&T) -> (&str, &str)) -> bool {
        items.windows(2).all(|w| key(&w[0]) < key(&w[1]))
    }

    #[test]
    fn fact_tables_are_sorted_for_binary_search() {
        assert!(sorted(facts::FIELDS, |f| (f.def, f.field)));
        assert!(sorted(facts::DEFS, |d| (d.def, "")));
        assert!(sorted(facts::REQUIRED, |r| (r.0, "")));
    }

    #[test]
    fn every_fact_names_a_generated_property() {
        let raw = crate::builtin::all_definitions();
        for f in facts::FIELDS {
            let has = raw
                .get(f.def)
                .and_then(|d| d.pointer(&format!("/properties/{}", f.field)));
            assert!(has.is_some(), "{}.{} is not generated", f.def, f.field);
        }
        for d in facts::DEFS {
            assert!(raw.contains_key(d.def), "{} is not generated", d.def);
        }
        for u in facts::DEFS.iter().filter_map(|d| d.unions) {
            assert!(serde_json::from_str::<Value>(u).is_ok(), "{u}");
        }
    }
}
