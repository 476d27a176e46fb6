//! Skiff API
