//! The built-in kinds: every k8s-openapi type that implements `Resource`,
//! with its schema, as `skiff-openapi-builtin` generated them at build time
//! (see `build.rs`). The API server decides which of these it serves; this
//! table only lets a GVK be turned into a schema.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// Where a built-in kind's objects live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub(crate) enum Scope {
    Namespaced,
    Cluster,
    /// Only a request/response body of some other resource's subresource
    /// (`Scale`, `Eviction`, `TokenRequest`, `Status`).
    Sub,
}

/// One built-in kind.
#[derive(Debug, Deserialize)]
pub(crate) struct Builtin {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// URL segment: the plural for resources, the subresource name otherwise.
    pub plural: String,
    pub scope: Scope,
    /// The `<Kind>List` kind, for kinds that can be listed.
    pub list_kind: Option<String>,
    /// The upstream definition name, e.g. `io.k8s.api.core.v1.Pod`.
    pub name: String,
}

/// What the build script generated.
#[derive(Deserialize)]
pub(crate) struct Generated {
    /// All built-in kinds, listable resources first.
    pub kinds: Vec<Builtin>,
    /// Definition names every group-version document carries (see
    /// `skiff_openapi_builtin::META_ROOTS`).
    pub meta: Vec<String>,
    /// Every kind's and meta root's schema and all they reference, before
    /// upstream fixups.
    pub definitions: Map<String, Value>,
}

/// Parsed on first use (the first OpenAPI request or validated write), in
/// a few milliseconds; until then the embedded JSON is only bytes in the
/// binary's read-only data.
pub(crate) static GENERATED: LazyLock<Generated> = LazyLock::new(|| {
    // The build script wrote this from `skiff_openapi_builtin::export()`;
    // a parse failure is a build defect, caught by this crate's tests.
    serde_json::from_str(include_str!(concat!(env!("OUT_DIR"), "/builtin.json")))
        .expect("build.rs wrote valid built-in schemas")
});

/// All built-in kinds, listable resources first.
pub(crate) fn all() -> &'static [Builtin] {
    &GENERATED.kinds
}

/// Finds a built-in kind by group, version and kind.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<&'static Builtin> {
    all()
        .iter()
        .find(|b| b.group == group && b.version == version && b.kind == kind)
}
