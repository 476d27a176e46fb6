//! The Kubernetes API as data: the kinds Skiff serves, selectors, object
//! metadata helpers, defaulting and validation, and the Table printers.
//!
//! Architecture invariant: no I/O, no async runtime, no HTTP and no store.
//! Objects are `serde_json::Value`s, so built-in and custom kinds go through
//! the same code.

pub mod defaults;
pub mod kinds;
pub mod quantity;
pub mod selector;
pub mod table;
pub mod validation;
