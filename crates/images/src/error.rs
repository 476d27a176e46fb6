use std::path::PathBuf;

use crate::Digest;

/// Every failure of the image store, with the path, digest or input it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex>")]
    InvalidDigest(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: &'static str },
    #[error("image not found: {0}")]
    ImageNotFound(String),
    #[error("blob not found: {0}")]
    BlobNotFound(Digest),
    #[error("malformed {what} {digest}: {source}")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("no manifest for platform {0} in index")]
    NoPlatform(String),
    #[error("layer {layer}: refused entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: Digest,
        entry: String,
        reason: &'static str,
    },
    #[error("layer {layer}: {source}")]
    Layer {
        layer: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("image {image} has {layers} layers but {diff_ids} diff ids")]
    LayerCount {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("{method} {url}: {status}: {message}")]
    Registry {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("archive: {0}")]
    Archive(String),
    #[error("mount overlay at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`; used at every filesystem call.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
