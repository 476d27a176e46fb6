//! Kubernetes patch semantics on `serde_json::Value`s.
//!
//! The API server calls this crate for every `PATCH` and, through
//! [`apply::update_managed_fields`], for every write, so that
//! `metadata.managedFields` tracks who set what. Everything here is a pure
//! function of its inputs: no I/O, no clock (times are passed in), no global
//! state.

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
    ApplyError, ManagerOptions, apply, apply_with, update_managed_fields,
    update_managed_fields_with,
};
pub use entry::{
    PatchOptions, PatchType, apply_patch, parse_apply_body, parse_json_body, patch_object,
};
pub use error::{PatchError, StrategicMergeError};
pub use json::{MAX_JSON_PATCH_OPERATIONS, json_patch};
pub use merge::merge_patch;
pub use schema::{SchemaNode, SchemaResolver};
pub use strategic::{strategic_merge, strategic_merge_in_place};
