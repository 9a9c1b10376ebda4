//! [`Cleaner`]: the one task that deletes a sender's records and moves its
//! id high-water mark.
//!
//! Deletes must never let the sender reuse an id after a restart: the next
//! id is recomputed on start from the highest id still stored (outbox or
//! parked) and from the mark in the sender's meta record. Every batch that
//! deletes records therefore also writes the mark, and one task writes all
//! of them, in order, so the mark on disk never goes down. It takes every
//! request waiting (group commit), so acks do not wait for one flush each.
//!
//! It also settles ids whose write ended in doubt: its own write is a
//! barrier (the store applies writes in order, so any write of that id that
//! was still in flight has landed), after which a read says for certain
//! whether the entry is durable.

use std::sync::Arc;
use std::time::Duration;

use courier_core::ActorRef;
use courier_persistence::WriteBatch;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::redeliverer::Signal;
use super::{Outgoing, Shared};
use crate::envelope::DeliveryId;
use crate::error::{Error, Result};
use crate::records::{
    SenderMeta, StoredEntry, decode, id_key, outbox_ns, parked_ns, put_meta, sender_inbox_ns,
};

/// How many requests one cleaner write takes at most.
const MAX_GROUP: usize = 4096;

/// What the cleaner is asked to do.
pub(super) enum Cleanup {
    /// Delete a confirmed delivery's outbox entry.
    Confirmed(DeliveryId),
    /// Delete a parked delivery for good; answers `NotParked` if it is not.
    Purge(DeliveryId, oneshot::Sender<Result<()>>),
    /// Find out whether these ids' entries are durable.
    Resolve(Vec<DeliveryId>),
    /// Remember the identity of the inbox that acks for a destination.
    Inbox(Arc<str>, Uuid),
}

pub(super) struct Cleaner<M> {
    shared: Arc<Shared<M>>,
    requests: mpsc::UnboundedReceiver<Cleanup>,
    /// Every id below this one may have been deleted: the mark on disk.
    high: u64,
}

impl<M: Outgoing> Cleaner<M> {
    pub(super) fn new(
        shared: Arc<Shared<M>>,
        requests: mpsc::UnboundedReceiver<Cleanup>,
        high: u64,
    ) -> Self {
        Self {
            shared,
            requests,
            high,
        }
    }

    /// Runs until the sender's child actor stops; what is queued then is
    /// still written.
    pub(super) async fn run(mut self, signals: ActorRef<Signal>) {
        let mut open = true;
        loop {
            let first = if open {
                tokio::select! {
                    next = self.requests.recv() => next,
                    () = signals.terminated() => {
                        open = false;
                        self.requests.close();
                        continue;
                    }
                }
            } else {
                self.requests.recv().await
            };
            let Some(first) = first else { return };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match self.requests.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.clean(group).await;
        }
    }

    async fn clean(&mut self, group: Vec<Cleanup>) {
        let shared = &self.shared;
        let name = &shared.sender.name;
        let mut batch = WriteBatch::new();
        let mut high = self.high;
        let mut confirmed = 0usize;
        let mut purges = Vec::new();
        let mut resolve = Vec::new();
        for request in group {
            match request {
                Cleanup::Confirmed(id) => {
                    batch = batch.delete(outbox_ns(name), id_key(id).to_vec());
                    high = high.max(id.0.saturating_add(1));
                    confirmed += 1;
                }
                Cleanup::Purge(id, done) => match shared.get(&parked_ns(name), id).await {
                    Ok(Some(_)) => {
                        batch = batch.delete(parked_ns(name), id_key(id).to_vec());
                        high = high.max(id.0.saturating_add(1));
                        purges.push(done);
                    }
                    Ok(None) => {
                        let _ = done.send(Err(Error::NotParked {
                            sender: name.clone(),
                            id,
                        }));
                    }
                    Err(e) => {
                        let _ = done.send(Err(e));
                    }
                },
                Cleanup::Resolve(ids) => resolve.extend(ids),
                Cleanup::Inbox(destination, inbox) => {
                    batch = batch.put(
                        sender_inbox_ns(name),
                        destination.as_bytes().to_vec(),
                        inbox.as_bytes().to_vec(),
                    );
                }
            }
        }
        let meta = SenderMeta {
            incarnation: shared.sender.incarnation,
            next_id: high,
        };
        let written = match put_meta(batch, name, &meta) {
            Ok(batch) => shared.write(batch).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                self.high = high;
                shared.metrics.unparked(purges.len(), false);
                for done in purges {
                    let _ = done.send(Ok(()));
                }
                self.resolve(resolve).await;
            }
            Err(e) => {
                if confirmed > 0 {
                    tracing::warn!(sender = %shared.sender, confirmed, error = %e, "could not delete confirmed deliveries; they will be sent once more and deduplicated");
                }
                let reason = e.to_string();
                for done in purges {
                    let _ = done.send(Err(Error::Store {
                        owner: name.clone(),
                        source: courier_persistence::Error::Storage(reason.clone().into()),
                    }));
                }
                // Still in doubt: the next tick asks again.
            }
        }
    }

    /// Settles ids in doubt now that every earlier write has landed.
    async fn resolve(&self, ids: Vec<DeliveryId>) {
        let shared = &self.shared;
        let name = &shared.sender.name;
        for id in ids {
            let found = match shared.get(&outbox_ns(name), id).await {
                Ok(Some(bytes)) => match decode::<StoredEntry>(name, id, &bytes) {
                    Ok(entry) => Some(entry),
                    Err(e) => {
                        tracing::error!(sender = %shared.sender, %id, error = %e, "a delivery whose write failed is stored but unreadable; it stays unsettled");
                        continue;
                    }
                },
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(sender = %shared.sender, %id, error = %e, "cannot check a delivery whose write failed; will check again");
                    continue;
                }
            };
            let mut state = shared.lock();
            match found {
                Some(entry) => {
                    tracing::info!(sender = %shared.sender, %id, "a delivery whose write reported failure is durable; sending it");
                    let destination = state.intern(&entry.destination);
                    state.outbox.resolve(
                        id,
                        Some((destination, (), Duration::from_millis(entry.created_ms))),
                    );
                }
                None => state.outbox.resolve::<Arc<str>>(id, None),
            }
        }
    }
}
