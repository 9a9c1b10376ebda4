//! The store's own records: its epoch and its commit number, key–value
//! records in the reserved namespace [`STORE_NAMESPACE`].
//!
//! The **store epoch** is a UUIDv7 written when a store is first opened and
//! replaced only when an operator accepts that the store lost acknowledged
//! writes. Everything written under one epoch is a continuous history; a new
//! epoch says "what you remember from before may be gone", so a layer that
//! derives identities from stored state (the delivery layer's sender
//! incarnations) starts new ones instead of reusing ids.
//!
//! The **commit number** counts the engine batches the store applied; see
//! [`Store`](crate::Store) for how it is checked on open.

use uuid::Uuid;

use crate::engine::{Engine, EngineOp};
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::keys;
use crate::record;

/// The key–value namespace of the store's own records. Writes to it through
/// [`Journal::write`] are refused.
pub const STORE_NAMESPACE: &str = "courier.store";

/// The key of the store epoch in [`STORE_NAMESPACE`]: 16 raw bytes, a UUIDv7.
pub const STORE_EPOCH_KEY: &[u8] = b"epoch";

/// The key of the commit number in [`STORE_NAMESPACE`]: a big-endian `u64`.
pub(crate) const COMMIT_KEY: &[u8] = b"commit";

/// The store epoch of `journal`: `None` only for a journal that is not a
/// courier [`Store`](crate::Store) (stores write one when they open).
///
/// # Examples
///
/// ```
/// use courier::persistence::MemoryStore;
/// use courier::persistence::engine::store_epoch;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), courier::persistence::Error> {
/// let store = MemoryStore::memory()?;
/// let epoch = store_epoch(&store).await?.expect("every store has one");
/// assert_eq!(epoch.get_version_num(), 7);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::CorruptKv`] if the record is damaged or not 16 bytes; the
/// journal's read errors.
pub async fn store_epoch(journal: &dyn Journal) -> Result<Option<Uuid>> {
    journal
        .kv_get(STORE_NAMESPACE, STORE_EPOCH_KEY)
        .await?
        .map(|bytes| decode_epoch(&bytes))
        .transpose()
}

fn decode_epoch(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| Error::CorruptKv {
        namespace: STORE_NAMESPACE.to_owned(),
        key: keys::printable(STORE_EPOCH_KEY),
        reason: format!("{} bytes is not a 16-byte epoch", bytes.len()),
    })
}

/// The epoch stored in `engine`, if any.
pub(crate) fn read_epoch<E: Engine>(engine: &E) -> Result<Option<Uuid>> {
    engine
        .get(&keys::kv(STORE_NAMESPACE, STORE_EPOCH_KEY))?
        .map(|framed| {
            decode_epoch(&crate::store::decode_kv(
                STORE_NAMESPACE,
                STORE_EPOCH_KEY,
                &framed,
            )?)
        })
        .transpose()
}

/// The batch operation that sets the epoch.
pub(crate) fn epoch_op(epoch: Uuid) -> EngineOp {
    EngineOp::Put(
        keys::kv(STORE_NAMESPACE, STORE_EPOCH_KEY),
        record::frame(epoch.as_bytes().to_vec()),
    )
}

/// The commit number stored in `engine` (0 for an engine without one: a
/// new store, or one written before commit numbers existed).
pub(crate) fn read_commit<E: Engine>(engine: &E) -> Result<u64> {
    let Some(framed) = engine.get(&keys::kv(STORE_NAMESPACE, COMMIT_KEY))? else {
        return Ok(0);
    };
    let body = crate::store::decode_kv(STORE_NAMESPACE, COMMIT_KEY, &framed)?;
    let bytes: [u8; 8] = body.as_slice().try_into().map_err(|_| Error::CorruptKv {
        namespace: STORE_NAMESPACE.to_owned(),
        key: keys::printable(COMMIT_KEY),
        reason: format!("{} bytes is not an 8-byte commit number", body.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// The batch operation that sets the commit number.
pub(crate) fn commit_op(commit: u64) -> EngineOp {
    EngineOp::Put(
        keys::kv(STORE_NAMESPACE, COMMIT_KEY),
        record::frame(commit.to_be_bytes().to_vec()),
    )
}
