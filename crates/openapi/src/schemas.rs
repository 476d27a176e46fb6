//! Schemas kept in memory for walking: field validation, strategic merge
//! patch and server-side apply follow `$ref`s through these.

use serde_json::{Map, Value};

use crate::components::{self, REF_PREFIX};
use crate::kinds::{GroupVersion, KindInfo};

/// A set of definitions (a `components.schemas` map) without descriptions.
///
/// Descriptions are most of a schema's size and no code path needs them, so
/// dropping them keeps the resident copy small; everything else (types,
/// `required`, `x-kubernetes-*` extensions, `$ref`s) is kept as served.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schemas {
    defs: Map<String, Value>,
}

impl Schemas {
    /// The definitions of group-version `gv`'s kinds (see
    /// [`crate::group_version_document`]), without descriptions.
    pub fn for_group_version(gv: &GroupVersion, kinds: &[KindInfo]) -> Self {
        let mut kinds: Vec<&KindInfo> = kinds
            .iter()
            .filter(|k| k.group == gv.group && k.version == gv.version)
            .collect();
        kinds.sort_by(|a, b| a.kind.cmp(&b.kind));
        Self::from_definitions(components::build(gv, &kinds))
    }

    /// Wraps a `components.schemas` map, dropping descriptions.
    pub fn from_definitions(mut defs: Map<String, Value>) -> Self {
        defs.values_mut().for_each(strip_descriptions);
        Self { defs }
    }

    /// A definition by name, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.defs.get(name)
    }

    /// A definition by reference, `#/components/schemas/<name>`.
    pub fn by_ref(&self, reference: &str) -> Option<&Value> {
        self.defs.get(reference.strip_prefix(REF_PREFIX)?)
    }

    /// All definitions.
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.defs
    }

    /// Follows `schema` while it is a reference, either `{"$ref": ...}` or
    /// upstream's `{"allOf": [{"$ref": ...}], ...}` wrapper, and returns the
    /// referenced definition (or `schema` itself if it is not a reference, or
    /// the reference is dangling).
    ///
    /// Extensions on the wrapper, such as `x-kubernetes-map-type` on a
    /// struct-typed field, belong to the field: read them before resolving.
    pub fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        // Definitions may refer to each other in cycles, but a reference to
        // a reference is never more than a few steps; bound it anyway.
        for _ in 0..8 {
            match ref_target(schema).and_then(|name| self.defs.get(name)) {
                Some(next) => schema = next,
                None => break,
            }
        }
        schema
    }
}

/// The definition name a schema refers to, if it is a reference.
pub(crate) fn ref_target(schema: &Value) -> Option<&str> {
    let r = match schema.get("$ref") {
        Some(r) => r,
        None => match schema.get("allOf")?.as_array()?.as_slice() {
            [only] => only.get("$ref")?,
            _ => return None,
        },
    };
    r.as_str()?.strip_prefix(REF_PREFIX)
}

/// Removes `description` from a schema and its subschemas. Walks schema
/// keywords only, so a property *named* `description` survives.
fn strip_descriptions(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.remove("description");
    for (key, sub) in obj.iter_mut() {
        match key.as_str() {
            "properties" => sub
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
                .for_each(strip_descriptions),
            "items" | "additionalProperties" | "not" => strip_descriptions(sub),
            "allOf" | "anyOf" | "oneOf" => sub
                .as_array_mut()
                .into_iter()
                .flatten()
                .for_each(strip_descriptions),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strips_descriptions_but_not_properties_named_description() {
        let s = Schemas::from_definitions(
            json!({ "a": {
                "description": "x",
                "properties": {
                    "description": { "type": "string", "description": "y" },
                    "b": { "allOf": [{ "$ref": "#/components/schemas/a" }], "description": "z" },
                },
            }})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
        let a = s.get("a").cloned().unwrap_or_default();
        assert_eq!(
            a,
            json!({ "properties": {
                "description": { "type": "string" },
                "b": { "allOf": [{ "$ref": "#/components/schemas/a" }] },
            }})
        );
        assert_eq!(s.resolve(&a["properties"]["b"]), &a);
        assert_eq!(s.by_ref("#/components/schemas/a"), Some(&a));
        assert_eq!(s.by_ref("a"), None);
        assert_eq!(
            s.resolve(&json!({ "$ref": "#/components/schemas/missing" })),
            &json!({ "$ref": "#/components/schemas/missing" })
        );
    }
}
