//! What the API server tells this crate about the kinds it serves.
//!
//! The server owns the kind table (plural, scope, subresources, verbs); this
//! crate only turns it into OpenAPI. A kind either names a built-in type, whose
//! schema comes from k8s-openapi, or carries its own OpenAPI v3 schema (a
//! CustomResourceDefinition version's `openAPIV3Schema`).

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// An API group and version, e.g. `("", "v1")` or `("apps", "v1")`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupVersion {
    /// The group; empty for the legacy core group.
    pub group: String,
    /// The version, e.g. `v1`.
    pub version: String,
}

impl GroupVersion {
    /// Builds a group/version from its parts.
    pub fn new(group: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
        }
    }

    /// The URL prefix without a leading slash, as used in the OpenAPI v3 root
    /// index: `api/v1` for the core group, `apis/<group>/<version>` otherwise.
    pub fn path(&self) -> String {
        if self.group.is_empty() {
            format!("api/{}", self.version)
        } else {
            format!("apis/{}/{}", self.group, self.version)
        }
    }

    /// Parses the form produced by [`GroupVersion::path`]; `None` for anything else.
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_matches('/');
        let mut parts = path.split('/');
        let gv = match (parts.next()?, parts.next()?, parts.next()) {
            ("api", version, None) => Self::new("", version),
            ("apis", group, Some(version)) => Self::new(group, version),
            _ => return None,
        };
        let valid = |s: &str| !s.is_empty() && !s.contains(['?', '#']);
        (parts.next().is_none() && valid(&gv.version) && (gv.group.is_empty() || valid(&gv.group)))
            .then_some(gv)
    }

    /// The `apiVersion` string: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl fmt::Display for GroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.api_version())
    }
}

/// A group, version and kind, as in `x-kubernetes-group-version-kind`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gvk {
    /// The group; empty for the core group.
    pub group: String,
    /// The version.
    pub version: String,
    /// The kind, e.g. `Pod`.
    pub kind: String,
}

impl Gvk {
    /// Builds a GVK from its parts.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// The GVK as the JSON object OpenAPI extensions use.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "group": self.group, "kind": self.kind, "version": self.version })
    }
}

/// A REST verb a kind supports; operations are documented only for these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    /// `GET` on an item.
    Get,
    /// `GET` on a collection.
    List,
    /// `GET ...?watch=true` on a collection; documented on the list operation.
    Watch,
    /// `POST` on a collection.
    Create,
    /// `PUT` on an item.
    Update,
    /// `PATCH` on an item.
    Patch,
    /// `DELETE` on an item.
    Delete,
    /// `DELETE` on a collection.
    DeleteCollection,
}

impl Verb {
    /// Every verb: what ordinary stored kinds support.
    pub const ALL: &'static [Verb] = &[
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::Patch,
        Verb::Delete,
        Verb::DeleteCollection,
    ];
}

/// A subresource whose operations appear in the group-version document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subresource {
    /// `<item>/status`: get, replace and patch the parent kind.
    Status,
    /// `<item>/scale`: get, replace and patch an `autoscaling/v1` `Scale`.
    Scale,
    /// A create-only subresource such as `pods/binding`, `pods/eviction` or
    /// `serviceaccounts/token`: `POST <item>/<name>` with a body of kind `body`.
    Create {
        /// The path segment after the item name.
        name: String,
        /// The kind of the request and response body.
        body: Gvk,
    },
}

/// One kind served by the API server.
#[derive(Clone, Debug, PartialEq)]
pub struct KindInfo {
    /// The group; empty for the core group.
    pub group: String,
    /// The version.
    pub version: String,
    /// The kind, e.g. `Pod`.
    pub kind: String,
    /// The resource name in URLs, e.g. `pods`.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Subresources to document.
    pub subresources: Vec<Subresource>,
    /// Verbs to document; ordinary kinds support [`Verb::ALL`].
    pub verbs: Vec<Verb>,
    /// `None` for built-in kinds (the schema comes from k8s-openapi); for a
    /// custom resource, its version's `openAPIV3Schema`.
    pub schema: Option<Arc<Value>>,
}

impl KindInfo {
    /// A built-in kind supporting every verb, with no subresources.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
        plural: impl Into<String>,
        namespaced: bool,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            subresources: Vec::new(),
            verbs: Verb::ALL.to_vec(),
            schema: None,
        }
    }

    /// Adds the `status` subresource.
    pub fn with_status(mut self) -> Self {
        self.subresources.push(Subresource::Status);
        self
    }

    /// Adds the `scale` subresource.
    pub fn with_scale(mut self) -> Self {
        self.subresources.push(Subresource::Scale);
        self
    }

    /// Replaces the documented verbs.
    pub fn with_verbs(mut self, verbs: &[Verb]) -> Self {
        self.verbs = verbs.to_vec();
        self
    }

    /// Makes this a custom kind described by `schema` (an `openAPIV3Schema`).
    pub fn with_schema(mut self, schema: Value) -> Self {
        self.schema = Some(Arc::new(schema));
        self
    }

    /// The kind's group and version.
    pub fn group_version(&self) -> GroupVersion {
        GroupVersion::new(self.group.clone(), self.version.clone())
    }

    /// The kind's GVK.
    pub fn gvk(&self) -> Gvk {
        Gvk::new(self.group.clone(), self.version.clone(), self.kind.clone())
    }

    /// Whether the kind documents `verb`.
    pub fn has_verb(&self, verb: Verb) -> bool {
        self.verbs.contains(&verb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_version_paths_round_trip() {
        for (g, v, p) in [("", "v1", "api/v1"), ("apps", "v1", "apis/apps/v1")] {
            let gv = GroupVersion::new(g, v);
            assert_eq!(gv.path(), p);
            assert_eq!(GroupVersion::from_path(p), Some(gv.clone()));
            assert_eq!(GroupVersion::from_path(&format!("/{p}")), Some(gv));
        }
        for bad in [
            "",
            "api",
            "apis/apps",
            "api/v1/x",
            "apis/a/b/c",
            "foo/v1",
            "api/",
        ] {
            assert_eq!(GroupVersion::from_path(bad), None, "{bad}");
        }
    }
}
