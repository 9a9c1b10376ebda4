//! The stored record formats and their checksummed encoding.
//!
//! Every value the stores write is framed as `crc32 (4 bytes, big-endian) ++
//! body`, where the CRC covers the body. Bodies are encoded with
//! [`courier_codec`] (serde + bincode 2, `standard()`); events and snapshots store
//! their header that way followed by the payload bytes as they are, so a
//! large payload is copied, not fed through serde byte by byte. Decoding checks the CRC first,
//! then decodes, then checks that the record is the one its key names; each
//! step fails with a typed error naming the persistence id and sequence
//! number, never a panic.
//!
//! No body is longer than [`MAX_RECORD_SIZE`]: a larger one is refused when
//! it is encoded (so nothing is acknowledged that could not be read back),
//! and every decode runs under the codec's size limit, so a corrupt length
//! prefix, or a payload written by an older shape of its type, is a typed
//! error rather than an allocation of what the prefix claims.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// A position in a journal: 1 for the first event, gap-free.
pub type SeqNr = u64;

/// What a payload is: its type name and schema version, so a reader can pick
/// the right decoder (and upcast old versions).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Manifest {
    /// A stable name for the payload's type.
    pub type_name: String,
    /// The schema version the payload was written with.
    pub version: u32,
}

impl Manifest {
    /// A manifest for `type_name` at `version`.
    pub fn new(type_name: impl Into<String>, version: u32) -> Self {
        Self {
            type_name: type_name.into(),
            version,
        }
    }
}

/// One event as stored in a journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The journal it belongs to.
    pub persistence_id: String,
    /// Its position.
    pub seq_nr: SeqNr,
    /// What the payload is.
    pub manifest: Manifest,
    /// The encoded event.
    pub payload: Vec<u8>,
    /// The incarnation of the writer that wrote it.
    pub writer_id: Uuid,
    /// When it was written, in milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// Identifies a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    /// The journal the snapshot belongs to.
    pub persistence_id: String,
    /// The sequence number of the last event the snapshot covers.
    pub seq_nr: SeqNr,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// A stored snapshot: metadata, manifest and the encoded state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Which snapshot this is.
    pub metadata: SnapshotMetadata,
    /// What the payload is.
    pub manifest: Manifest,
    /// The encoded state.
    pub payload: Vec<u8>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The largest record body (an event or snapshot with its header, an
/// outbox entry, any payload) the store writes or reads: 64 MiB.
pub const MAX_RECORD_SIZE: usize = courier_codec::MAX_LEN;

/// Encodes a payload with serde + bincode 2 (`standard()`), through
/// [`courier_codec`].
///
/// # Errors
///
/// [`Error::Encode`] if the value cannot be serialized or its encoding is
/// longer than [`MAX_RECORD_SIZE`].
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    courier_codec::encode(value, MAX_RECORD_SIZE).map_err(|source| Error::Encode {
        what: std::any::type_name::<T>(),
        source,
    })
}

/// Decodes a payload written by [`encode_payload`], under the codec's size
/// limit: bytes of another (older) shape of `T`, or a length prefix that
/// claims more than the payload holds, are an error, never an allocation
/// of what they claim. Trailing bytes are an error too: they mean the
/// payload is not what the caller thinks it is.
///
/// # Errors
///
/// [`Error::Undecodable`] naming the type, with the codec's complaint
/// (garbage, trailing bytes, a length past the limit).
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    courier_codec::decode(bytes, MAX_RECORD_SIZE).map_err(|source| Error::Undecodable {
        type_name: std::any::type_name::<T>(),
        source,
    })
}

/// Frames `body` as `crc32 ++ body`.
pub(crate) fn frame(body: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&body);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Checks a frame's CRC and returns its body; `Err` says what is wrong.
pub(crate) fn unframe(bytes: &[u8]) -> std::result::Result<&[u8], String> {
    let Some((crc, body)) = bytes.split_first_chunk::<4>() else {
        return Err(format!("{} bytes is too short for a record", bytes.len()));
    };
    let stored = u32::from_be_bytes(*crc);
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    Ok(body)
}

pub(crate) fn encode_record<T: Serialize>(record: &T, what: &'static str) -> Result<Vec<u8>> {
    let body = courier_codec::encode(record, MAX_RECORD_SIZE)
        .map_err(|source| Error::Encode { what, source })?;
    Ok(frame(body))
}

#[derive(Serialize)]
struct EventHeaderRef<'a> {
    persistence_id: &'a str,
    seq_nr: SeqNr,
    manifest: &'a Manifest,
    writer_id: Uuid,
    timestamp: u64,
}

#[derive(Deserialize)]
struct EventHeader {
    persistence_id: String,
    seq_nr: SeqNr,
    manifest: Manifest,
    writer_id: Uuid,
    timestamp: u64,
}

#[derive(Serialize)]
struct SnapshotHeaderRef<'a> {
    metadata: &'a SnapshotMetadata,
    manifest: &'a Manifest,
}

#[derive(Deserialize)]
struct SnapshotHeader {
    metadata: SnapshotMetadata,
    manifest: Manifest,
}

/// Frames `bincode(header) ++ payload`.
fn encode_with_payload<H: Serialize>(
    header: &H,
    payload: &[u8],
    what: &'static str,
) -> Result<Vec<u8>> {
    let mut body = courier_codec::encode(header, MAX_RECORD_SIZE)
        .map_err(|source| Error::Encode { what, source })?;
    let len = body.len().saturating_add(payload.len());
    if len > MAX_RECORD_SIZE {
        return Err(Error::Encode {
            what,
            source: courier_codec::Error::TooLarge {
                len,
                limit: MAX_RECORD_SIZE,
            },
        });
    }
    body.extend_from_slice(payload);
    Ok(frame(body))
}

/// Checks the frame, decodes the header and returns it with the payload.
fn decode_with_payload<H: DeserializeOwned>(
    bytes: &[u8],
    persistence_id: &str,
    seq_nr: SeqNr,
) -> Result<(H, Vec<u8>)> {
    let body = unframe(bytes).map_err(|reason| Error::Corrupt {
        persistence_id: persistence_id.to_owned(),
        seq_nr,
        reason,
    })?;
    let (header, read) =
        courier_codec::decode_prefix(body, MAX_RECORD_SIZE).map_err(|source| Error::Decode {
            persistence_id: persistence_id.to_owned(),
            seq_nr,
            source,
        })?;
    Ok((header, body.get(read..).unwrap_or_default().to_vec()))
}

pub(crate) fn encode_event(record: &EventRecord) -> Result<Vec<u8>> {
    let header = EventHeaderRef {
        persistence_id: &record.persistence_id,
        seq_nr: record.seq_nr,
        manifest: &record.manifest,
        writer_id: record.writer_id,
        timestamp: record.timestamp,
    };
    encode_with_payload(&header, &record.payload, "event")
}

pub(crate) fn decode_event(
    bytes: &[u8],
    persistence_id: &str,
    seq_nr: SeqNr,
) -> Result<EventRecord> {
    let (h, payload): (EventHeader, _) = decode_with_payload(bytes, persistence_id, seq_nr)?;
    Ok(EventRecord {
        persistence_id: h.persistence_id,
        seq_nr: h.seq_nr,
        manifest: h.manifest,
        payload,
        writer_id: h.writer_id,
        timestamp: h.timestamp,
    })
}

pub(crate) fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>> {
    let header = SnapshotHeaderRef {
        metadata: &snapshot.metadata,
        manifest: &snapshot.manifest,
    };
    encode_with_payload(&header, &snapshot.payload, "snapshot")
}

pub(crate) fn decode_snapshot(
    bytes: &[u8],
    persistence_id: &str,
    seq_nr: SeqNr,
) -> Result<Snapshot> {
    let (h, payload): (SnapshotHeader, _) = decode_with_payload(bytes, persistence_id, seq_nr)?;
    Ok(Snapshot {
        metadata: h.metadata,
        manifest: h.manifest,
        payload,
    })
}

/// Decodes a framed record stored under (`persistence_id`, `seq_nr`).
pub(crate) fn decode_record<T: DeserializeOwned>(
    bytes: &[u8],
    persistence_id: &str,
    seq_nr: SeqNr,
) -> Result<T> {
    let body = unframe(bytes).map_err(|reason| Error::Corrupt {
        persistence_id: persistence_id.to_owned(),
        seq_nr,
        reason,
    })?;
    courier_codec::decode(body, MAX_RECORD_SIZE).map_err(|source| Error::Decode {
        persistence_id: persistence_id.to_owned(),
        seq_nr,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EventRecord {
        EventRecord {
            persistence_id: "p-1".into(),
            seq_nr: 7,
            manifest: Manifest::new("Added", 2),
            payload: vec![1, 2, 3],
            writer_id: Uuid::now_v7(),
            timestamp: 42,
        }
    }

    #[test]
    fn records_round_trip() {
        let r = record();
        let bytes = encode_event(&r).expect("encode");
        assert_eq!(decode_event(&bytes, "p-1", 7).expect("decode"), r);
        let snapshot = Snapshot {
            metadata: SnapshotMetadata {
                persistence_id: "p-1".into(),
                seq_nr: 7,
                timestamp: 9,
            },
            manifest: Manifest::new("State", 1),
            payload: vec![9; 3000],
        };
        let bytes = encode_snapshot(&snapshot).expect("encode");
        assert_eq!(decode_snapshot(&bytes, "p-1", 7).expect("decode"), snapshot);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = encode_event(&record()).expect("encode");
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let result = decode_event(&bad, "p-1", 7);
            assert!(
                matches!(result, Err(Error::Corrupt { ref persistence_id, seq_nr: 7, .. }) if persistence_id == "p-1"),
                "bit {i}: {result:?}"
            );
        }
    }

    #[test]
    fn truncated_and_garbage_bytes_are_typed_errors() {
        let bytes = encode_event(&record()).expect("encode");
        for len in 0..bytes.len() {
            let result = decode_event(&bytes[..len], "p-1", 7);
            assert!(result.is_err(), "truncated to {len} decoded");
        }
        // A valid frame around bytes that are not a record.
        let result = decode_event(&frame(vec![0xff; 9]), "p-1", 7);
        assert!(matches!(result, Err(Error::Decode { .. })), "{result:?}");
    }

    /// A valid frame whose body starts with a length prefix claiming `len`
    /// bytes: the first string of every header, as a corrupt or hostile
    /// record would have it.
    fn claiming(len: u64) -> Vec<u8> {
        let mut body = vec![0xfd];
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(b"p-1");
        frame(body)
    }

    #[test]
    fn crafted_length_prefixes_are_decode_errors_at_every_record_kind() {
        for len in [u64::MAX, 1 << 63, 1 << 40, 100 << 20] {
            let bytes = claiming(len);
            let limited = |e: &Error| matches!(e, Error::Decode { persistence_id, seq_nr: 7, source: courier_codec::Error::LimitExceeded { .. } } if persistence_id == "p-1");
            let event = decode_event(&bytes, "p-1", 7).expect_err("event");
            assert!(limited(&event), "{len}: {event:?}");
            let snapshot = decode_snapshot(&bytes, "p-1", 7).expect_err("snapshot");
            assert!(limited(&snapshot), "{len}: {snapshot:?}");
            let record = decode_record::<(String, u64)>(&bytes, "p-1", 7).expect_err("record");
            assert!(limited(&record), "{len}: {record:?}");
            let payload = decode_payload::<String>(&bytes[4..]).expect_err("payload");
            assert!(
                matches!(
                    payload,
                    Error::Undecodable {
                        source: courier_codec::Error::LimitExceeded { .. },
                        ..
                    }
                ),
                "{len}: {payload:?}"
            );
        }
    }

    #[test]
    fn records_over_the_maximum_size_are_refused_when_written() {
        let mut big = record();
        big.payload = vec![0; MAX_RECORD_SIZE];
        let refused = encode_event(&big);
        assert!(
            matches!(
                refused,
                Err(Error::Encode {
                    what: "event",
                    source: courier_codec::Error::TooLarge { .. }
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn payloads_round_trip_and_reject_trailing_bytes() {
        let bytes = encode_payload(&(5u32, "x".to_string())).expect("encode");
        let back: (u32, String) = decode_payload(&bytes).expect("decode");
        assert_eq!(back, (5, "x".to_string()));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_payload::<(u32, String)>(&longer).is_err());
    }
}
