//! The runtime's error type.

use std::path::PathBuf;

/// Everything the runtime can fail with. Messages are meant for a human
/// reading `kubectl describe`, so they name the path or id involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    #[error("no such container: {0}")]
    NoContainer(String),
    #[error("no such pod sandbox: {0}")]
    NoSandbox(String),
    #[error("container {id} is {state}, not {wanted}")]
    BadState {
        id: String,
        state: String,
        wanted: &'static str,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("cgroup {path}: {message}")]
    Cgroup { path: PathBuf, message: String },
    /// An error reported by the container's init (the helper process),
    /// e.g. `exec: "nope": executable file not found in $PATH`.
    #[error("container init: {0}")]
    Init(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a human context to I/O and syscall errors.
pub trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: context(),
            source,
        })
    }
}
