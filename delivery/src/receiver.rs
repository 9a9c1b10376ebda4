//! [`DedupInbox`]: the receiver side, so each delivery's effect is applied
//! once.
//!
//! A receiving actor opens its inbox in `started` (or, when event-sourced,
//! in `recovery_completed`) and, for each [`Delivery`]:
//!
//! 1. [`check`](DedupInbox::check): a [`Receipt::Duplicate`] is acked again
//!    and not applied;
//! 2. a [`Receipt::New`] one is applied, and its inbox record made durable:
//!    [`commit`](DedupInbox::commit) writes it alone; an event-sourced
//!    receiver puts [`record`](DedupInbox::record)'s writes into the same
//!    atomic write as its events (`Effect::with_writes`);
//! 3. only then is it acked ([`Delivery::send_ack`]).
//!
//! Effects kept in courier's journal are thus applied exactly once. An
//! effect outside it (an e-mail, another database) can be repeated if the
//! process dies between applying it and the inbox write: that is where
//! "exactly once" stops.
//!
//! The inbox is the state of one actor: open it in the actor's start hook,
//! so that a restarted actor reloads it from disk.

use std::sync::{Arc, Mutex, PoisonError};

use courier_persistence::{Journal, WriteBatch};

use crate::envelope::Delivery;
use crate::error::{Error, Result};
use crate::inbox::{Inbox, InboxChange, Receipt};
use crate::records::{done_key, inbox_ns, parse_inbox, scan_all, watermark_key};

/// A receiver's durable dedup state.
pub struct DedupInbox {
    name: String,
    journal: Arc<dyn Journal>,
    inbox: Mutex<Inbox>,
}

impl std::fmt::Debug for DedupInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DedupInbox({})", self.name)
    }
}

impl DedupInbox {
    /// Loads the inbox of receiver `name` from `journal`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Corrupt`] when it cannot be read.
    pub async fn open(journal: Arc<dyn Journal>, name: &str) -> Result<Self> {
        let records = scan_all(&journal, name, &inbox_ns(name)).await?;
        let mut inbox = Inbox::new();
        for (sender, window) in parse_inbox(name, records)? {
            inbox.restore(sender, window);
        }
        Ok(Self {
            name: name.to_owned(),
            journal,
            inbox: Mutex::new(inbox),
        })
    }

    /// Whether `delivery` is new or a duplicate.
    pub fn check<M>(&self, delivery: &Delivery<M>) -> Receipt {
        self.lock().check(&delivery.sender, delivery.id)
    }

    /// Marks `delivery` as applied and returns the records that say so, to
    /// be written atomically with the effect. Ack only after they are
    /// durable. If that write fails, stop the actor: its inbox in memory is
    /// ahead of the disk (a restart reloads it).
    pub fn record<M>(&self, delivery: &Delivery<M>) -> WriteBatch {
        let change = self
            .lock()
            .record(&delivery.sender, delivery.id, delivery.settled_below);
        self.writes(delivery, &change)
    }

    /// Marks `delivery` as applied, durably, then acks it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the write fails; nothing is acked then.
    pub async fn commit<M>(&self, delivery: &Delivery<M>) -> Result<()> {
        let batch = self.record(delivery);
        if !batch.is_empty() {
            self.journal
                .write(batch)
                .await
                .map_err(|source| Error::Store {
                    owner: self.name.clone(),
                    source,
                })?;
        }
        delivery.send_ack();
        Ok(())
    }

    /// Ids kept above the watermarks, over all senders (the inbox's size
    /// beyond one watermark per sender incarnation).
    pub fn kept(&self) -> usize {
        self.lock().kept()
    }

    /// How many sender incarnations the inbox knows.
    pub fn senders(&self) -> usize {
        self.lock().senders()
    }

    fn writes<M>(&self, delivery: &Delivery<M>, change: &InboxChange) -> WriteBatch {
        let ns = inbox_ns(&self.name);
        let mut batch = WriteBatch::new();
        if let Some(w) = change.watermark {
            batch = batch.put(
                ns.clone(),
                watermark_key(&delivery.sender),
                w.to_be_bytes().to_vec(),
            );
        }
        for id in &change.added {
            batch = batch.put(ns.clone(), done_key(&delivery.sender, *id), Vec::new());
        }
        for id in &change.removed {
            batch = batch.delete(ns.clone(), done_key(&delivery.sender, *id));
        }
        batch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
