//! The crate's error type.

/// What can go wrong starting or running a node.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings are invalid; the message names the setting.
    #[error("invalid remote settings: {0}")]
    Settings(String),
    /// A socket could not be bound or read.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
