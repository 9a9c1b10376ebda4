//! Writes encoded by their callers: keys built, records encoded, framed and
//! checksummed on the caller's task, so the single writer only validates
//! sequence numbers and applies.

use crate::engine::EngineOp;
use crate::epoch;
use crate::error::{Error, Result};
use crate::journal::{KvWrite, WriteBatch};
use crate::keys;
use crate::record::{self, SeqNr, Snapshot};

/// A [`WriteBatch`] ready to apply: its events' ids and sequence numbers
/// (which the writer checks against the journals), and the engine
/// operations of the whole batch.
pub(super) struct PreparedWrite {
    /// `(persistence id, sequence number)` of each event, in batch order.
    pub(super) events: Vec<(String, SeqNr)>,
    /// The event puts, then the key–value puts and deletes.
    pub(super) ops: Vec<EngineOp>,
}

impl PreparedWrite {
    /// Checks the ids and encodes every record of `batch`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a bad persistence id or namespace (or the
    /// store's own namespace); [`Error::Encode`] for a record too large to
    /// store.
    pub(super) fn encode(batch: WriteBatch) -> Result<Self> {
        let mut events = Vec::with_capacity(batch.events.len());
        let mut ops = Vec::with_capacity(batch.events.len() + batch.kv.len());
        for event in &batch.events {
            keys::check_id("persistence id", &event.persistence_id)?;
            ops.push(EngineOp::Put(
                keys::event(&event.persistence_id, event.seq_nr),
                record::encode_event(event)?,
            ));
        }
        events.extend(
            batch
                .events
                .into_iter()
                .map(|event| (event.persistence_id, event.seq_nr)),
        );
        for kv in batch.kv {
            match kv {
                KvWrite::Put {
                    namespace,
                    key,
                    value,
                } => {
                    check_namespace(&namespace)?;
                    ops.push(EngineOp::Put(
                        keys::kv(&namespace, &key),
                        record::frame(value),
                    ));
                }
                KvWrite::Delete { namespace, key } => {
                    check_namespace(&namespace)?;
                    ops.push(EngineOp::Delete(keys::kv(&namespace, &key)));
                }
            }
        }
        Ok(Self { events, ops })
    }
}

/// A snapshot ready to apply: its key and its encoded record.
pub(super) fn encode_snapshot(snapshot: &Snapshot) -> Result<EngineOp> {
    let md = &snapshot.metadata;
    keys::check_id("persistence id", &md.persistence_id)?;
    Ok(EngineOp::Put(
        keys::snapshot(&md.persistence_id, md.seq_nr),
        record::encode_snapshot(snapshot)?,
    ))
}

/// Checks a namespace a caller writes to: the store's own is not one.
fn check_namespace(namespace: &str) -> Result<()> {
    keys::check_id("namespace", namespace)?;
    if namespace == epoch::STORE_NAMESPACE {
        return Err(Error::Invalid {
            what: "namespace",
            reason: format!("{namespace:?} is reserved for the store's own records"),
        });
    }
    Ok(())
}
