//! What the delivery layer keeps in a journal, read without running any
//! actor: the senders with their unconfirmed and parked deliveries, the
//! inboxes with what they have applied; and the two repairs an operator
//! needs offline (re-queue or purge a parked delivery). This is what the
//! `courier` command-line tool shows.
//!
//! Messages are shown as their stored size only: a delivery's bytes have no
//! type name in them, so only a program that knows the message type can
//! decode them (`Deliverer::parked`).
//!
//! The repairs write as a sender would, so they are only safe while no
//! sender of that name runs on the journal: an embedded store is locked by
//! the process that has it open, so an offline tool cannot open it then.

use std::collections::BTreeMap;
use std::sync::Arc;

use courier_persistence::{Journal, WriteBatch};
use uuid::Uuid;

use crate::envelope::DeliveryId;
use crate::error::{Error, Result};
use crate::records::{
    INBOX_IDS, PAGE, SENDERS, SenderMeta, StoredEntry, decode, id_key, inbox_ns, key_id, load_meta,
    outbox_ns, parked_ns, parse_identity_record, parse_inbox, put_meta, scan_all,
};

/// One sender's durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderReport {
    /// The sender's name.
    pub name: String,
    /// The incarnation of its durable state.
    pub incarnation: Uuid,
    /// The id high-water mark its writer last wrote: every id below it
    /// may have been used.
    pub next_id: u64,
    /// How many deliveries are unconfirmed.
    pub pending: u64,
    /// When the oldest unconfirmed delivery was accepted (wall-clock
    /// milliseconds), if any is.
    pub oldest_pending_ms: Option<u64>,
    /// Unconfirmed deliveries per destination path.
    pub destinations: BTreeMap<String, u64>,
    /// How many deliveries are parked.
    pub parked: u64,
}

/// One stored delivery, unconfirmed or parked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredDelivery {
    /// Its delivery id.
    pub id: DeliveryId,
    /// The destination path.
    pub destination: String,
    /// When it was accepted (wall-clock milliseconds).
    pub created_ms: u64,
    /// The encoded message's size in bytes.
    pub size: usize,
    /// Why it was parked (parked deliveries only).
    pub reason: Option<String>,
}

/// Some of a sender's deliveries, in id order ([`pending_page`],
/// [`parked_page`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryPage {
    /// The deliveries of this page.
    pub deliveries: Vec<StoredDelivery>,
    /// Whether more follow the last one: ask again with its id as `after`.
    pub more: bool,
}

/// One receiver's inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxReport {
    /// The receiver's name.
    pub receiver: String,
    /// The inbox's identity (senders check it to notice a lost inbox).
    pub identity: Uuid,
    /// Per sender incarnation, what the inbox has applied.
    pub senders: Vec<InboxSender>,
}

/// What an inbox has applied of one sender incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxSender {
    /// The sender's name.
    pub sender: String,
    /// Its incarnation.
    pub incarnation: Uuid,
    /// Every id up to here is applied.
    pub watermark: u64,
    /// Applied ids above the watermark, kept until it passes them.
    pub kept: u64,
}

fn store_error(owner: &str) -> impl FnOnce(courier_persistence::Error) -> Error + '_ {
    move |source| Error::Store {
        owner: owner.to_owned(),
        source,
    }
}

/// Every sender recorded in `journal`, by name.
///
/// # Errors
///
/// [`Error::Store`] when the journal cannot be read, [`Error::Corrupt`]
/// naming the sender when a record does not decode.
pub async fn senders(journal: &Arc<dyn Journal>) -> Result<Vec<SenderReport>> {
    let mut reports = Vec::new();
    for (key, value) in scan_all(journal, SENDERS, SENDERS).await? {
        let name = String::from_utf8(key).map_err(|_| Error::Corrupt {
            owner: SENDERS.to_owned(),
            id: None,
            reason: "a sender name that is not UTF-8".into(),
        })?;
        let meta: SenderMeta =
            courier_persistence::decode_payload(&value).map_err(|e| Error::Corrupt {
                owner: name.clone(),
                id: None,
                reason: format!("sender record: {e}"),
            })?;
        let pending = pending(journal, &name).await?;
        let parked = scan_all(journal, &name, &parked_ns(&name)).await?.len() as u64;
        let mut destinations = BTreeMap::new();
        for delivery in &pending {
            *destinations
                .entry(delivery.destination.clone())
                .or_insert(0) += 1;
        }
        reports.push(SenderReport {
            incarnation: meta.incarnation,
            next_id: meta.next_id,
            pending: pending.len() as u64,
            oldest_pending_ms: pending.iter().map(|d| d.created_ms).min(),
            destinations,
            parked,
            name,
        });
    }
    Ok(reports)
}

async fn stored(
    journal: &Arc<dyn Journal>,
    sender: &str,
    namespace: &str,
) -> Result<Vec<StoredDelivery>> {
    scan_all(journal, sender, namespace)
        .await?
        .into_iter()
        .map(|(key, value)| stored_delivery(sender, &key, &value))
        .collect()
}

async fn stored_page(
    journal: &Arc<dyn Journal>,
    sender: &str,
    namespace: &str,
    after: Option<DeliveryId>,
    limit: usize,
) -> Result<DeliveryPage> {
    let mut deliveries = Vec::new();
    let mut cursor = after.map(|id| id_key(id).to_vec());
    // One more than asked, to know whether more follow.
    let wanted = limit.saturating_add(1);
    loop {
        let asked = (wanted - deliveries.len()).min(PAGE);
        let page = journal
            .kv_scan(namespace, cursor.as_deref(), asked)
            .await
            .map_err(|source| Error::Store {
                owner: sender.to_owned(),
                source,
            })?;
        let full = page.len() == asked;
        cursor = page.last().map(|(key, _)| key.clone());
        for (key, value) in &page {
            deliveries.push(stored_delivery(sender, key, value)?);
        }
        if !full || deliveries.len() >= wanted {
            break;
        }
    }
    let more = deliveries.len() > limit;
    deliveries.truncate(limit);
    Ok(DeliveryPage { deliveries, more })
}

fn stored_delivery(sender: &str, key: &[u8], value: &[u8]) -> Result<StoredDelivery> {
    let id = key_id(sender, key)?;
    let entry: StoredEntry = decode(sender, id, value)?;
    Ok(StoredDelivery {
        id,
        destination: entry.destination,
        created_ms: entry.created_ms,
        size: entry.payload.len(),
        reason: entry.parked,
    })
}

/// The unconfirmed deliveries of `sender`, by id.
///
/// # Errors
///
/// As [`senders`].
pub async fn pending(journal: &Arc<dyn Journal>, sender: &str) -> Result<Vec<StoredDelivery>> {
    stored(journal, sender, &outbox_ns(sender)).await
}

/// One page of [`pending`]: at most `limit` deliveries with ids above
/// `after` (from the first without it), by id, read without holding the
/// rest in memory.
///
/// # Errors
///
/// As [`senders`].
pub async fn pending_page(
    journal: &Arc<dyn Journal>,
    sender: &str,
    after: Option<DeliveryId>,
    limit: usize,
) -> Result<DeliveryPage> {
    stored_page(journal, sender, &outbox_ns(sender), after, limit).await
}

/// One page of [`parked`], as [`pending_page`] is of [`pending`].
///
/// # Errors
///
/// As [`senders`].
pub async fn parked_page(
    journal: &Arc<dyn Journal>,
    sender: &str,
    after: Option<DeliveryId>,
    limit: usize,
) -> Result<DeliveryPage> {
    stored_page(journal, sender, &parked_ns(sender), after, limit).await
}

/// The parked deliveries of `sender`, by id, with their reasons.
///
/// # Errors
///
/// As [`senders`].
pub async fn parked(journal: &Arc<dyn Journal>, sender: &str) -> Result<Vec<StoredDelivery>> {
    stored(journal, sender, &parked_ns(sender)).await
}

/// Every inbox recorded in `journal`, by receiver name.
///
/// # Errors
///
/// As [`senders`].
pub async fn inboxes(journal: &Arc<dyn Journal>) -> Result<Vec<InboxReport>> {
    let mut reports = Vec::new();
    for (key, value) in scan_all(journal, INBOX_IDS, INBOX_IDS).await? {
        let receiver = String::from_utf8(key).map_err(|_| Error::Corrupt {
            owner: INBOX_IDS.to_owned(),
            id: None,
            reason: "a receiver name that is not UTF-8".into(),
        })?;
        let (identity, _epoch) = parse_identity_record(&receiver, &value)?;
        let records = scan_all(journal, &receiver, &inbox_ns(&receiver)).await?;
        let senders = parse_inbox(&receiver, records)?
            .into_iter()
            .map(|(sender, window)| InboxSender {
                sender: sender.name,
                incarnation: sender.incarnation,
                watermark: window.watermark,
                kept: window.above.len() as u64,
            })
            .collect();
        reports.push(InboxReport {
            receiver,
            identity,
            senders,
        });
    }
    Ok(reports)
}

/// Moves parked delivery `id` of `sender` back into its outbox under a new
/// id (above every id the sender has used, so that a receiver that settled
/// the old id takes it as new), in one atomic write; the sender sends it
/// when it next starts, before new messages. If the receiver applied it
/// before but its acks were lost, it is applied again: re-queueing is
/// at-least-once, like the first attempt. Run it only while the sender is
/// not running (see the module docs).
///
/// # Errors
///
/// [`Error::NotParked`] for an id that is not parked, [`Error::Store`],
/// [`Error::Corrupt`].
pub async fn requeue_offline(
    journal: &Arc<dyn Journal>,
    sender: &str,
    id: DeliveryId,
) -> Result<DeliveryId> {
    let parked = journal
        .kv_get(&parked_ns(sender), &id_key(id))
        .await
        .map_err(store_error(sender))?
        .ok_or_else(|| Error::NotParked {
            sender: sender.to_owned(),
            id,
        })?;
    let mut entry: StoredEntry = decode(sender, id, &parked)?;
    entry.parked = None;
    let meta = load_meta(journal, sender)
        .await?
        .ok_or_else(|| Error::Corrupt {
            owner: sender.to_owned(),
            id: Some(id),
            reason: "a parked delivery of a sender without a sender record".into(),
        })?;
    // Above the high-water mark and above every id still stored.
    let mut next = meta.next_id;
    for namespace in [outbox_ns(sender), parked_ns(sender)] {
        if let Some((key, _)) = scan_all(journal, sender, &namespace).await?.last() {
            next = next.max(key_id(sender, key)?.0.saturating_add(1));
        }
    }
    let new_id = DeliveryId(next.max(1));
    let batch = WriteBatch::new()
        .put(
            outbox_ns(sender),
            id_key(new_id).to_vec(),
            crate::records::encode(sender, &entry)?,
        )
        .delete(parked_ns(sender), id_key(id).to_vec());
    let batch = put_meta(
        batch,
        sender,
        &SenderMeta {
            incarnation: meta.incarnation,
            next_id: new_id.0.saturating_add(1),
        },
    )?;
    journal.write(batch).await.map_err(store_error(sender))?;
    Ok(new_id)
}

/// Deletes parked delivery `id` of `sender` for good, raising the
/// sender's id mark above it in the same write.
///
/// # Errors
///
/// [`Error::NotParked`] for an id that is not parked, [`Error::Store`],
/// [`Error::Corrupt`].
pub async fn purge_offline(journal: &Arc<dyn Journal>, sender: &str, id: DeliveryId) -> Result<()> {
    let namespace = parked_ns(sender);
    let found = journal
        .kv_get(&namespace, &id_key(id))
        .await
        .map_err(store_error(sender))?;
    if found.is_none() {
        return Err(Error::NotParked {
            sender: sender.to_owned(),
            id,
        });
    }
    let mut batch = WriteBatch::new().delete(namespace, id_key(id).to_vec());
    // The parked record may be what keeps the sender's next id above ids a
    // receiver has settled (the writer leaves the mark alone while a
    // stored delivery is above what it deletes, and parking never writes
    // it): deleting it without the mark would let the sender hand those
    // ids out again, and the receiver ack them as duplicates unapplied.
    // Without a sender record the sender starts a new incarnation, whose
    // ids no receiver has seen.
    if let Some(meta) = load_meta(journal, sender).await? {
        if meta.next_id <= id.0 {
            batch = put_meta(
                batch,
                sender,
                &SenderMeta {
                    incarnation: meta.incarnation,
                    next_id: id.0.saturating_add(1),
                },
            )?;
        }
    }
    journal.write(batch).await.map_err(store_error(sender))
}
