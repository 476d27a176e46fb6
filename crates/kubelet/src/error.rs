//! The agent's errors.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("api: {0}")]
    Kube(#[from] kube::Error),
    #[error("runtime: {0}")]
    Runtime(#[from] skiff_runtime::Error),
    #[error("images: {0}")]
    Images(#[from] skiff_images::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
