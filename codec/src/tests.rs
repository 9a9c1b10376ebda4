//! Crafted length prefixes, truncations and garbage: typed errors, never a
//! panic or an allocation of what a prefix claims.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Shape {
    id: u64,
    name: String,
    tags: Vec<String>,
    bytes: Vec<u8>,
    wide: Vec<u128>,
    map: BTreeMap<String, u32>,
    note: Option<String>,
}

fn shape() -> Shape {
    Shape {
        id: 7,
        name: "charge".into(),
        tags: vec!["a".into(), String::new(), "ccc".into()],
        bytes: vec![1, 2, 3],
        wide: vec![0, 1, u128::MAX],
        map: [("k".to_owned(), 3)].into_iter().collect(),
        note: Some("n".into()),
    }
}

/// `value` as bincode's standard varint: 251 = u16, 252 = u32, 253 = u64.
fn varint(value: u64) -> Vec<u8> {
    let mut out = vec![0xfd];
    out.extend_from_slice(&value.to_le_bytes());
    out
}

/// Length prefixes that would make an unlimited decode allocate (and
/// abort) or panic with "capacity overflow".
const HOSTILE: [u64; 5] = [u64::MAX, 1 << 63, 1 << 40, 1 << 31, 100 << 20];

#[test]
fn values_round_trip() {
    let bytes = encode(&shape(), MAX_LEN).expect("encode");
    assert_eq!(decode::<Shape>(&bytes, MAX_LEN).expect("decode"), shape());
    let (prefix, read) = decode_prefix::<u64>(&bytes, MAX_LEN).expect("prefix");
    assert_eq!((prefix, read), (7, 1));
}

#[test]
fn hostile_length_prefixes_are_refused_for_every_container() {
    for len in HOSTILE {
        let prefix = varint(len);
        // A string, serde's byte sequence, a sequence of strings, a map.
        let string = decode::<String>(&prefix, MAX_LEN);
        assert!(
            matches!(string, Err(Error::LimitExceeded { .. })),
            "{len}: {string:?}"
        );
        let seq = decode::<Vec<u8>>(&prefix, MAX_LEN);
        assert!(seq.is_err(), "{len}: {seq:?}");
        let strings = decode::<Vec<String>>(&prefix, MAX_LEN);
        assert!(strings.is_err(), "{len}: {strings:?}");
        let map = decode::<BTreeMap<String, String>>(&prefix, MAX_LEN);
        assert!(map.is_err(), "{len}: {map:?}");
        // The prefix where a struct keeps its string field: twelve bytes
        // aimed at a message type, as a hostile peer would send them.
        let mut frame = vec![7];
        frame.extend_from_slice(&prefix);
        frame.extend_from_slice(&[1, 2]);
        let shaped = decode::<Shape>(&frame, MAX_LEN);
        assert!(
            matches!(shaped, Err(Error::LimitExceeded { .. })),
            "{len}: {shaped:?}"
        );
    }
}

#[test]
fn an_older_shape_is_an_error_not_an_allocation() {
    #[derive(Serialize)]
    struct Old {
        id: u64,
        amount: u64,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct New {
        id: u64,
        note: String,
    }
    let old = encode(
        &Old {
            id: 1,
            amount: u64::MAX - 1,
        },
        MAX_LEN,
    )
    .expect("encode");
    let refused = decode::<New>(&old, MAX_LEN);
    assert!(
        matches!(refused, Err(Error::LimitExceeded { .. })),
        "{refused:?}"
    );
}

#[test]
fn truncations_trailing_bytes_and_sizes_are_typed_errors() {
    let bytes = encode(&shape(), MAX_LEN).expect("encode");
    for len in 0..bytes.len() {
        let result = decode::<Shape>(&bytes[..len], MAX_LEN);
        assert!(
            matches!(result, Err(Error::Truncated { .. })),
            "cut at {len}: {result:?}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        decode::<Shape>(&longer, MAX_LEN),
        Err(Error::TrailingBytes {
            type_name: type_name::<Shape>(),
            trailing: 1
        })
    );
    assert!(matches!(
        decode::<Shape>(&bytes, bytes.len() - 1),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        encode(&shape(), bytes.len() - 1),
        Err(Error::TooLarge { .. })
    ));
    let big = vec![0u8; 1000];
    assert!(matches!(
        encode(&big, 100),
        Err(Error::TooLarge {
            len: 1003,
            limit: 100
        })
    ));
    let malformed = decode::<String>(&[2, 0xff, 0xfe], MAX_LEN);
    assert!(
        matches!(malformed, Err(Error::Malformed { .. })),
        "{malformed:?}"
    );
}

#[test]
fn the_budget_grows_with_the_input_and_stops_at_max_len() {
    assert_eq!(budget(0), 64 << 10);
    assert_eq!(budget(4 << 10), 64 << 10);
    assert_eq!(budget((4 << 10) + 1), 1 << 20);
    assert_eq!(budget(MAX_LEN), MAX_LEN * 16);
    assert_eq!(budget(usize::MAX), MAX_LEN * 16);
    // A value larger than the smallest budget decodes: the budget follows
    // the input, and legitimate data never claims more than 16× its size.
    let wide: Vec<u128> = vec![1; 100_000];
    let bytes = encode(&wide, MAX_LEN).expect("encode");
    assert_eq!(decode::<Vec<u128>>(&bytes, MAX_LEN).expect("decode"), wide);
    let text = "x".repeat(3 << 20);
    let bytes = encode(&text, MAX_LEN).expect("encode");
    assert_eq!(decode::<String>(&bytes, MAX_LEN).expect("decode"), text);
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode::<Shape>(&bytes, MAX_LEN);
        let _ = decode_prefix::<(String, Vec<String>)>(&bytes, MAX_LEN);
    }

    #[test]
    fn legitimate_values_always_decode(
        id in any::<u64>(),
        name in ".{0,40}",
        tags in proptest::collection::vec(".{0,8}", 0..20),
        wide in proptest::collection::vec(0u128..4, 0..200),
    ) {
        let value = Shape { id, name, tags, bytes: vec![], wide, map: BTreeMap::new(), note: None };
        let bytes = encode(&value, MAX_LEN).expect("encode");
        prop_assert_eq!(decode::<Shape>(&bytes, MAX_LEN).expect("decode"), value);
    }
}
