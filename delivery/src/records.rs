//! How delivery state is stored in the journal's key–value records.
//!
//! | namespace | key | value |
//! | --- | --- | --- |
//! | `courier.sender` | sender name | [`SenderMeta`]: incarnation, id high-water mark (written by the sender's writer only, when a delete needs it) |
//! | `courier.outbox/<sender>` | id (BE u64) | [`StoredEntry`] |
//! | `courier.parked/<sender>` | id (BE u64) | [`StoredEntry`] with a reason |
//! | `courier.inbox/<receiver>` | sender name, 0, incarnation (16 bytes), tag, id (BE u64) | watermark (BE u64) or empty |
//! | `courier.sender-epoch` | sender name | the store epoch of its incarnation (16 bytes) |
//! | `courier.inbox-id` | receiver name | the inbox's identity (16 bytes), then the store epoch it belongs to (16 bytes, nil if none) |
//! | `courier.inbox-alias/<receiver>` | an adopted identity (16 bytes) | empty |
//! | `courier.sender-inbox/<sender>` | destination path | identity of the inbox that acked it (16 bytes) |
//!
//! The journal checksums every value; a record that decodes wrong is a
//! typed [`Error::Corrupt`](crate::Error::Corrupt).

use std::sync::Arc;

use courier_persistence::{Journal, WriteBatch, decode_payload, encode_payload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{DeliveryId, SenderId};
use crate::error::{Error, Result};
use crate::inbox::Window;

pub(crate) const SENDERS: &str = "courier.sender";
pub(crate) const PAGE: usize = 1024;

pub(crate) fn outbox_ns(sender: &str) -> String {
    format!("courier.outbox/{sender}")
}

pub(crate) fn parked_ns(sender: &str) -> String {
    format!("courier.parked/{sender}")
}

pub(crate) fn inbox_ns(receiver: &str) -> String {
    format!("courier.inbox/{receiver}")
}

pub(crate) const INBOX_IDS: &str = "courier.inbox-id";

/// Per sender, the store epoch its incarnation belongs to.
pub(crate) const SENDER_EPOCHS: &str = "courier.sender-epoch";

pub(crate) fn inbox_alias_ns(receiver: &str) -> String {
    format!("courier.inbox-alias/{receiver}")
}

pub(crate) fn sender_inbox_ns(sender: &str) -> String {
    format!("courier.sender-inbox/{sender}")
}

/// An inbox's identity record: its identity and the store epoch it belongs
/// to (`None`: a store without epochs, or a record from before epochs).
pub(crate) fn parse_identity_record(owner: &str, bytes: &[u8]) -> Result<(Uuid, Option<Uuid>)> {
    match bytes.len() {
        16 => Ok((parse_identity(owner, bytes)?, None)),
        32 => {
            let epoch = parse_identity(owner, &bytes[16..])?;
            Ok((
                parse_identity(owner, &bytes[..16])?,
                (!epoch.is_nil()).then_some(epoch),
            ))
        }
        n => Err(Error::Corrupt {
            owner: owner.to_owned(),
            id: None,
            reason: format!("inbox identity record of {n} bytes, expected 16 or 32"),
        }),
    }
}

pub(crate) fn identity_record(identity: Uuid, epoch: Option<Uuid>) -> Vec<u8> {
    let mut bytes = identity.as_bytes().to_vec();
    bytes.extend_from_slice(epoch.unwrap_or_else(Uuid::nil).as_bytes());
    bytes
}

/// An inbox identity as stored: exactly 16 bytes.
pub(crate) fn parse_identity(owner: &str, bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| Error::Corrupt {
        owner: owner.to_owned(),
        id: None,
        reason: format!("inbox identity of {} bytes, expected 16", bytes.len()),
    })
}

/// A sender's durable identity and counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SenderMeta {
    pub(crate) incarnation: Uuid,
    /// Every id below this one may have been used and deleted. The next id
    /// after a restart is above it and above every id still stored.
    pub(crate) next_id: u64,
}

/// One unconfirmed (or parked) delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    pub(crate) destination: String,
    /// Wall-clock milliseconds when it was accepted.
    pub(crate) created_ms: u64,
    /// The message, encoded with bincode.
    pub(crate) payload: Vec<u8>,
    /// Why it was parked (parked entries only).
    pub(crate) parked: Option<String>,
}

/// A new outbox entry as [`StoredEntry`] encodes, with the message
/// written straight into it: `payload` as a length and the message's own
/// encoding is the same bytes as the `Vec<u8>` of an encoded message
/// (bincode writes a byte vector as its length and its bytes, and a tuple
/// without a length), so the message is encoded once, not into a buffer
/// that the entry's encoding then copies.
#[derive(Serialize)]
struct NewEntry<'a, M> {
    destination: &'a str,
    created_ms: u64,
    payload: (u64, &'a M),
    parked: Option<&'a str>,
}

/// The stored bytes of a new outbox entry holding `message` (decodes as a
/// [`StoredEntry`] whose payload decodes as `M`).
pub(crate) fn encode_entry<M: Serialize>(
    owner: &str,
    destination: &str,
    created_ms: u64,
    message: &M,
) -> Result<Vec<u8>> {
    let store_error = |source| Error::Store {
        owner: owner.to_owned(),
        source,
    };
    let codec_error = |source| {
        store_error(courier_persistence::Error::Encode {
            what: std::any::type_name::<M>(),
            source,
        })
    };
    let len = courier_codec::encoded_len(message).map_err(codec_error)?;
    if len > courier_persistence::MAX_RECORD_SIZE {
        return Err(codec_error(courier_codec::Error::TooLarge {
            len,
            limit: courier_persistence::MAX_RECORD_SIZE,
        }));
    }
    encode(
        owner,
        &NewEntry {
            destination,
            created_ms,
            payload: (len as u64, message),
            parked: None,
        },
    )
}

pub(crate) fn encode<T: Serialize>(owner: &str, value: &T) -> Result<Vec<u8>> {
    encode_payload(value).map_err(|source| Error::Store {
        owner: owner.to_owned(),
        source,
    })
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    owner: &str,
    id: DeliveryId,
    bytes: &[u8],
) -> Result<T> {
    decode_payload(bytes).map_err(|e| Error::Corrupt {
        owner: owner.to_owned(),
        id: Some(id),
        reason: e.to_string(),
    })
}

pub(crate) fn id_key(id: DeliveryId) -> [u8; 8] {
    id.0.to_be_bytes()
}

pub(crate) fn key_id(owner: &str, key: &[u8]) -> Result<DeliveryId> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| Error::Corrupt {
        owner: owner.to_owned(),
        id: None,
        reason: format!("key of {} bytes, expected 8", key.len()),
    })?;
    Ok(DeliveryId(u64::from_be_bytes(bytes)))
}

fn store_error(owner: &str) -> impl FnOnce(courier_persistence::Error) -> Error + '_ {
    move |source| Error::Store {
        owner: owner.to_owned(),
        source,
    }
}

/// Every record of `namespace`, in key order, read a page at a time.
pub(crate) async fn scan_all(
    journal: &Arc<dyn Journal>,
    owner: &str,
    namespace: &str,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut all = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = journal
            .kv_scan(namespace, after.as_deref(), PAGE)
            .await
            .map_err(store_error(owner))?;
        let full = page.len() == PAGE;
        after = page.last().map(|(k, _)| k.clone());
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// Reads a sender's meta record.
pub(crate) async fn load_meta(
    journal: &Arc<dyn Journal>,
    name: &str,
) -> Result<Option<SenderMeta>> {
    let bytes = journal
        .kv_get(SENDERS, name.as_bytes())
        .await
        .map_err(store_error(name))?;
    bytes
        .map(|b| {
            decode_payload(&b).map_err(|e| Error::Corrupt {
                owner: name.to_owned(),
                id: None,
                reason: format!("sender record: {e}"),
            })
        })
        .transpose()
}

pub(crate) fn put_meta(batch: WriteBatch, name: &str, meta: &SenderMeta) -> Result<WriteBatch> {
    Ok(batch.put(SENDERS, name.as_bytes().to_vec(), encode(name, meta)?))
}

/// The key prefix of one sender incarnation in an inbox namespace.
fn inbox_prefix(sender: &SenderId) -> Vec<u8> {
    let mut key = Vec::with_capacity(sender.name.len() + 1 + 16 + 9);
    key.extend_from_slice(sender.name.as_bytes());
    key.push(0);
    key.extend_from_slice(sender.incarnation.as_bytes());
    key
}

const WATERMARK: u8 = 0;
const DONE: u8 = 1;

pub(crate) fn watermark_key(sender: &SenderId) -> Vec<u8> {
    let mut key = inbox_prefix(sender);
    key.push(WATERMARK);
    key
}

pub(crate) fn done_key(sender: &SenderId, id: u64) -> Vec<u8> {
    let mut key = inbox_prefix(sender);
    key.push(DONE);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Rebuilds every sender window of an inbox namespace.
pub(crate) fn parse_inbox(
    owner: &str,
    records: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<(SenderId, Window)>> {
    let corrupt = |reason: String| Error::Corrupt {
        owner: owner.to_owned(),
        id: None,
        reason,
    };
    let mut windows: Vec<(SenderId, Window)> = Vec::new();
    for (key, value) in records {
        let nul = key
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| corrupt("inbox key without a name separator".into()))?;
        let name = std::str::from_utf8(&key[..nul])
            .map_err(|_| corrupt("inbox key with a non-UTF-8 sender name".into()))?;
        let rest = &key[nul + 1..];
        if rest.len() < 17 {
            return Err(corrupt(format!("inbox key of {} bytes", key.len())));
        }
        let incarnation = Uuid::from_slice(&rest[..16])
            .map_err(|e| corrupt(format!("inbox key with a bad incarnation: {e}")))?;
        let sender = SenderId {
            name: name.to_owned(),
            incarnation,
        };
        let window = match windows.last_mut() {
            Some((s, w)) if *s == sender => w,
            _ => {
                windows.push((sender, Window::default()));
                &mut windows.last_mut().expect("just pushed").1
            }
        };
        match (rest[16], &rest[17..]) {
            (WATERMARK, []) => {
                let bytes: [u8; 8] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("inbox watermark of the wrong size".into()))?;
                window.watermark = u64::from_be_bytes(bytes);
            }
            (DONE, id) if id.len() == 8 => {
                let mut bytes = [0; 8];
                bytes.copy_from_slice(id);
                window.above.insert(u64::from_be_bytes(bytes));
            }
            (tag, _) => return Err(corrupt(format!("inbox key with unknown tag {tag}"))),
        }
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_keys_round_trip() {
        let s = SenderId {
            name: "orders".into(),
            incarnation: Uuid::from_u128(42),
        };
        let records = vec![
            (watermark_key(&s), 7u64.to_be_bytes().to_vec()),
            (done_key(&s, 9), Vec::new()),
            (done_key(&s, 12), Vec::new()),
        ];
        let windows = parse_inbox("r", records).expect("valid");
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].0, s);
        assert_eq!(windows[0].1.watermark, 7);
        assert_eq!(
            windows[0].1.above.iter().copied().collect::<Vec<_>>(),
            [9, 12]
        );
    }

    #[test]
    fn an_entry_encoded_in_one_pass_is_the_entry_of_the_encoded_message() {
        #[derive(Serialize)]
        struct Order {
            number: u64,
            note: String,
        }
        for note in ["", "x", &"y".repeat(300), &"z".repeat(70_000)] {
            let message = Order {
                number: 7,
                note: note.to_owned(),
            };
            let once = encode_entry("s", "/user/dest", 42, &message).expect("encode");
            let twice = encode(
                "s",
                &StoredEntry {
                    destination: "/user/dest".into(),
                    created_ms: 42,
                    payload: encode("s", &message).expect("encode"),
                    parked: None,
                },
            )
            .expect("encode");
            assert_eq!(once, twice, "note of {} bytes", note.len());
            let entry: StoredEntry = decode("s", DeliveryId(1), &once).expect("decode");
            let (number, back): (u64, String) =
                decode("s", DeliveryId(1), &entry.payload).expect("decode");
            assert_eq!((number, back.as_str()), (7, note));
        }
    }

    #[test]
    fn corrupt_inbox_keys_are_typed_errors() {
        for key in [vec![1, 2, 3], b"orders\0short".to_vec()] {
            let err = parse_inbox("r", vec![(key, Vec::new())]).expect_err("corrupt");
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        }
    }
}
