//! Errors of the actor core.
//!
//! One enum for everything that can go wrong in the core, plus the two send
//! errors that hand an undelivered message back to the caller.

use std::fmt;
use std::time::Duration;

use crate::path::ActorPath;

/// A boxed error, as returned by actor handlers and resolvers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of the actor core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the actor core.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path did not parse.
    #[error("invalid actor path {path:?}: {reason}")]
    InvalidPath {
        /// The text that was given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An actor name did not validate.
    #[error("invalid actor name {name:?}: {reason}")]
    InvalidName {
        /// The name that was given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Another live actor already has this path.
    #[error("an actor at {path} already exists")]
    NameTaken {
        /// The path that is taken.
        path: ActorPath,
    },
    /// No live actor has this path.
    #[error("no actor at {path}")]
    NotFound {
        /// The path that was looked up.
        path: ActorPath,
    },
    /// The actor at this path takes a different message type.
    #[error("the actor at {path} takes {actual}, not {requested}")]
    WrongMessageType {
        /// The path that was looked up.
        path: ActorPath,
        /// The message type the actor takes.
        actual: &'static str,
        /// The message type the caller asked for.
        requested: &'static str,
    },
    /// No resolver is registered for the path's scheme.
    #[error("no resolver is registered for scheme {scheme:?} (path {path})")]
    UnknownScheme {
        /// The path that was looked up.
        path: ActorPath,
        /// Its scheme.
        scheme: String,
    },
    /// A resolver could not produce a reference.
    #[error("the resolver for {path} failed")]
    Resolver {
        /// The path that was looked up.
        path: ActorPath,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// `spawn` was called outside a tokio runtime.
    #[error("actors can only be spawned from within a tokio runtime")]
    NoRuntime,
    /// The system is shutting down and accepts no new actors.
    #[error("the actor system is shutting down")]
    ShuttingDown,
    /// A builder's [`IntoProps`](crate::IntoProps) refused to become props
    /// in this system (an event-sourced actor with no journal, say): the
    /// source says why and how to fix it. Nothing was spawned.
    #[error("the props cannot be spawned in this actor system")]
    Props {
        /// Why, as the builder reported it.
        #[source]
        source: BoxError,
    },
    /// A setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidConfig {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An ask got no reply in time.
    #[error("no reply from {path} within {timeout:?}")]
    AskTimeout {
        /// The actor that was asked.
        path: ActorPath,
        /// How long the caller waited.
        timeout: Duration,
    },
    /// The recipient had stopped before the request could be enqueued.
    #[error("the actor at {path} has stopped")]
    RecipientStopped {
        /// The actor that was asked.
        path: ActorPath,
    },
    /// The request was dropped without a reply: the recipient stopped with it
    /// still in its mailbox, or its handler dropped the reply handle.
    #[error("the actor at {path} dropped the request without replying")]
    NoReply {
        /// The actor that was asked.
        path: ActorPath,
    },
    /// A transport refused the request on its way, so no reply can come: a
    /// remote node answered that it has no such actor or cannot decode the
    /// message, or the peer was unreachable. The request is also a dead
    /// letter.
    #[error("the request to {path} was refused: {reason}")]
    Refused {
        /// The actor that was asked.
        path: ActorPath,
        /// Why, as the transport reported it (for a remote rejection, the
        /// peer's reason and detail).
        reason: String,
    },
}

/// A message that `send` could not deliver because the recipient has stopped;
/// the message is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<M>(pub M);

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the recipient has stopped")
    }
}

impl<M> std::error::Error for SendError<M> {}

/// A message that `try_tell` could not enqueue; the message is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TryTellError<M> {
    /// The recipient's bounded mailbox is full.
    Full(M),
    /// The recipient has stopped.
    Stopped(M),
}

impl<M> TryTellError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            Self::Full(m) | Self::Stopped(m) => m,
        }
    }
}

impl<M> fmt::Debug for TryTellError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Stopped(_) => f.write_str("Stopped(..)"),
        }
    }
}

impl<M> fmt::Display for TryTellError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the recipient's mailbox is full"),
            Self::Stopped(_) => f.write_str("the recipient has stopped"),
        }
    }
}

impl<M> std::error::Error for TryTellError<M> {}
