//! OpenAPI v3 for Skiff's kinds, as kubectl and other clients expect it.
//!
//! kubectl refuses `create -f` and `apply -f` unless the server serves
//! `/openapi/v3`, reads each group-version's PATCH operations to learn that
//! the server validates fields itself, computes client-side apply patches
//! from the schemas' `x-kubernetes-patch-*` extensions, and `explain`s
//! resources from `components.schemas`. The server itself uses the same
//! schemas for strict field validation, strategic merge patch and
//! server-side apply.
//!
//! Schemas are generated from the k8s-openapi types we depend on (through
//! schemars, at build time: see `build.rs` and `skiff-openapi-builtin`), then given what upstream publishes and k8s-openapi lacks: the
//! `x-kubernetes-*` extensions, `required` lists and scalar shapes from a
//! checked-in table of facts derived from the upstream spec
//! (`tools/derive_facts.py`), and GVKs from k8s-openapi's `Resource` impls.
//! Custom resources carry their own schema ([`KindInfo::schema`]).
//!
//! The API server holds one [`OpenApi`], which builds documents lazily and
//! keeps them serialized. The free functions build uncached values.
//!
//! ```
//! use serde_json::json;
//! use skiff_openapi::{GroupVersion, Gvk, KindInfo, OpenApi, duplicate_fields, unknown_fields};
//!
//! let api = OpenApi::new([
//!     KindInfo::new("", "v1", "Pod", "pods", true).with_status(),
//!     KindInfo::new("apps", "v1", "Deployment", "deployments", true).with_status().with_scale(),
//! ]);
//! // GET /openapi/v3 and GET /openapi/v3/api/v1?hash=...
//! let index = api.root_index();
//! let core = api.document_by_path("api/v1").expect("core/v1 is described");
//! assert!(index.len() < core.len());
//!
//! // fieldValidation=Strict on a create.
//! let body = br#"{"metadata": {"name": "p", "name": "q"}, "spec": {"containerz": []}}"#;
//! assert_eq!(duplicate_fields(body), ["metadata.name"]);
//! let (root, schemas) = api.schema_for(&Gvk::new("", "v1", "Pod")).expect("Pod is described");
//! let pod: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
//! assert_eq!(unknown_fields(&schemas, &root, &pod), ["spec.containerz"]);
//! ```

mod builtin;
mod catalog;
mod components;
mod document;
mod duplicate;
mod facts;
mod fixups;
mod generate;
mod kinds;
mod params;
mod paths;
mod schemas;
mod unknown;
mod v2;

#[cfg(test)]
mod tests;

pub use catalog::OpenApi;
pub use components::{REF_PREFIX, custom_definition_name, definition_name};
pub use document::{group_version_document, root_index};
pub use duplicate::duplicate_fields;
pub use kinds::{GroupVersion, Gvk, KindInfo, Subresource, Verb};
pub use schemas::Schemas;
pub use unknown::unknown_fields;
pub use v2::document_protobuf as swagger_v2_protobuf;

/// Every built-in kind k8s-openapi has a type for that is stored and served
/// as a resource, with its plural and scope and every verb, but no
/// subresources (the API server's own table says which it serves).
///
/// Useful as a default kind table and in tests; the API server passes its
/// own table to [`OpenApi::new`].
pub fn builtin_kinds() -> Vec<KindInfo> {
    builtin::BUILTINS
        .iter()
        .filter(|b| b.list_kind.is_some() && b.scope != builtin::Scope::Sub)
        .map(|b| {
            KindInfo::new(
                b.group,
                b.version,
                b.kind,
                b.plural,
                b.scope == builtin::Scope::Namespaced,
            )
        })
        .collect()
}

#[doc(hidden)]
pub mod __dev {
    //! For `examples/dump.rs` and `tools/`; not API.

    /// k8s-openapi's schemas for every built-in kind, before fixups.
    pub fn raw_definitions() -> serde_json::Value {
        serde_json::Value::Object(crate::builtin::all_definitions())
    }
}
