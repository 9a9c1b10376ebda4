//! Errors of the persistence layer.

use crate::record::SeqNr;

/// The result type of the persistence layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when storing or reading journals, snapshots and records.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stored record failed its checksum: the bytes on disk are not what
    /// was written.
    #[error("corrupt record for {persistence_id} at sequence number {seq_nr}: {reason}")]
    Corrupt {
        /// The journal or snapshot owner (or the key space, for other records).
        persistence_id: String,
        /// The sequence number (0 where the record has none).
        seq_nr: SeqNr,
        /// What is wrong.
        reason: String,
    },
    /// A record's checksum is fine but its contents do not decode.
    #[error("cannot decode record for {persistence_id} at sequence number {seq_nr}")]
    Decode {
        /// The journal or snapshot owner.
        persistence_id: String,
        /// The sequence number.
        seq_nr: SeqNr,
        /// The decoder's complaint.
        #[source]
        source: courier_codec::Error,
    },
    /// A payload could not be encoded.
    #[error("cannot encode {what}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's complaint (unserializable, or larger than
        /// [`MAX_RECORD_SIZE`](crate::MAX_RECORD_SIZE)).
        #[source]
        source: courier_codec::Error,
    },
    /// Replay found a hole in the sequence: an event is missing.
    #[error("sequence gap in {persistence_id}: expected {expected}, found {found}")]
    SequenceGap {
        /// The journal.
        persistence_id: String,
        /// The sequence number that should have come next.
        expected: SeqNr,
        /// The one that came (or the journal's highest + 1 if replay ended early).
        found: SeqNr,
    },
    /// A write did not continue the journal: another writer got there first,
    /// or the writer's idea of the sequence is stale.
    #[error("write to {persistence_id} must start at {expected}, not {got}")]
    SequenceConflict {
        /// The journal.
        persistence_id: String,
        /// The journal's highest sequence number + 1.
        expected: SeqNr,
        /// Where the write started.
        got: SeqNr,
    },
    /// The input itself is invalid (empty id, non-contiguous events, …).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// An earlier write or flush failed; the store refuses further writes
    /// until it is reopened, because it can no longer tell what is durable.
    #[error("the store is poisoned by an earlier failure: {reason}")]
    Poisoned {
        /// The failure that poisoned it.
        reason: String,
    },
    /// The storage engine failed.
    #[error("storage engine error")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store's writer task is gone (the runtime is shutting down).
    #[error("the store is closed")]
    Closed,
    /// An event or snapshot payload could not be turned into the actor's types.
    #[error("cannot read {what} for {persistence_id} at sequence number {seq_nr}")]
    Payload {
        /// "event" or "snapshot".
        what: &'static str,
        /// The journal.
        persistence_id: String,
        /// The sequence number.
        seq_nr: SeqNr,
        /// Why.
        #[source]
        source: courier_core::BoxError,
    },
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Self::Storage(Box::new(e))
    }
}
