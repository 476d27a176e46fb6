//! Skiff API
pub mod table;
