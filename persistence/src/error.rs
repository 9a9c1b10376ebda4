//! Errors of the persistence layer.

use std::path::PathBuf;
use std::time::Duration;

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
    /// A stored key–value record failed its checksum or does not decode.
    #[error("corrupt key-value record {namespace}/{key}: {reason}")]
    CorruptKv {
        /// Its namespace.
        namespace: String,
        /// Its key, printable (non-printable keys in hex) and cut to a
        /// bounded length.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine came back with fewer commits than the store had
    /// acknowledged: writes that were acknowledged are gone (sled, for
    /// one, silently ends its recovery at the first damaged log message;
    /// fjall truncates its journal at the first entry it cannot parse).
    #[error(
        "the commit record {path} says commit {acknowledged} was acknowledged, but the \
         storage engine came back with commit {found}: every write acknowledged after commit \
         {found} is lost; restore the store from a backup, or open it accepting the loss \
         (`SledStore::open_accepting_loss`, `FjallStore::open_accepting_loss`), which starts \
         a new store epoch"
    )]
    RolledBack {
        /// The commit record that says what was acknowledged.
        path: PathBuf,
        /// The highest commit acknowledged.
        acknowledged: u64,
        /// The highest commit the engine holds.
        found: u64,
    },
    /// The commit record outside the engine is missing (while the engine
    /// has commits) or unreadable, so the store cannot tell whether its
    /// engine lost acknowledged writes.
    #[error(
        "the commit record {path} cannot be used: {reason}; if the store's files were \
         restored or copied without it, open the store accepting possible loss \
         (`SledStore::open_accepting_loss`, `FjallStore::open_accepting_loss`), which starts \
         a new store epoch"
    )]
    CommitRecord {
        /// The record.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The storage engine reports that its own files are corrupt.
    #[error(
        "the storage engine reports corruption in {path}: {detail}; restore it from a backup, \
         or move it aside and create a new store there (nothing of the old one is kept)"
    )]
    EngineCorrupt {
        /// The engine's directory.
        path: PathBuf,
        /// The engine's description.
        detail: String,
    },
    /// [`Store::close`](crate::Store::close) could not release the engine:
    /// its files may stay locked until the process exits.
    #[error(
        "the store could not be closed within {waited:?}: {reason}; its files may stay \
         locked until this process exits: restart the process to reopen the store"
    )]
    CloseFailed {
        /// How long close waited.
        waited: Duration,
        /// What did not finish.
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
    /// A persistent actor's props name no journal (or, for a state that
    /// takes snapshots, no snapshot store) and the actor system has no
    /// default: nothing was spawned, and no store is ever picked silently.
    #[error(
        "persistence id {persistence_id:?} has no {what}: give its props one \
         (`.with_store(store)`) or set the actor system's default \
         (`Persistence::of(&system).set_store(store)`, or \
         `config.persistence.open_as_default(&system)`)"
    )]
    NoStore {
        /// `"journal"` or `"snapshot store"`.
        what: &'static str,
        /// The actor's persistence id.
        persistence_id: String,
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
    /// Bytes given to [`decode_payload`](crate::decode_payload) do not
    /// decode as the type asked for.
    #[error("cannot decode a {type_name}")]
    Undecodable {
        /// The type asked for.
        type_name: &'static str,
        /// The codec's complaint.
        #[source]
        source: courier_codec::Error,
    },
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

impl Error {
    /// Maps a sled error of the database in `path`, naming the directory
    /// when sled reports corruption.
    #[cfg(feature = "sled")]
    pub(crate) fn from_sled(path: &std::path::Path, e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { at, .. } => {
                let detail = match at {
                    Some(at) => format!("sled found a damaged record at {at}"),
                    None => "sled found damaged data".to_owned(),
                };
                tracing::error!(path = %path.display(), %detail, "the storage engine reports corruption");
                Self::EngineCorrupt {
                    path: path.to_owned(),
                    detail,
                }
            }
            other => Self::from(other),
        }
    }
}

#[cfg(feature = "sled")]
impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Self::Storage(Box::new(e))
    }
}

#[cfg(feature = "fjall")]
impl Error {
    /// Maps a fjall error of the database in `path`, naming the directory
    /// when fjall reports damaged files.
    pub(crate) fn from_fjall(path: &std::path::Path, e: fjall::Error) -> Self {
        use fjall::LsmError;
        let detail = match &e {
            fjall::Error::JournalRecovery(why) => {
                Some(format!("fjall cannot recover its journal: {why}"))
            }
            fjall::Error::InvalidVersion(_)
            | fjall::Error::Decompress(_)
            | fjall::Error::InvalidTrailer
            | fjall::Error::InvalidTag(_)
            | fjall::Error::Unrecoverable => Some(format!("fjall found damaged files: {e:?}")),
            fjall::Error::Storage(inner) => match inner {
                LsmError::Io(_) => None,
                _ => Some(format!("fjall found a damaged table: {inner:?}")),
            },
            _ => None,
        };
        match detail {
            Some(detail) => {
                tracing::error!(path = %path.display(), %detail, "the storage engine reports corruption");
                Self::EngineCorrupt {
                    path: path.to_owned(),
                    detail,
                }
            }
            None => Self::Storage(Box::new(e)),
        }
    }
}
