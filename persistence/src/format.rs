//! The stored form of courier's records, for journal backends outside this
//! crate (such as `courier-postgres`), so that every backend frames,
//! checksums and bounds its records exactly as the embedded store does.
//!
//! A framed record is `crc32 (4 bytes, big-endian) ++ body`, the CRC
//! covering the body. An event's body is the codec-encoded header
//! (persistence id, sequence number, manifest, writer id, timestamp) then
//! the payload; a snapshot's is (metadata, manifest) then the payload; a
//! key–value record's is the value itself. Every decode checks the CRC,
//! decodes under the codec's size limit and checks that the record is the
//! one its place names, each failure a typed [`Error`].

use crate::error::{Error, Result};
use crate::keys;
use crate::record::{self, EventRecord, SeqNr, Snapshot};

/// The framed record of an event.
///
/// # Errors
///
/// [`Error::Encode`] if it cannot be encoded or exceeds
/// [`MAX_RECORD_SIZE`](crate::MAX_RECORD_SIZE).
pub fn encode_event(event: &EventRecord) -> Result<Vec<u8>> {
    record::encode_event(event)
}

/// The event framed in `bytes`, stored as `persistence_id`#`seq_nr`.
///
/// # Errors
///
/// [`Error::Corrupt`] (a bad checksum, or the record of another place) or
/// [`Error::Decode`], naming the persistence id and sequence number.
pub fn decode_event(bytes: &[u8], persistence_id: &str, seq_nr: SeqNr) -> Result<EventRecord> {
    let event = record::decode_event(bytes, persistence_id, seq_nr)?;
    if event.persistence_id != persistence_id || event.seq_nr != seq_nr {
        return Err(Error::Corrupt {
            persistence_id: persistence_id.to_owned(),
            seq_nr,
            reason: format!(
                "the record stored here is {}#{}",
                event.persistence_id, event.seq_nr
            ),
        });
    }
    Ok(event)
}

/// The framed record of a snapshot.
///
/// # Errors
///
/// As [`encode_event`].
pub fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>> {
    record::encode_snapshot(snapshot)
}

/// The snapshot framed in `bytes`, stored as `persistence_id`#`seq_nr`.
///
/// # Errors
///
/// As [`decode_event`].
pub fn decode_snapshot(bytes: &[u8], persistence_id: &str, seq_nr: SeqNr) -> Result<Snapshot> {
    let snapshot = record::decode_snapshot(bytes, persistence_id, seq_nr)?;
    if snapshot.metadata.persistence_id != persistence_id || snapshot.metadata.seq_nr != seq_nr {
        return Err(Error::Corrupt {
            persistence_id: persistence_id.to_owned(),
            seq_nr,
            reason: "the snapshot stored here belongs elsewhere".into(),
        });
    }
    Ok(snapshot)
}

/// A key–value record's value, framed.
pub fn frame_value(value: Vec<u8>) -> Vec<u8> {
    record::frame(value)
}

/// The value framed in `bytes`, stored under `namespace`/`key`.
///
/// # Errors
///
/// [`Error::CorruptKv`] naming the namespace and the (printable) key.
pub fn unframe_value(namespace: &str, key: &[u8], bytes: &[u8]) -> Result<Vec<u8>> {
    crate::store::decode_kv(namespace, key, bytes)
}

/// A key as errors show it: quoted text if printable, hex otherwise, cut
/// to its first 64 bytes.
pub fn printable_key(key: &[u8]) -> String {
    keys::printable(key)
}
