//! The crate's error type.

use courier_core::ActorPath;

use crate::envelope::DeliveryId;

/// What can go wrong in delivery and configuration.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `max_unconfirmed` deliveries are pending: nothing was accepted.
    #[error(
        "sender {sender} has {max_unconfirmed} unconfirmed deliveries, its limit; try again later"
    )]
    OutboxFull {
        /// The sender's name.
        sender: String,
        /// The limit.
        max_unconfirmed: usize,
    },
    /// The destination is not a valid actor path.
    #[error("invalid destination {destination:?}: {reason}")]
    InvalidDestination {
        /// What was given.
        destination: String,
        /// Why it is not valid.
        reason: String,
    },
    /// A sender name that cannot name a sender.
    #[error("invalid sender name {name:?}: {reason}")]
    InvalidSenderName {
        /// What was given.
        name: String,
        /// Why it is not valid.
        reason: &'static str,
    },
    /// The sender's child actors could not be spawned (the system is
    /// shutting down, or the owner is stopping).
    #[error("cannot start sender {sender}")]
    Spawn {
        /// The sender's name.
        sender: String,
        /// Why.
        #[source]
        source: courier_core::Error,
    },
    /// The sender's or receiver's durable state could not be read or written.
    #[error("delivery store failed for {owner}")]
    Store {
        /// The sender or receiver.
        owner: String,
        /// The cause.
        #[source]
        source: courier_persistence::Error,
    },
    /// A stored delivery record could not be decoded.
    #[error("corrupt delivery record for {owner}{}: {reason}", at(.id))]
    Corrupt {
        /// The sender or receiver.
        owner: String,
        /// The record's delivery id, if it has one.
        id: Option<DeliveryId>,
        /// What is wrong.
        reason: String,
    },
    /// No parked delivery with this id.
    #[error("no parked delivery {id} at sender {sender}")]
    NotParked {
        /// The sender's name.
        sender: String,
        /// The id asked for.
        id: DeliveryId,
    },
    /// An inbox write is outstanding: ack or drop it before preparing the
    /// next.
    #[error(
        "receiver {receiver} has an inbox write outstanding: ack or drop it before the next delivery"
    )]
    InboxBusy {
        /// The receiver's name.
        receiver: String,
    },
    /// A delivery's sender remembers acks from another inbox identity: this
    /// inbox lost the history it had with that sender (deleted, restored
    /// from an older backup, rolled back), so applying the delivery could
    /// apply it twice. Nothing was applied or acked.
    #[error(
        "receiver {receiver} lost its history with sender {sender}: the sender's acks came from inbox {expected}, this inbox is {found} (deleted, restored from an older backup or rolled back); restore the inbox, or open it with DedupInbox::open_adopting to accept that some deliveries may be applied twice"
    )]
    InboxLost {
        /// The receiver's name.
        receiver: String,
        /// The sender.
        sender: crate::envelope::SenderId,
        /// The identity the sender expected.
        expected: uuid::Uuid,
        /// This inbox's identity.
        found: uuid::Uuid,
    },
    /// Another live sender in this actor system has this name: two would
    /// share one outbox and number deliveries twice.
    #[error("sender name {name:?} is taken by the sender started by {owner} in this actor system")]
    SenderNameTaken {
        /// The name.
        name: String,
        /// The actor whose sender holds it.
        owner: ActorPath,
    },
    /// A sender used before its `start` (call it in the actor's `started`
    /// hook, or in `recovery_completed` when event-sourced).
    #[error("sender {sender:?} is not started yet: call start in the actor's started hook")]
    NotStarted {
        /// The sender's name.
        sender: String,
    },
    /// The sender actor is not running (stopped, or failed to recover).
    #[error("sender {path} is not running")]
    SenderStopped {
        /// The sender's path.
        path: ActorPath,
    },
    /// No sender of this name runs in the actor system (it stopped, or
    /// never started there).
    #[error("no sender {sender} is running")]
    NotRunning {
        /// The sender's name.
        sender: String,
    },
}

fn at(id: &Option<DeliveryId>) -> String {
    id.map(|id| format!(" at {id}")).unwrap_or_default()
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A copy of a store error, for each caller of a write that several
/// callers shared: the store's own verdicts as they are, anything else as
/// its message and causes.
pub(crate) fn copy_store_error(e: &courier_persistence::Error) -> courier_persistence::Error {
    use courier_persistence::Error as E;
    match e {
        E::Poisoned { reason } => E::Poisoned {
            reason: reason.clone(),
        },
        E::Closed => E::Closed,
        e => {
            let mut out = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                out.push_str(": ");
                out.push_str(&cause.to_string());
                source = cause.source();
            }
            E::Storage(out.into())
        }
    }
}
