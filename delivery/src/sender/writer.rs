//! [`Writer`]: the one task that writes a sender's records: new
//! deliveries' outbox entries, the deletes of confirmed and purged ones,
//! and its id mark.
//!
//! Everything waiting when the writer wakes goes into one store write (one
//! group commit): the entries of concurrent `deliver` calls of one sender
//! (clones of a deliverer; a delivery made while no other of the sender is
//! in flight goes straight to the store, with nothing to share a write
//! with), the deletes confirmed since the last write and any purges. A write does not wait for the previous one to
//! finish: writes are handed to the store one after another, in order (the
//! store applies them in the order it receives them), so callers that
//! arrive while one is being flushed join the store's next flush, as they
//! would writing on their own. Confirmed deletes are not urgent (a lost one
//! means one more redelivery, which the receiver deduplicates): they wait
//! for the next write, and are written on their own only once no write is
//! in flight.
//!
//! The id mark: after a restart the next id is taken from above the
//! highest id still stored and above the mark in the sender's meta record.
//! A write that deletes records writes the mark only when no pending
//! delivery above them stays stored ([`Outbox::needs_mark`]), so ids are
//! never handed out twice, and a sender whose deliveries are confirmed in
//! order while newer ones are pending never rewrites it. The marks go to
//! the store in the order they rise, so the mark on disk never goes down.
//!
//! It also settles ids whose write ended in doubt: its own write is a
//! barrier (every write handed to the store before it has landed when it
//! returns), after which a read says for certain whether the entry is
//! durable.
//!
//! A failed write fails every caller in it with [`Error::Store`]; their
//! deliveries are not sent (and stay in doubt until a tick reads whether
//! the write landed after all).
//!
//! [`Outbox::needs_mark`]: crate::outbox::Outbox::needs_mark

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use courier_core::ActorRef;
use courier_persistence::WriteBatch;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::redeliverer::Signal;
use super::{Outgoing, Shared};
use crate::envelope::DeliveryId;
use crate::error::{Error, Result, copy_store_error};
use crate::records::{SenderMeta, StoredEntry, decode, id_key, put_meta};

/// How many requests one write takes at most.
const MAX_GROUP: usize = 4096;
/// How many times the writer yields, at most, before writing deletes on
/// their own, to let a delivery they can ride with arrive.
const LINGER_ROUNDS: usize = 4;

/// What the writer is asked to do.
pub(super) enum Request {
    /// Write new deliveries' records; answers once they are durable.
    Deliver(WriteBatch, oneshot::Sender<Result<()>>),
    /// Delete a confirmed delivery's outbox entry.
    Confirmed(DeliveryId),
    /// Delete a parked delivery for good; answers `NotParked` if it is not.
    Purge(DeliveryId, oneshot::Sender<Result<()>>),
    /// Find out whether these ids' entries are durable.
    Resolve(Vec<DeliveryId>),
    /// Remember the identity of the inbox that acks for a destination.
    Inbox(Arc<str>, Uuid),
    /// Write what waits now; answer once every write before has returned.
    Flush(oneshot::Sender<()>),
}

/// Requests taken, not yet written.
#[derive(Default)]
struct Group {
    deliveries: Vec<(WriteBatch, oneshot::Sender<Result<()>>)>,
    confirmed: Vec<DeliveryId>,
    /// Parked ids found stored, to delete.
    purges: Vec<(DeliveryId, oneshot::Sender<Result<()>>)>,
    resolve: Vec<DeliveryId>,
    inboxes: Vec<(Arc<str>, Uuid)>,
    flushes: Vec<oneshot::Sender<()>>,
    len: usize,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a caller waits for it (or a tick, for a resolve).
    fn is_urgent(&self) -> bool {
        !self.deliveries.is_empty()
            || !self.purges.is_empty()
            || !self.resolve.is_empty()
            || !self.flushes.is_empty()
    }
}

/// What to answer once a write returns.
struct Answer {
    deliveries: Vec<oneshot::Sender<Result<()>>>,
    purges: Vec<oneshot::Sender<Result<()>>>,
    confirmed: usize,
    resolve: Vec<DeliveryId>,
    flushes: Vec<oneshot::Sender<()>>,
}

type WriteFuture = Pin<Box<dyn Future<Output = courier_persistence::Result<()>> + Send>>;

/// Writes handed to the store, oldest first.
#[derive(Default)]
struct InFlight(VecDeque<(WriteFuture, Answer)>);

impl InFlight {
    /// The next write that returned. Polls them oldest first, so that each
    /// reaches the store's queue after every write submitted before it.
    fn poll_done(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<(Answer, courier_persistence::Result<()>)> {
        for i in 0..self.0.len() {
            if let Poll::Ready(result) = self.0[i].0.as_mut().poll(cx) {
                if let Some((_, answer)) = self.0.remove(i) {
                    return Poll::Ready((answer, result));
                }
            }
        }
        Poll::Pending
    }

    async fn done(&mut self) -> (Answer, courier_persistence::Result<()>) {
        std::future::poll_fn(|cx| self.poll_done(cx)).await
    }
}

pub(super) struct Writer<M> {
    shared: Arc<Shared<M>>,
    requests: mpsc::UnboundedReceiver<Request>,
    /// Dropped when the writer ends: the sender's name is free again only
    /// then (see `names`), once nothing of this sender can still land.
    _alive: watch::Sender<()>,
    /// The mark in the last write handed to the store.
    high: u64,
    group: Group,
    in_flight: InFlight,
}

impl<M: Outgoing> Writer<M> {
    pub(super) fn new(
        shared: Arc<Shared<M>>,
        requests: mpsc::UnboundedReceiver<Request>,
        high: u64,
        alive: watch::Sender<()>,
    ) -> Self {
        Self {
            shared,
            requests,
            _alive: alive,
            high,
            group: Group::default(),
            in_flight: InFlight::default(),
        }
    }

    /// Runs until the sender's child actor stops; what is queued then is
    /// still written, and every write in flight answered. New deliveries
    /// are refused from the stop on, and the writer ends only once none
    /// that went straight to the store is in flight.
    pub(super) async fn run(mut self, signals: ActorRef<Signal>) {
        let mut open = true;
        // Whether `recv` has answered `None`: closed (or every sender gone)
        // and nothing left, not even a request whose send was in flight at
        // the close. `is_empty` cannot tell: it is `true` while such a send
        // is accepted but not yet queued, and that request would be lost.
        let mut drained = false;
        let stopped = signals.terminated();
        tokio::pin!(stopped);
        loop {
            let woke = tokio::select! {
                done = self.in_flight.done(), if !self.in_flight.0.is_empty() => {
                    self.finish(done.0, done.1).await;
                    None
                }
                next = self.requests.recv(), if !drained => {
                    drained = next.is_none();
                    next
                }
                () = &mut stopped, if open => {
                    open = false;
                    self.shared.writing.refuse();
                    self.requests.close();
                    None
                }
                else => break,
            };
            if let Some(request) = woke {
                self.take(request).await;
            }
            self.take_waiting().await;
            if self.group.is_urgent() || !open {
                self.submit();
            } else if !self.group.is_empty() && self.in_flight.0.is_empty() {
                self.linger().await;
                self.submit();
            }
            if !open && drained && self.group.is_empty() && self.in_flight.0.is_empty() {
                break;
            }
        }
        self.shared.writing.stop().await;
    }

    /// Takes what is queued, up to a group's worth.
    async fn take_waiting(&mut self) {
        while self.group.len < MAX_GROUP {
            match self.requests.try_recv() {
                Ok(request) => self.take(request).await,
                Err(_) => break,
            }
        }
    }

    /// Gives deliveries that a caller is about to make a moment to join
    /// deletes that would otherwise be written on their own.
    async fn linger(&mut self) {
        for _ in 0..LINGER_ROUNDS {
            tokio::task::yield_now().await;
            self.take_waiting().await;
            if self.group.is_urgent() {
                return;
            }
        }
    }

    async fn take(&mut self, request: Request) {
        let shared = &self.shared;
        let group = &mut self.group;
        group.len += 1;
        match request {
            Request::Deliver(writes, done) => group.deliveries.push((writes, done)),
            Request::Confirmed(id) => group.confirmed.push(id),
            Request::Purge(id, done) => match shared.get(&shared.ns.parked, id).await {
                Ok(Some(_)) => group.purges.push((id, done)),
                Ok(None) => {
                    let _ = done.send(Err(Error::NotParked {
                        sender: shared.sender.name.clone(),
                        id,
                    }));
                }
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Request::Resolve(ids) => group.resolve.extend(ids),
            Request::Inbox(destination, inbox) => group.inboxes.push((destination, inbox)),
            Request::Flush(done) => group.flushes.push(done),
        }
    }

    /// Hands everything taken to the store as one write.
    fn submit(&mut self) {
        if self.group.is_empty() {
            return;
        }
        let Group {
            deliveries,
            confirmed,
            purges,
            resolve,
            inboxes,
            flushes,
            len: _,
        } = std::mem::take(&mut self.group);
        let shared = &self.shared;
        let ns = &shared.ns;
        let mut batch = WriteBatch::new();
        let mut answer = Answer {
            deliveries: Vec::with_capacity(deliveries.len()),
            purges: Vec::with_capacity(purges.len()),
            confirmed: confirmed.len(),
            resolve,
            flushes,
        };
        for (writes, done) in deliveries {
            batch.extend(writes);
            answer.deliveries.push(done);
        }
        let mut deleted: Option<DeliveryId> = None;
        for id in confirmed {
            batch = batch.delete(ns.outbox.clone(), id_key(id).to_vec());
            deleted = deleted.max(Some(id));
        }
        for (id, done) in purges {
            batch = batch.delete(ns.parked.clone(), id_key(id).to_vec());
            deleted = deleted.max(Some(id));
            answer.purges.push(done);
        }
        for (destination, inbox) in inboxes {
            batch = batch.put(
                ns.sender_inbox.clone(),
                destination.as_bytes().to_vec(),
                inbox.as_bytes().to_vec(),
            );
        }
        let mark = match deleted {
            Some(id) if shared.lock().outbox.needs_mark(id) => {
                Some(self.high.max(id.0.saturating_add(1)))
            }
            // A resolve or a flush needs a write to wait behind.
            _ if batch.is_empty() => Some(self.high),
            _ => None,
        };
        if let Some(next_id) = mark {
            let meta = SenderMeta {
                incarnation: shared.sender.incarnation,
                next_id,
            };
            batch = match put_meta(batch, &shared.sender.name, &meta) {
                Ok(batch) => batch,
                Err(e) => {
                    // Only an unencodable meta record gets here, which a
                    // u64 and a UUID never are; fail the callers anyway.
                    tracing::error!(sender = %shared.sender, error = %e, "cannot encode the sender's id mark");
                    let e = courier_persistence::Error::Storage(e.to_string().into());
                    self.answer_failed(answer, &e);
                    return;
                }
            };
            self.high = next_id;
        }
        let journal = Arc::clone(&shared.journal);
        let write: WriteFuture = Box::pin(async move { journal.write(batch).await });
        self.in_flight.0.push_back((write, answer));
    }

    async fn finish(&mut self, mut answer: Answer, result: courier_persistence::Result<()>) {
        for done in answer.flushes.drain(..) {
            let _ = done.send(());
        }
        match result {
            Ok(()) => {
                for done in answer.deliveries {
                    let _ = done.send(Ok(()));
                }
                for done in answer.purges {
                    let _ = done.send(Ok(()));
                }
                self.resolve(answer.resolve).await;
            }
            Err(e) => {
                let shared = &self.shared;
                if answer.confirmed > 0 {
                    tracing::warn!(sender = %shared.sender, confirmed = answer.confirmed, error = %e, "could not delete confirmed deliveries; they will be sent once more and deduplicated");
                }
                if !answer.deliveries.is_empty() {
                    tracing::warn!(sender = %shared.sender, deliveries = answer.deliveries.len(), error = %e, "could not write new deliveries; none of them is sent");
                }
                // Resolves stay in doubt: the next tick asks again.
                self.answer_failed(answer, &e);
            }
        }
    }

    /// Fails every caller of a write, each with its own copy of the error.
    fn answer_failed(&self, answer: Answer, error: &courier_persistence::Error) {
        let name = &self.shared.sender.name;
        let failed = || Error::Store {
            owner: name.clone(),
            source: copy_store_error(error),
        };
        for done in answer.deliveries.into_iter().chain(answer.purges) {
            let _ = done.send(Err(failed()));
        }
    }

    /// Settles ids in doubt now that every earlier write has landed.
    async fn resolve(&mut self, ids: Vec<DeliveryId>) {
        let shared = &self.shared;
        let name = &shared.sender.name;
        for id in ids {
            let found = match shared.get(&shared.ns.outbox, id).await {
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
