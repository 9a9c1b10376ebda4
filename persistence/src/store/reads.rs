//! The store's read side: reads go straight to the engine (off the runtime
//! for engines that block), answer only once what they saw is durable
//! (`commits`), and every record read is checked against the key it was
//! stored under. The writer uses the same readers to validate
//! what it is about to write.

use super::{Meta, Store};
use crate::engine::{Engine, Entry};
use crate::error::{Error, Result};
use crate::keys;
use crate::record::{self, EventRecord, SeqNr, Snapshot};

impl<E: Engine> Store<E> {
    /// Runs a read against the engine, off the runtime if it may block.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&E) -> Result<T> + Send + 'static,
    {
        let engine = self.engine().ok_or(Error::Closed)?;
        let value = if engine.blocking() {
            tokio::task::spawn_blocking(move || f(&engine))
                .await
                .map_err(|e| Error::Storage(Box::new(e)))??
        } else {
            f(&engine)?
        };
        // Only what is durable is answered (see `commits`).
        self.shared.commits.settled(&self.shared.poison).await?;
        Ok(value)
    }
}

pub(super) fn read_meta<E: Engine>(engine: &E, pid: &str) -> Result<Meta> {
    match engine.get(&keys::meta(pid))? {
        Some(bytes) => record::decode_record(&bytes, pid, 0),
        None => Ok(Meta::default()),
    }
}

/// The highest sequence number of `pid`: the last stored event's, or what
/// the metadata kept when events were deleted, whichever is higher.
pub(super) fn read_highest<E: Engine>(engine: &E, pid: &str) -> Result<SeqNr> {
    let meta = read_meta(engine, pid)?;
    let prefix = keys::event(pid, 0);
    let prefix = &prefix[..prefix.len() - 8];
    let end = keys::prefix_end(prefix);
    let last = engine
        .scan(prefix, end.as_deref(), 1, true)?
        .first()
        .and_then(|(k, _)| keys::seq_of(k))
        .unwrap_or(0);
    Ok(meta.highest.max(last))
}

/// Checks a key–value record's frame; an error names the record.
pub(crate) fn decode_kv(namespace: &str, key: &[u8], bytes: &[u8]) -> Result<Vec<u8>> {
    record::unframe(bytes)
        .map(<[u8]>::to_vec)
        .map_err(|reason| Error::CorruptKv {
            namespace: namespace.to_owned(),
            key: keys::printable(key),
            reason,
        })
}

/// Decodes a scanned event and checks it is the one its key names.
pub(super) fn decode_event(pid: &str, key: &[u8], value: &[u8]) -> Result<EventRecord> {
    crate::format::decode_event(value, pid, keys::seq_of(key).unwrap_or(0))
}

/// Up to `limit` snapshot entries of `pid` with `min <= seq <= max`, newest first.
pub(super) fn snapshots_below<E: Engine>(
    engine: &E,
    pid: &str,
    max: SeqNr,
    min: SeqNr,
    limit: usize,
) -> Result<Vec<Entry>> {
    let start = keys::snapshot(pid, min);
    let end = match max.checked_add(1) {
        Some(after) => keys::snapshot(pid, after),
        None => {
            let prefix = keys::snapshot(pid, 0);
            keys::prefix_end(&prefix[..prefix.len() - 8]).unwrap_or_default()
        }
    };
    engine.scan(&start, Some(&end), limit, true)
}

pub(super) fn decode_snapshot(pid: &str, (key, value): &Entry) -> Result<Snapshot> {
    crate::format::decode_snapshot(value, pid, keys::seq_of(key).unwrap_or(0))
}
