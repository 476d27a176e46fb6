//! Kubernetes patch semantics on `serde_json::Value`s.
//!
//! The API server calls this crate for every `PATCH` and, through
//! [`update_managed_fields`], for every write, so that
//! `metadata.managedFields` tracks who set what. Everything here is a pure
//! function of its inputs: no I/O, no clock (times are passed in), no global
//! state, no panics on any input.
//!
//! # How the server uses it
//!
//! * `PATCH`: [`PatchType::from_content_type`] on the `Content-Type`, then
//!   [`patch_object`] with the live object, the body, the kind's
//!   [`SchemaNode`] and the request's `fieldManager`/`force`; it returns the
//!   new object with managedFields updated, or a [`PatchError`] whose
//!   [`PatchError::status_code`] is upstream's. (Or, step by step:
//!   [`apply_patch`] for JSON / merge / strategic merge, [`apply_with`] for
//!   server-side apply, then [`update_managed_fields_with`].)
//! * `POST` and `PUT`: [`update_managed_fields`] with the old object (`None`
//!   on create) and the new one.
//! * Before storing: [`restore_unchanged_timestamps`] so that a repeated
//!   apply that changes nothing is not a write.
//!
//! Schemas are upstream-style OpenAPI v3 JSON: see [`schema`]. Strategic
//! merge reads `x-kubernetes-patch-strategy` / `-merge-key`; server-side
//! apply reads `x-kubernetes-list-type` / `-list-map-keys` / `-map-type`
//! (falling back to the patch strategy, like upstream's converter).

pub mod apply;
mod entry;
pub mod error;
pub mod fieldpath;
pub mod json;
pub mod merge;
pub mod schema;
pub mod strategic;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod test_schemas;

pub use apply::{
    ApplyError, ManagerOptions, apply, apply_with, restore_unchanged_timestamps,
    update_managed_fields, update_managed_fields_with,
};
pub use entry::{
    PatchOptions, PatchType, apply_patch, parse_apply_body, parse_json_body, patch_object,
};
pub use error::{PatchError, StrategicMergeError};
pub use json::{MAX_JSON_PATCH_OPERATIONS, json_patch, json_patch_in_place};
pub use merge::{merge_patch, merge_patch_in_place};
pub use schema::{SchemaNode, SchemaResolver};
pub use strategic::{strategic_merge, strategic_merge_in_place};
