//! The key layout shared by every byte-keyed engine (memory and sled).
//!
//! All records live in one ordered key space, so that one atomic engine batch
//! can span events, journal metadata, snapshots and key–value records. Keys
//! start with a tag byte; identifiers are length-prefixed (u16, big-endian)
//! so that no id is a prefix of another's keys; sequence numbers are
//! big-endian `u64`, so byte order is numeric order.

use crate::error::{Error, Result};
use crate::record::SeqNr;

const EVENT: u8 = 0x01;
const META: u8 = 0x02;
const SNAPSHOT: u8 = 0x03;
const KV: u8 = 0x04;

/// The longest persistence id or namespace, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// Checks an id (persistence id or namespace).
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::Invalid {
            what,
            reason: "it is empty".into(),
        });
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::Invalid {
            what,
            reason: format!("{} bytes is longer than {MAX_ID_LEN}", id.len()),
        });
    }
    Ok(())
}

fn prefixed(tag: u8, id: &str, extra: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(3 + id.len() + extra);
    key.push(tag);
    // check_id keeps ids under u16::MAX bytes.
    key.extend_from_slice(&(id.len() as u16).to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

pub(crate) fn event(pid: &str, seq: SeqNr) -> Vec<u8> {
    let mut key = prefixed(EVENT, pid, 8);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(crate) fn meta(pid: &str) -> Vec<u8> {
    prefixed(META, pid, 0)
}

pub(crate) fn snapshot(pid: &str, seq: SeqNr) -> Vec<u8> {
    let mut key = prefixed(SNAPSHOT, pid, 8);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(crate) fn kv(namespace: &str, key: &[u8]) -> Vec<u8> {
    let mut out = prefixed(KV, namespace, key.len());
    out.extend_from_slice(key);
    out
}

/// The part of a kv key after its namespace prefix.
pub(crate) fn kv_suffix<'a>(namespace: &str, full: &'a [u8]) -> &'a [u8] {
    full.get(3 + namespace.len()..).unwrap_or_default()
}

/// The first key after every key that starts with `prefix`, if any.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// What a key of the store's key space holds, as [`parse`] reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// An event of a persistence id.
    Event(&'a str, SeqNr),
    /// A persistence id's metadata.
    Meta(&'a str),
    /// A snapshot of a persistence id.
    Snapshot(&'a str, SeqNr),
    /// A key–value record: its namespace and key.
    Kv(&'a str, &'a [u8]),
}

/// Reads a key back into what it names; `None` for a key courier never
/// writes (an unknown tag, a bad length prefix, an id that is not UTF-8, a
/// sequence number of the wrong size).
pub(crate) fn parse(key: &[u8]) -> Option<Parsed<'_>> {
    let (&tag, rest) = key.split_first()?;
    let len = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let id = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
    let tail = rest.get(2 + len..)?;
    let seq = || Some(SeqNr::from_be_bytes(tail.try_into().ok()?));
    match tag {
        EVENT => Some(Parsed::Event(id, seq()?)),
        META if tail.is_empty() => Some(Parsed::Meta(id)),
        SNAPSHOT => Some(Parsed::Snapshot(id, seq()?)),
        KV => Some(Parsed::Kv(id, tail)),
        _ => None,
    }
}

/// The sequence number at the end of an event or snapshot key.
pub(crate) fn seq_of(key: &[u8]) -> Option<SeqNr> {
    let tail = key
        .len()
        .checked_sub(8)
        .and_then(|start| key.get(start..))?;
    Some(SeqNr::from_be_bytes(tail.try_into().ok()?))
}

/// The most key bytes [`printable`] shows.
const SHOWN: usize = 64;

/// A key for messages: as text if it is printable UTF-8 (quoted, escaped),
/// in hex otherwise, cut to its first 64 bytes with the full length noted.
pub(crate) fn printable(key: &[u8]) -> String {
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

    #[test]
    fn byte_order_is_numeric_order_within_an_id() {
        assert!(event("a", 1) < event("a", 2));
        assert!(event("a", 255) < event("a", 256));
        assert!(event("a", u64::MAX - 1) < event("a", u64::MAX));
        assert_eq!(seq_of(&event("a", 258)), Some(258));
    }

    #[test]
    fn no_id_is_a_prefix_of_another() {
        // "a" and "ab" differ in their length prefix, so a scan of one never
        // sees the other.
        let a_end = prefix_end(&prefixed(EVENT, "a", 0)).expect("end");
        assert!(event("ab", 1) >= a_end || event("ab", 1) < prefixed(EVENT, "a", 0));
        assert!(event("a", u64::MAX) < a_end);
    }

    #[test]
    fn keys_are_printed_as_text_or_hex_and_bounded() {
        assert_eq!(printable(b"order-7"), "\"order-7\"");
        assert_eq!(printable(&[0, 0, 0, 9]), "0x00000009");
        let long = printable(&[b'a'; 300]);
        assert!(long.ends_with("… (300 bytes)"), "{long}");
        assert!(long.len() < 100, "{long}");
    }

    #[test]
    fn every_key_parses_back_to_what_it_names() {
        assert_eq!(parse(&event("p", 7)), Some(Parsed::Event("p", 7)));
        assert_eq!(parse(&meta("p")), Some(Parsed::Meta("p")));
        assert_eq!(parse(&snapshot("p", 9)), Some(Parsed::Snapshot("p", 9)));
        assert_eq!(parse(&kv("ns", b"k")), Some(Parsed::Kv("ns", b"k")));
        assert_eq!(parse(&[9, 0, 1, b'x']), None);
        assert_eq!(parse(&[EVENT, 0, 5, b'x']), None);
        let mut short = event("p", 1);
        short.pop();
        assert_eq!(parse(&short), None);
    }

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
