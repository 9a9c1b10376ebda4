//! How rows hold records: the embedded store's framing, byte for byte.
//!
//! Each `record`/`value` column holds `crc32 (4 bytes, big-endian) ++ body`,
//! the CRC covering the body. For events the body is
//! `bincode(header) ++ payload`, the header being (persistence id, sequence
//! number, manifest, writer id, timestamp) encoded with `courier-codec`;
//! for snapshots (metadata, manifest) then the payload; for key–value
//! records the value itself. Decoding checks the CRC, then decodes under the
//! codec's size limit, then checks that the record is the one its row's key
//! names, each step failing with a typed persistence error.

use courier_persistence::{
    EventRecord, MAX_RECORD_SIZE, Manifest, SeqNr, Snapshot, SnapshotMetadata,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use courier_persistence::Error;

type Result<T> = std::result::Result<T, Error>;

fn frame(body: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&body);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn unframe(bytes: &[u8]) -> std::result::Result<&[u8], String> {
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

fn misplaced(persistence_id: &str, seq_nr: SeqNr, found: &str, found_seq: SeqNr) -> Error {
    Error::Corrupt {
        persistence_id: persistence_id.to_owned(),
        seq_nr,
        reason: format!("the row holds the record of {found} at {found_seq}"),
    }
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
    if h.persistence_id != persistence_id || h.seq_nr != seq_nr {
        return Err(misplaced(
            persistence_id,
            seq_nr,
            &h.persistence_id,
            h.seq_nr,
        ));
    }
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
    let m = &h.metadata;
    if m.persistence_id != persistence_id || m.seq_nr != seq_nr {
        return Err(misplaced(
            persistence_id,
            seq_nr,
            &m.persistence_id,
            m.seq_nr,
        ));
    }
    Ok(Snapshot {
        metadata: h.metadata,
        manifest: h.manifest,
        payload,
    })
}

pub(crate) fn encode_value(value: &[u8]) -> Result<Vec<u8>> {
    if value.len() > MAX_RECORD_SIZE {
        return Err(Error::Encode {
            what: "key-value record",
            source: courier_codec::Error::TooLarge {
                len: value.len(),
                limit: MAX_RECORD_SIZE,
            },
        });
    }
    Ok(frame(value.to_vec()))
}

pub(crate) fn decode_value(namespace: &str, key: &[u8], bytes: &[u8]) -> Result<Vec<u8>> {
    unframe(bytes)
        .map(<[u8]>::to_vec)
        .map_err(|reason| Error::CorruptKv {
            namespace: namespace.to_owned(),
            key: printable(key),
            reason,
        })
}

/// A key for messages: quoted text if printable, hex otherwise, cut to 64
/// bytes.
pub(crate) fn printable(key: &[u8]) -> String {
    const SHOWN: usize = 64;
    let shown = key.get(..SHOWN).unwrap_or(key);
    let text = match std::str::from_utf8(shown) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => {
            let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    };
    if key.len() > SHOWN {
        format!("{text}… ({} bytes)", key.len())
    } else {
        text
    }
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
    fn every_flipped_bit_is_a_corrupt_error() {
        let original = record();
        let bytes = encode_event(&original).expect("encode");
        assert_eq!(decode_event(&bytes, "p-1", 7).expect("decode"), original);
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let result = decode_event(&bad, "p-1", 7);
            assert!(
                matches!(result, Err(Error::Corrupt { seq_nr: 7, .. })),
                "bit {i}: {result:?}"
            );
        }
    }

    #[test]
    fn a_record_under_the_wrong_key_is_corrupt() {
        let bytes = encode_event(&record()).expect("encode");
        let result = decode_event(&bytes, "p-1", 8);
        assert!(
            matches!(result, Err(Error::Corrupt { seq_nr: 8, .. })),
            "{result:?}"
        );
        let result = decode_event(&bytes, "p-2", 7);
        assert!(matches!(result, Err(Error::Corrupt { .. })), "{result:?}");
    }

    #[test]
    fn values_round_trip_and_damage_is_corrupt_kv() {
        let framed = encode_value(b"v").expect("encode");
        assert_eq!(decode_value("ns", b"k", &framed).expect("decode"), b"v");
        let mut bad = framed.clone();
        bad[4] ^= 1;
        let result = decode_value("ns", b"k", &bad);
        assert!(matches!(result, Err(Error::CorruptKv { .. })), "{result:?}");
    }
}
