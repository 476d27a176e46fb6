//! The Kubernetes API as data: the kinds Skiff serves, selectors, resource
//! quantities, per-kind defaulting and validation, and the Table printers.
//!
//! The write path of a built-in object is, as upstream's:
//! [`defaults::apply_on_create`] (or [`defaults::apply`] for updates), then
//! [`validation::validate`] (or [`validation::validate_update`]) plus the
//! metadata checks in [`validation`]; any error is a 422 `Invalid`.
//!
//! Architecture invariant: no I/O, no async runtime, no HTTP and no store.
//! Objects are `serde_json::Value`s, so built-in and custom kinds go through
//! the same code.

pub mod convert;
pub mod defaults;
pub mod image_ref;
pub mod kinds;
pub mod quantity;
pub mod selector;
pub mod structural;
pub mod table;
pub mod validation;
