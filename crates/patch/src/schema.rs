//! Read-only access to OpenAPI v3 schemas, as the patch algorithms need it.
//!
//! The API server hands us the same JSON schemas it serves under
//! `/openapi/v3` (built-in kinds) or finds in a CRD's `openAPIV3Schema`.
//! Both patch algorithms only ever ask local questions ("what is the schema
//! of field `x` here?", "what is this list's merge key?"), so a [`SchemaNode`]
//! is a cheap, copyable cursor that follows `$ref` lazily instead of a
//! pre-compiled type graph: most patches touch a handful of fields of a large
//! schema, and compiling every kind up front would cost more than it saves.
//!
//! A node may carry no schema at all ([`SchemaNode::none`]): unknown fields,
//! `x-kubernetes-preserve-unknown-fields` subtrees and kinds without a schema.
//! Such nodes make strategic merge behave like JSON merge patch and make
//! server-side apply deduce the structure from the value, which is what
//! upstream does for untyped ("deduced") fields.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;

use serde_json::{Map, Value};

/// Looks up a named schema, the target of `$ref: "#/components/schemas/<name>"`.
pub trait SchemaResolver {
    /// The schema registered under `name` (for example `io.k8s.api.core.v1.Pod`).
    fn resolve(&self, name: &str) -> Option<&Value>;
}

impl SchemaResolver for Map<String, Value> {
    fn resolve(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl<S: BuildHasher> SchemaResolver for HashMap<String, Value, S> {
    fn resolve(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// A resolver that knows no names: for self-contained schemas (CRDs).
impl SchemaResolver for () {
    fn resolve(&self, _name: &str) -> Option<&Value> {
        None
    }
}

/// How deep a chain of `$ref`/`allOf` we follow before giving up; protects
/// against cyclic references in a malformed document.
const MAX_REF_DEPTH: usize = 32;

/// The prefixes a `$ref` may carry; the v2 form appears in CRDs converted by
/// older tools.
const REF_PREFIXES: [&str; 2] = ["#/components/schemas/", "#/definitions/"];

/// A position in a schema: the schema written at the use site (a property,
/// `items`, `additionalProperties`) plus what it resolves to.
///
/// Field-level extensions such as `x-kubernetes-patch-strategy` live on the
/// use site (next to the `$ref`/`allOf`), type-level ones such as
/// `x-kubernetes-map-type: atomic` on the referenced definition, so lookups
/// consult both, use site first.
#[derive(Clone, Copy)]
pub struct SchemaNode<'a> {
    resolver: Option<&'a dyn SchemaResolver>,
    site: Option<&'a Value>,
    target: Option<&'a Value>,
    /// The last `$ref` name followed, to recognise special definitions.
    type_name: Option<&'a str>,
}

impl fmt::Debug for SchemaNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaNode")
            .field("type_name", &self.type_name)
            .field("known", &self.is_known())
            .finish()
    }
}

/// The structural shape a schema declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `type: object`, or properties / additionalProperties without a type.
    Object,
    /// `type: array`.
    Array,
    /// A string, number, integer, boolean, int-or-string or quantity.
    Scalar,
    /// No type information: the value decides.
    Untyped,
}

/// The list semantics server-side apply uses (`x-kubernetes-list-type`,
/// falling back to the patch strategy like upstream's schema converter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType<'a> {
    /// The list is one value, replaced whole.
    Atomic,
    /// A set of scalars, each item owned on its own.
    Set,
    /// A map keyed by these item fields.
    Map(Vec<&'a str>),
}

impl<'a> SchemaNode<'a> {
    /// A node for `schema`, resolving references through `resolver`.
    pub fn new(schema: &'a Value, resolver: &'a dyn SchemaResolver) -> Self {
        let mut node = SchemaNode {
            resolver: Some(resolver),
            site: Some(schema),
            target: None,
            type_name: None,
        };
        node.resolve();
        node
    }

    /// The node for the definition `name` (e.g. `io.k8s.api.apps.v1.Deployment`),
    /// or `None` if the resolver does not know it.
    pub fn named(name: &str, resolver: &'a dyn SchemaResolver) -> Option<Self> {
        let schema = resolver.resolve(name)?;
        Some(Self::new(schema, resolver))
    }

    /// A node without schema information.
    pub fn none() -> SchemaNode<'static> {
        SchemaNode {
            resolver: None,
            site: None,
            target: None,
            type_name: None,
        }
    }

    /// Whether this node carries any schema.
    pub fn is_known(&self) -> bool {
        self.target.is_some()
    }

    fn unknown(&self) -> Self {
        SchemaNode {
            resolver: self.resolver,
            site: None,
            target: None,
            type_name: None,
        }
    }

    fn child(&self, schema: Option<&'a Value>) -> Self {
        match schema {
            Some(s) if s.is_object() => {
                let mut node = SchemaNode {
                    resolver: self.resolver,
                    site: Some(s),
                    target: None,
                    type_name: None,
                };
                node.resolve();
                node
            }
            _ => self.unknown(),
        }
    }

    /// Follows `$ref` and single-element `allOf` wrappers from the use site.
    fn resolve(&mut self) {
        let mut cur = match self.site {
            Some(s) => s,
            None => return,
        };
        for _ in 0..MAX_REF_DEPTH {
            if let Some(r) = cur.get("$ref").and_then(Value::as_str) {
                let name = REF_PREFIXES
                    .iter()
                    .find_map(|p| r.strip_prefix(p))
                    .unwrap_or(r);
                match self.resolver.and_then(|res| res.resolve(name)) {
                    Some(next) => {
                        self.type_name = Some(name);
                        cur = next;
                        continue;
                    }
                    None => {
                        // A dangling reference tells us nothing about the type.
                        self.target = None;
                        return;
                    }
                }
            }
            // schemars and upstream v3 wrap a `$ref` in a one-element `allOf` so
            // that siblings (description, default, extensions) are allowed.
            if let Some(first) = cur
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                && cur.get("properties").is_none()
                && cur.get("type").is_none()
            {
                cur = first;
                continue;
            }
            self.target = Some(cur);
            return;
        }
        self.target = None;
    }

    /// The value of extension `key`, from the use site or else the definition.
    pub fn extension(&self, key: &str) -> Option<&'a Value> {
        self.site
            .and_then(|s| s.get(key))
            .or_else(|| self.target.and_then(|t| t.get(key)))
    }

    fn extension_str(&self, key: &str) -> Option<&'a str> {
        self.extension(key).and_then(Value::as_str)
    }

    /// `x-kubernetes-patch-strategy` split at commas (`merge`, `replace`,
    /// `retainKeys`, `merge,retainKeys`).
    pub fn patch_strategies(&self) -> Vec<&'a str> {
        self.extension_str("x-kubernetes-patch-strategy")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `x-kubernetes-patch-merge-key`.
    pub fn patch_merge_key(&self) -> Option<&'a str> {
        self.extension_str("x-kubernetes-patch-merge-key")
    }

    /// `x-kubernetes-map-type: atomic`.
    pub fn is_atomic_map(&self) -> bool {
        self.extension_str("x-kubernetes-map-type") == Some("atomic")
    }

    /// The list semantics for server-side apply. Without
    /// `x-kubernetes-list-type`, a `merge` patch strategy makes a map keyed by
    /// the merge key (or a set without one), anything else is atomic; that is
    /// upstream's `schemaconv` rule.
    pub fn list_type(&self) -> ListType<'a> {
        match self.extension_str("x-kubernetes-list-type") {
            Some("set") => return ListType::Set,
            Some("map") => {
                let keys: Vec<&str> = self
                    .extension("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                return if keys.is_empty() {
                    ListType::Set
                } else {
                    ListType::Map(keys)
                };
            }
            Some(_) => return ListType::Atomic,
            None => {}
        }
        if self.patch_strategies().contains(&"merge") {
            return match self.patch_merge_key() {
                Some(k) => ListType::Map(vec![k]),
                None => ListType::Set,
            };
        }
        ListType::Atomic
    }

    /// What structure the schema declares.
    pub fn shape(&self) -> Shape {
        let Some(t) = self.target else {
            return Shape::Untyped;
        };
        if self.extension("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return Shape::Scalar;
        }
        if let Some(name) = self.type_name {
            // Special definitions upstream's schema converter hard-codes.
            if name.ends_with("pkg.api.resource.Quantity") {
                return Shape::Scalar;
            }
            if name.ends_with("pkg.runtime.RawExtension") {
                return Shape::Untyped;
            }
        }
        match t.get("type") {
            Some(Value::String(s)) => match s.as_str() {
                "object" => Shape::Object,
                "array" => Shape::Array,
                "string" | "integer" | "number" | "boolean" => Shape::Scalar,
                _ => Shape::Untyped,
            },
            _ => {
                if t.get("properties").is_some() || t.get("additionalProperties").is_some() {
                    Shape::Object
                } else if t.get("items").is_some() {
                    Shape::Array
                } else {
                    Shape::Untyped
                }
            }
        }
    }

    fn properties(&self) -> Option<&'a Map<String, Value>> {
        self.target?.get("properties")?.as_object()
    }

    /// Whether `name` is a declared property (a "named field" in upstream's
    /// terms, as opposed to a key of a map).
    pub fn has_property(&self, name: &str) -> bool {
        self.properties().is_some_and(|p| p.contains_key(name))
    }

    /// Whether this object schema declares any properties (a struct rather
    /// than a map).
    pub fn has_properties(&self) -> bool {
        self.properties().is_some_and(|p| !p.is_empty())
    }

    /// The schema of field `name` of an object: its property, else the
    /// `additionalProperties` schema, else no schema.
    pub fn field(&self, name: &str) -> Self {
        if let Some(p) = self.properties().and_then(|p| p.get(name)) {
            return self.child(Some(p));
        }
        self.additional_properties()
    }

    /// The `additionalProperties` schema, if it is a schema (not a boolean).
    pub fn additional_properties(&self) -> Self {
        self.child(self.target.and_then(|t| t.get("additionalProperties")))
    }

    /// Whether the schema declares `items`.
    pub fn declares_items(&self) -> bool {
        self.target.is_some_and(|t| t.get("items").is_some())
    }

    /// The schema of an array's items.
    pub fn items(&self) -> Self {
        self.child(self.target.and_then(|t| t.get("items")))
    }

    /// The `default` declared for property `name`, used for list-map keys an
    /// item omits (upstream defaults `protocol: TCP` in port lists so).
    pub fn property_default(&self, name: &str) -> Option<&'a Value> {
        let p = self.properties()?.get(name)?;
        p.get("default")
            .or_else(|| self.child(Some(p)).target?.get("default"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Map<String, Value> {
        json!({
            "Pod": {"type": "object", "properties": {
                "spec": {"allOf": [{"$ref": "#/components/schemas/PodSpec"}], "default": {}},
            }},
            "PodSpec": {"type": "object", "properties": {
                "containers": {"type": "array",
                    "items": {"$ref": "#/components/schemas/Container"},
                    "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "name",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"]},
                "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"},
                    "x-kubernetes-map-type": "atomic"},
            }},
            "Container": {"type": "object", "properties": {"name": {"type": "string"}}},
            "Q": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"},
            "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "object"},
            "Loop": {"$ref": "#/components/schemas/Loop"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn follows_allof_ref_and_reads_site_extensions() {
        let d = defs();
        let pod = SchemaNode::named("Pod", &d).unwrap();
        let spec = pod.field("spec");
        assert_eq!(spec.shape(), Shape::Object);
        let containers = spec.field("containers");
        assert_eq!(containers.patch_strategies(), vec!["merge"]);
        assert_eq!(containers.patch_merge_key(), Some("name"));
        assert_eq!(containers.list_type(), ListType::Map(vec!["name"]));
        assert!(containers.items().has_property("name"));
        assert!(spec.field("nodeSelector").is_atomic_map());
        assert_eq!(spec.field("nodeSelector").field("x").shape(), Shape::Scalar);
        assert!(!spec.field("unknown").is_known());
    }

    #[test]
    fn special_names_and_cycles() {
        let d = defs();
        assert_eq!(SchemaNode::named("Q", &d).unwrap().shape(), Shape::Scalar);
        let looped = SchemaNode::named("Loop", &d).unwrap();
        assert!(!looped.is_known());
        assert_eq!(SchemaNode::none().shape(), Shape::Untyped);
    }
}
