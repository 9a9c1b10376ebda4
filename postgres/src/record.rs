//! How rows hold records: the embedded store's framing, byte for byte,
//! through `courier_persistence::format` (so both can never drift apart).
//!
//! Each `record`/`value` column holds `crc32 (4 bytes, big-endian) ++ body`,
//! the CRC covering the body; decoding checks the CRC, decodes under the
//! codec's size limit and checks that the record is the one its row's key
//! names, each step failing with a typed persistence error.

use courier_persistence::format;
use courier_persistence::{EventRecord, MAX_RECORD_SIZE, SeqNr, Snapshot};

use courier_persistence::Error;

type Result<T> = std::result::Result<T, Error>;

pub(crate) fn encode_event(record: &EventRecord) -> Result<Vec<u8>> {
    format::encode_event(record)
}

pub(crate) fn decode_event(
    bytes: &[u8],
    persistence_id: &str,
    seq_nr: SeqNr,
) -> Result<EventRecord> {
    format::decode_event(bytes, persistence_id, seq_nr)
}

pub(crate) fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>> {
    format::encode_snapshot(snapshot)
}

pub(crate) fn decode_snapshot(
    bytes: &[u8],
    persistence_id: &str,
    seq_nr: SeqNr,
) -> Result<Snapshot> {
    format::decode_snapshot(bytes, persistence_id, seq_nr)
}

/// A value framed, refused above [`MAX_RECORD_SIZE`] (a row never holds
/// more than the embedded store would).
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
    Ok(format::frame_value(value.to_vec()))
}

pub(crate) fn decode_value(namespace: &str, key: &[u8], bytes: &[u8]) -> Result<Vec<u8>> {
    format::unframe_value(namespace, key, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_persistence::Manifest;
    use uuid::Uuid;

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
