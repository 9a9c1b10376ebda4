//! The crate's error type: what a client of the admin endpoint gets back.

/// What can go wrong asking a node's admin endpoint.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node cannot be reached, or the credentials are unusable.
    #[error("cannot reach the node")]
    Connect(#[source] courier_remote::Error),
    /// The address is not `courier://node@host:port`.
    #[error("bad node address {address:?}: {reason}")]
    Address {
        /// What was given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The caller's certificate was not accepted.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// The caller may read but not repair.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// No such sender, delivery or journal.
    #[error("not found: {0}")]
    NotFound(String),
    /// A bad argument (an id of 0, too many ids, an empty name).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node cannot do it now (the sender does not run there, the
    /// service has no store to verify).
    #[error("refused: {0}")]
    Refused(String),
    /// Any other failure the node reported.
    #[error("the node failed: {0}")]
    Node(String),
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            tonic::Code::Unauthenticated => Self::Unauthenticated(message),
            tonic::Code::PermissionDenied => Self::NotAllowed(message),
            tonic::Code::NotFound => Self::NotFound(message),
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Self::BadRequest(message),
            tonic::Code::FailedPrecondition => Self::Refused(message),
            code => Self::Node(format!("{code:?}: {message}")),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
