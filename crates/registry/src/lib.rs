//! An OCI distribution-spec registry server.
//!
//! Blobs live in the same content-addressed layout as the local image
//! store (`<data-dir>/images/blobs/sha256/`), so a registry embedded in
//! `skiff server` shares them with the node's images. Repositories are
//! directories of links under `<data-dir>/registry/repos/<name>/`:
//! `manifests/<hex>` (holding the manifest's media type) says the manifest
//! belongs to the repository, `tags/<tag>` holds a digest. Blobs are global:
//! any repository can read a blob that is present, which makes
//! cross-repository mount a presence check.
//!
//! Uploads stream to a temp file while being hashed, so finishing an
//! upload costs a rename, not a second read.

pub mod build;
mod error;
mod routes;
mod server;
mod uploads;

pub use error::{Code, RegistryError};
pub use server::{Registry, serve, serve_tls};
