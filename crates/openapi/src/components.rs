//! `components.schemas` for the kinds of one group-version.

use serde_json::{Map, Value, json};

use crate::builtin::{self, Builtin};
use crate::fixups;
use crate::generate;
use crate::kinds::{GroupVersion, Gvk, KindInfo, Subresource, Verb};

/// Prefix of every `$ref` in our documents.
pub const REF_PREFIX: &str = "#/components/schemas/";

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
/// Meta kinds upstream marks with a GVK in every group-version.
const PER_GV_META: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
];

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The definition name of a kind's schema: upstream's name for built-in
/// kinds (`io.k8s.api.core.v1.Pod`), and for others the name upstream gives
/// custom resources: the group reversed, then version and kind
/// (`com.example.stable.v1.CronTab` for `stable.example.com/v1`).
pub fn definition_name(kind: &KindInfo) -> String {
    match builtin_of(kind) {
        Some(b) => b.name.to_string(),
        None => custom_definition_name(&kind.group, &kind.version, &kind.kind),
    }
}

/// The definition name upstream gives a custom resource's schema.
pub fn custom_definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut name: Vec<&str> = group.split('.').filter(|s| !s.is_empty()).rev().collect();
    name.extend([version, kind]);
    name.join(".")
}

/// The definition name of a built-in kind named by GVK, such as the
/// `policy/v1` `Eviction` body of `pods/eviction`.
pub(crate) fn builtin_definition(gvk: &Gvk) -> Option<String> {
    builtin::find(&gvk.group, &gvk.version, &gvk.kind).map(|b| b.name.to_string())
}

/// The definition name of a kind's list: `<definition>List`.
pub(crate) fn list_definition_name(kind: &KindInfo) -> String {
    format!("{}List", definition_name(kind))
}

/// The built-in type behind a kind, unless the kind carries its own schema.
pub(crate) fn builtin_of(kind: &KindInfo) -> Option<&'static Builtin> {
    match kind.schema {
        Some(_) => None,
        None => builtin::find(&kind.group, &kind.version, &kind.kind),
    }
}

/// Builds the definitions for `kinds` (all of group-version `gv`): each
/// kind's schema and list schema, everything they reference, and the meta
/// definitions operations use.
pub(crate) fn build(gv: &GroupVersion, kinds: &[&KindInfo]) -> Map<String, Value> {
    let mut roots: Vec<&Builtin> = kinds.iter().filter_map(|k| builtin_of(k)).collect();
    for sub in kinds.iter().flat_map(|k| &k.subresources) {
        let body = match sub {
            Subresource::Status => None,
            Subresource::Scale => builtin::find("autoscaling", "v1", "Scale"),
            Subresource::Create { body, .. } => {
                builtin::find(&body.group, &body.version, &body.kind)
            }
        };
        roots.extend(body);
    }
    let mut defs = generate::definitions(roots, true);
    fixups::apply(&mut defs);
    add_per_gv_meta_gvks(&mut defs, gv);
    for kind in kinds {
        let name = definition_name(kind);
        if builtin_of(kind).is_none() {
            defs.insert(name.clone(), custom_schema(kind));
        }
        if kind.has_verb(Verb::List) {
            defs.insert(list_definition_name(kind), list_schema(kind, &name));
        }
    }
    defs
}

/// Upstream marks DeleteOptions and WatchEvent with one GVK per served
/// group-version; a per-group-version document names its own and core v1.
fn add_per_gv_meta_gvks(defs: &mut Map<String, Value>, gv: &GroupVersion) {
    let mut gvks = vec![json!({ "group": "", "kind": "", "version": "v1" })];
    if !(gv.group.is_empty() && gv.version == "v1") {
        gvks.push(json!({ "group": gv.group, "kind": "", "version": gv.version }));
    }
    for name in PER_GV_META {
        let Some(obj) = defs.get_mut(*name).and_then(Value::as_object_mut) else {
            continue;
        };
        let kind = name.rsplit('.').next().unwrap_or_default();
        let list = gvks.iter().cloned().map(|mut g| {
            g["kind"] = kind.into();
            g
        });
        obj.insert(
            "x-kubernetes-group-version-kind".into(),
            Value::Array(list.collect()),
        );
    }
}

/// A custom kind's schema as upstream publishes it: the `openAPIV3Schema`
/// with `apiVersion`, `kind` and `metadata` (a reference to ObjectMeta)
/// filled in, and the GVK. A kind with neither a built-in type nor a schema
/// gets an object that accepts anything, so it can still be documented.
fn custom_schema(kind: &KindInfo) -> Value {
    let mut schema = match kind.schema.as_deref() {
        Some(Value::Object(s)) => s.clone(),
        _ => Map::from_iter([(
            "x-kubernetes-preserve-unknown-fields".to_owned(),
            Value::Bool(true),
        )]),
    };
    schema.insert("type".into(), "object".into());
    let props = schema.entry("properties").or_insert_with(|| json!({}));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "apiVersion".into(),
            json!({ "description": API_VERSION_DOC, "type": "string" }),
        );
        props.insert(
            "kind".into(),
            json!({ "description": KIND_DOC, "type": "string" }),
        );
        props.insert(
            "metadata".into(),
            json!({
                "allOf": [{ "$ref": format!("{REF_PREFIX}{OBJECT_META}") }],
                "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            }),
        );
    }
    schema.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([kind.gvk().to_json()]),
    );
    Value::Object(schema)
}

/// A `<Kind>List` schema shaped like upstream's.
fn list_schema(kind: &KindInfo, item_definition: &str) -> Value {
    let list_kind = builtin_of(kind)
        .and_then(|b| b.list_kind)
        .map_or_else(|| format!("{}List", kind.kind), str::to_owned);
    json!({
        "description": format!("{list_kind} is a list of {}.", kind.kind),
        "properties": {
            "apiVersion": { "description": API_VERSION_DOC, "type": "string" },
            "items": {
                "description": format!("List of {}.", kind.plural),
                "items": { "$ref": format!("{REF_PREFIX}{item_definition}") },
                "type": "array",
            },
            "kind": { "description": KIND_DOC, "type": "string" },
            "metadata": {
                "allOf": [{ "$ref": format!("{REF_PREFIX}{LIST_META}") }],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [
            { "group": kind.group, "kind": list_kind, "version": kind.version }
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_names_reverse_the_group() {
        assert_eq!(
            custom_definition_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
        assert_eq!(custom_definition_name("", "v1", "Thing"), "v1.Thing");
    }
}
