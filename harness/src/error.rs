//! The library's top-level error.

/// Everything that can stop a run, typed so callers can react; rendered for people by the CLI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
