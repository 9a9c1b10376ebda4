//! The crate's error type.

/// What can go wrong starting or running a node.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid.
    #[error("invalid remote setting `{setting}`: must be {reason}")]
    Settings {
        /// The setting's name, as in the `[remote]` TOML section.
        setting: &'static str,
        /// What it must be.
        reason: String,
    },
    /// A secret, certificate or key cannot be read or used.
    #[error("remote setting `{setting}`: {reason}")]
    Credentials {
        /// The setting's name, as in the `[remote]` TOML section (`secret`,
        /// `cert`, `key` or `ca`).
        setting: &'static str,
        /// What is wrong with it (never the secret itself).
        reason: String,
    },
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
