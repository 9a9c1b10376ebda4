//! Rebuilding a sender from its store on start: its identity, its
//! unconfirmed deliveries, the inboxes it remembers, and the next id.
//!
//! The sender's incarnation is tied to the store's epoch. A store that lost
//! acknowledged writes and was opened accepting the loss has a new epoch;
//! the sender's records may then be older than what it had sent (ids it
//! used may come back as unused), so it starts a new incarnation, whose ids
//! no receiver has seen, and parks what its outbox still held from the old
//! one: sending it again under either incarnation could apply it twice or
//! not at all, so an operator decides (`requeue` or `purge`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use courier_persistence::{Journal, WriteBatch};
use uuid::Uuid;

use super::State;
use super::recently_parked::RecentlyParked;
use crate::envelope::DeliveryId;
use crate::error::{Error, Result};
use crate::outbox::{Outbox, OutboxSettings};
use crate::records::{
    SENDER_EPOCHS, SenderMeta, StoredEntry, decode, encode, id_key, key_id, load_meta, outbox_ns,
    parked_ns, parse_identity, put_meta, scan_all, sender_inbox_ns,
};

/// A sender as its store holds it.
pub(super) struct Recovered {
    pub(super) meta: SenderMeta,
    pub(super) state: State,
    pub(super) restored: usize,
    /// Deliveries in the parked store, including any parked just now.
    pub(super) parked: usize,
}

pub(super) async fn recover(
    journal: &Arc<dyn Journal>,
    name: &str,
    settings: &OutboxSettings,
) -> Result<Recovered> {
    let store_error = |source| Error::Store {
        owner: name.to_owned(),
        source,
    };
    let epoch = courier_persistence::store_epoch(journal.as_ref())
        .await
        .map_err(store_error)?;
    let recorded_epoch = journal
        .kv_get(SENDER_EPOCHS, name.as_bytes())
        .await
        .map_err(store_error)?
        .map(|bytes| parse_identity(name, &bytes))
        .transpose()?;
    let mut state = State {
        outbox: Outbox::new(settings.clone()),
        destinations: HashMap::new(),
        rng: fastrand::Rng::new(),
        last_warn: None,
        inboxes: HashMap::new(),
        recently_parked: RecentlyParked::default(),
        sent_settled_below: DeliveryId(0),
    };
    for (key, value) in scan_all(journal, name, &sender_inbox_ns(name)).await? {
        let destination = String::from_utf8(key).map_err(|_| Error::Corrupt {
            owner: name.to_owned(),
            id: None,
            reason: "a remembered inbox under a non-UTF-8 destination".into(),
        })?;
        let identity = parse_identity(name, &value)?;
        let destination = state.intern(&destination);
        state.inboxes.insert(destination, identity);
    }
    let mut entries = Vec::new();
    for (key, value) in scan_all(journal, name, &outbox_ns(name)).await? {
        let id = key_id(name, &key)?;
        // The message itself is decoded when it is sent; one that no
        // longer decodes is parked then.
        let stored: StoredEntry = decode(name, id, &value)?;
        entries.push((id, stored));
    }
    // Ids are never reused: the next one is above every id the store still
    // holds, outbox or parked, and above the writer's mark for the ones it
    // deleted.
    let parked = scan_all(journal, name, &parked_ns(name)).await?;
    let mut parked_count = parked.len();
    let parked_above = parked
        .last()
        .map(|(key, _)| key_id(name, key))
        .transpose()?
        .map_or(1, |id| id.0.saturating_add(1));
    let outbox_above = entries.last().map_or(1, |(id, _)| id.0.saturating_add(1));
    let existing = load_meta(journal, name).await?;
    let next_id = existing
        .as_ref()
        .map_or(1, |m| m.next_id)
        .max(parked_above)
        .max(outbox_above);

    let mut batch = WriteBatch::new();
    let meta = match existing {
        Some(meta) => match (recorded_epoch, epoch) {
            (Some(recorded), Some(current)) if recorded != current => {
                let fresh = SenderMeta {
                    incarnation: Uuid::now_v7(),
                    next_id,
                };
                tracing::error!(
                    sender = name,
                    old_incarnation = %meta.incarnation,
                    new_incarnation = %fresh.incarnation,
                    parked = entries.len(),
                    "the store lost acknowledged writes and was opened accepting the loss: the sender starts a new incarnation and parks what its outbox held (Deliverer::parked lists it; requeue sends it again, which may apply it twice)"
                );
                parked_count += entries.len();
                for (id, mut entry) in entries.drain(..) {
                    entry.parked = Some(format!(
                        "accepted under incarnation {} before the store lost acknowledged writes (epoch {recorded} → {current}); it may or may not have been applied",
                        meta.incarnation
                    ));
                    batch = batch.delete(outbox_ns(name), id_key(id).to_vec()).put(
                        parked_ns(name),
                        id_key(id),
                        encode(name, &entry)?,
                    );
                }
                batch = put_meta(batch, name, &fresh)?;
                fresh
            }
            _ => meta,
        },
        None => {
            let meta = SenderMeta {
                incarnation: Uuid::now_v7(),
                next_id,
            };
            batch = put_meta(batch, name, &meta)?;
            meta
        }
    };
    if let Some(current) = epoch {
        if recorded_epoch != Some(current) {
            batch = batch.put(
                SENDER_EPOCHS,
                name.as_bytes().to_vec(),
                current.as_bytes().to_vec(),
            );
        }
    }
    if !batch.is_empty() {
        journal.write(batch).await.map_err(store_error)?;
    }
    let restored = entries.len();
    let entries: Vec<_> = entries
        .into_iter()
        .map(|(id, stored)| {
            (
                id,
                state.intern(&stored.destination),
                (),
                Duration::from_millis(stored.created_ms),
            )
        })
        .collect();
    state.outbox.restore(DeliveryId(next_id), entries);
    Ok(Recovered {
        meta,
        state,
        restored,
        parked: parked_count,
    })
}
