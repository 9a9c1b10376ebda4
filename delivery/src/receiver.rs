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
//!    receiver puts [`prepare`](DedupInbox::prepare)'s writes into the same
//!    atomic write as its events (`Effect::with_writes`);
//! 3. only then is the inbox in memory changed and the delivery acked
//!    ([`InboxWrite::ack`], which `commit` calls for you).
//!
//! The inbox in memory never runs ahead of the disk: if the write fails,
//! nothing changed, and the redelivered message is new again. Effects kept
//! in courier's journal are thus applied exactly once. An effect outside it
//! (an e-mail, another database) can be repeated if the process dies
//! between applying it and the inbox write: that is where "exactly once"
//! stops.
//!
//! A receiver that lost its inbox notices: each inbox has an identity
//! (a UUIDv7 created with it), acks carry it, senders remember it per
//! destination and send it back with later deliveries. An inbox meeting a
//! delivery that expects another identity has lost history it had with that
//! sender, and [`prepare`](DedupInbox::prepare) refuses it with
//! [`Error::InboxLost`] rather than risk applying it twice. An operator who
//! accepts that risk opens the inbox with
//! [`open_adopting`](DedupInbox::open_adopting). Before a sender's first
//! ack from an inbox there is nothing to compare, so a loss in that window
//! is not detected.
//!
//! The inbox is the state of one actor: open it in the actor's start hook,
//! so that a restarted actor reloads it from disk. One inbox write is
//! outstanding at a time (an actor handles one message at a time, and an
//! event-sourced one handles no command while it persists); a second
//! [`prepare`](DedupInbox::prepare) before the first is acked or dropped is
//! refused, because two changes planned from the same state could reach
//! the disk out of order and move the watermark down. Concurrent
//! [`commit`](DedupInbox::commit)s and [`process`](DedupInbox::process)es
//! of one inbox (from tasks sharing it) share one write instead: whatever
//! is queued when the inbox's commit task takes its next group is planned
//! delivery after delivery, written as one atomic write (their effects and
//! the net change of the inbox records), applied once it is durable, and
//! acked; a failed write fails each of them, and none is applied or acked.

mod commits;
mod turns;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use courier_core::ActorRef;
use courier_persistence::{Journal, WriteBatch};
use uuid::Uuid;

use crate::envelope::{Ack, Delivery, SenderId};
use crate::error::{Error, Result};
use crate::inbox::{Inbox, InboxChange, Receipt};
use crate::metrics::InboxMetrics;
use crate::records::{
    INBOX_IDS, done_key, identity_record, inbox_alias_ns, inbox_ns, parse_identity,
    parse_identity_record, parse_inbox, scan_all, watermark_key,
};
use commits::Queue;
pub use commits::Submitted;

struct State {
    inbox: Inbox,
    /// An [`InboxWrite`] was prepared and is neither acked nor dropped.
    outstanding: bool,
    /// Identities of lost inboxes whose history this one adopted.
    aliases: HashSet<Uuid>,
    /// Senders already told about (at ERROR) since the inbox was opened.
    reported: HashSet<SenderId>,
    metrics: InboxMetrics,
}

/// A receiver's durable dedup state.
pub struct DedupInbox {
    pub(crate) core: Arc<Core>,
}

/// The inbox, shared with its commit task ([`commits`]).
pub(crate) struct Core {
    pub(crate) name: String,
    /// Its namespace in the store, built once.
    namespace: String,
    pub(crate) journal: Arc<dyn Journal>,
    identity: Uuid,
    /// Opened with `open_adopting`.
    adopting: bool,
    state: Mutex<State>,
    /// Commits waiting for the commit task.
    queue: Mutex<Queue>,
    /// Shared by every opening of this inbox in the process (see
    /// [`turns`]).
    turn: turns::Turn,
}

impl std::fmt::Debug for DedupInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DedupInbox({})", self.core.name)
    }
}

impl DedupInbox {
    /// Loads the inbox of receiver `name` from `journal`; a new inbox gets
    /// its identity, durable before this returns. Opened again in this
    /// process (a restarted actor's), it first waits for the commits of
    /// the earlier opening still in flight, so that it reads them.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Corrupt`] when it cannot be read or its
    /// identity cannot be written.
    pub async fn open(journal: Arc<dyn Journal>, name: &str) -> Result<Self> {
        Self::open_with(journal, name, false).await
    }

    /// [`open`](Self::open) for a receiver known to have lost its inbox,
    /// when the operator accepts the consequence: deliveries whose sender
    /// remembers another inbox identity are applied, and that identity is
    /// adopted (durably, so later plain opens accept it too). Deliveries
    /// that the lost inbox had applied but not yet confirmed are applied
    /// again. Logged at ERROR.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_adopting(journal: Arc<dyn Journal>, name: &str) -> Result<Self> {
        tracing::error!(
            receiver = name,
            "inbox opened adopting lost history: deliveries a lost inbox applied but the sender did not see confirmed will be applied again"
        );
        Self::open_with(journal, name, true).await
    }

    async fn open_with(journal: Arc<dyn Journal>, name: &str, adopting: bool) -> Result<Self> {
        let store_error = |source| Error::Store {
            owner: name.to_owned(),
            source,
        };
        // An earlier opening's commits land before this one reads, or
        // it would take their deliveries for new.
        let turn = turns::turn(&journal, name);
        let reading = Arc::clone(&turn).lock_owned().await;
        let records = scan_all(&journal, name, &inbox_ns(name)).await?;
        let mut inbox = Inbox::new();
        for (sender, window) in parse_inbox(name, records)? {
            inbox.restore(sender, window);
        }
        let epoch = courier_persistence::store_epoch(journal.as_ref())
            .await
            .map_err(store_error)?;
        let recorded = journal
            .kv_get(INBOX_IDS, name.as_bytes())
            .await
            .map_err(store_error)?
            .map(|bytes| parse_identity_record(name, &bytes))
            .transpose()?;
        let (identity, write) = match recorded {
            Some((old, Some(was))) if epoch.is_some_and(|now| now != was) => {
                // The store lost acknowledged writes (and the loss was
                // accepted): this inbox may have lost records. A new
                // identity makes senders that knew the old one be refused
                // until an operator adopts it.
                let fresh = Uuid::now_v7();
                tracing::error!(
                    receiver = name,
                    old_identity = %old,
                    new_identity = %fresh,
                    "the store lost acknowledged writes: this inbox takes a new identity and refuses senders that knew the old one until opened with DedupInbox::open_adopting"
                );
                (fresh, true)
            }
            // A record from before epochs learns the store's.
            Some((identity, was)) => (identity, was.is_none() && epoch.is_some()),
            None => (Uuid::now_v7(), true),
        };
        if write {
            let batch = WriteBatch::new().put(
                INBOX_IDS,
                name.as_bytes().to_vec(),
                identity_record(identity, epoch),
            );
            journal.write(batch).await.map_err(store_error)?;
        }
        let mut aliases = HashSet::new();
        for (key, _) in scan_all(&journal, name, &inbox_alias_ns(name)).await? {
            aliases.insert(parse_identity(name, &key)?);
        }
        drop(reading);
        Ok(Self {
            core: Arc::new(Core {
                name: name.to_owned(),
                namespace: inbox_ns(name),
                journal,
                identity,
                adopting,
                state: Mutex::new(State {
                    inbox,
                    outstanding: false,
                    aliases,
                    reported: HashSet::new(),
                    metrics: InboxMetrics::new(name),
                }),
                queue: Mutex::new(Queue::default()),
                turn,
            }),
        })
    }

    /// This inbox's identity: created with it, carried by its acks.
    pub fn identity(&self) -> Uuid {
        self.core.identity
    }

    /// Whether `delivery` is new or a duplicate.
    pub fn check<M>(&self, delivery: &Delivery<M>) -> Receipt {
        self.core.check(&lock(&self.core.state), delivery)
    }

    /// [`check`](Self::check), and a new delivery refused as
    /// [`prepare`](Self::prepare) would ([`Error::InboxLost`]), without
    /// planning anything, under one lock: done before an effect is built,
    /// so that a refused delivery's is never called.
    pub(crate) fn screen<M>(&self, delivery: &Delivery<M>) -> Result<Receipt> {
        let mut state = lock(&self.core.state);
        if self.core.check(&state, delivery) == Receipt::Duplicate {
            return Ok(Receipt::Duplicate);
        }
        self.core
            .admit(&mut state, &delivery.sender, delivery.expected_inbox)?;
        Ok(Receipt::New)
    }

    /// Plans marking `delivery` as applied, without changing the inbox:
    /// the returned [`InboxWrite`] holds the records to write atomically
    /// with the effect; once they are durable, [`InboxWrite::ack`] applies
    /// them to the inbox in memory and acks. Dropping it instead (the write
    /// failed) leaves the inbox as it was, so the redelivery is new again.
    ///
    /// Call it before applying an effect that is not part of its writes:
    /// a refused delivery must not be applied.
    ///
    /// # Errors
    ///
    /// [`Error::InboxLost`] when the delivery's sender remembers acks from
    /// another inbox identity (this inbox lost that history; logged at ERROR
    /// once per sender); [`Error::InboxBusy`] while another `InboxWrite` of
    /// this inbox is outstanding.
    pub fn prepare<M>(&self, delivery: &Delivery<M>) -> Result<InboxWrite> {
        let mut state = lock(&self.core.state);
        if state.outstanding {
            return Err(Error::InboxBusy {
                receiver: self.core.name.clone(),
            });
        }
        let adopt = self
            .core
            .admit(&mut state, &delivery.sender, delivery.expected_inbox)?;
        let change = state
            .inbox
            .plan(&delivery.sender, delivery.id, delivery.settled_below);
        state.outstanding = true;
        drop(state);
        let mut writes = self.core.writes(&delivery.sender, &change);
        if let Some(alias) = adopt {
            writes = writes.put(
                inbox_alias_ns(&self.core.name),
                alias.as_bytes().to_vec(),
                Vec::new(),
            );
        }
        let mut ack = delivery.ack();
        ack.inbox = Some(self.core.identity);
        Ok(InboxWrite {
            writes,
            core: Arc::clone(&self.core),
            sender: delivery.sender.clone(),
            change,
            adopt,
            ack,
            ack_to: delivery.ack_to.clone(),
            settled: false,
        })
    }

    /// Marks `delivery` as applied, durably, then acks it: plan, write,
    /// apply, ack. Concurrent calls (and [`process`](Self::process)es)
    /// share one write: see the module's documentation.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the write fails: nothing is acked and the
    /// inbox is unchanged, so a redelivery is new again.
    /// [`Error::InboxLost`] as [`prepare`](Self::prepare);
    /// [`Error::InboxBusy`] while an [`InboxWrite`] from
    /// [`prepare`](Self::prepare) is outstanding.
    ///
    /// # Cancel safety
    ///
    /// Once polled, the delivery is queued for the inbox's next write, and
    /// dropping the future does not take it back: if that write succeeds,
    /// the delivery is recorded and acked all the same; if it fails,
    /// nothing is acked and the inbox is unchanged. Dropped before its
    /// first poll, nothing happens.
    pub async fn commit<M>(&self, delivery: &Delivery<M>) -> Result<()> {
        let span = tracing::debug_span!(
            "courier.inbox.commit",
            receiver = %self.core.name,
            sender = %delivery.sender,
            id = %delivery.id,
            attempt = delivery.attempt,
        );
        self.core
            .commit(delivery, WriteBatch::new(), span)
            .await
            .map(|_| ())
    }

    /// Queues `delivery` (with its `effect` records) for the inbox's next
    /// write and returns at once, for a receiver that keeps what matters in
    /// courier's store and need not wait for each delivery to be durable
    /// before it takes the next: its commits then share flushes, where a
    /// receiver awaiting each [`commit`](Self::commit) gets one flush per
    /// delivery. The delivery is acked only once the write is durable, as
    /// with `commit`; a redelivery that arrives meanwhile is found a
    /// duplicate when its turn comes (acked, its effect not written).
    /// Check for duplicates first ([`check`](Self::check)), so that an
    /// applied delivery's effect is not even built.
    ///
    /// The returned [`Submitted`] resolves as [`process`](Self::process)
    /// would; it need not be awaited.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use courier::prelude::*;
    /// use courier::delivery::{DedupInbox, Delivery, Receipt};
    /// use courier::persistence::{Journal, WriteBatch};
    ///
    /// /// Keeps each order as a record; never waits for a flush.
    /// struct Orders {
    ///     journal: Arc<dyn Journal>,
    ///     inbox: Option<DedupInbox>,
    /// }
    ///
    /// impl Actor for Orders {
    ///     type Msg = Delivery<u64>;
    ///
    ///     async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
    ///         self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "orders").await?);
    ///         Ok(())
    ///     }
    ///
    ///     async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
    ///         let inbox = self.inbox.as_ref().ok_or("not started")?;
    ///         if inbox.check(&d) == Receipt::Duplicate {
    ///             d.send_ack();
    ///             return Ok(());
    ///         }
    ///         let order = WriteBatch::new().put("orders", d.message.to_be_bytes().to_vec(), Vec::new());
    ///         // Acked once durable, with whatever else is queued by then.
    ///         drop(inbox.submit(&d, order));
    ///         Ok(())
    ///     }
    /// }
    /// # fn main() {}
    /// ```
    pub fn submit<M>(&self, delivery: &Delivery<M>, effect: WriteBatch) -> Submitted {
        let span = tracing::debug_span!(
            "courier.inbox.commit",
            receiver = %self.core.name,
            sender = %delivery.sender,
            id = %delivery.id,
            attempt = delivery.attempt,
        );
        self.core.submit(delivery, effect, span)
    }

    /// Ids kept above the watermarks, over all senders (the inbox's size
    /// beyond one watermark per sender incarnation).
    pub fn kept(&self) -> usize {
        lock(&self.core.state).inbox.kept()
    }

    /// How many sender incarnations the inbox knows.
    pub fn senders(&self) -> usize {
        lock(&self.core.state).inbox.senders()
    }
}

impl Core {
    /// Checks that `sender` may deliver to this inbox: refuses it when it
    /// remembers acks from another inbox identity, unless this inbox was
    /// opened adopting (then returns the identity to adopt).
    /// Whether `delivery` is new to the inbox as `state` holds it; a
    /// duplicate is logged and counted.
    fn check<M>(&self, state: &State, delivery: &Delivery<M>) -> Receipt {
        let receipt = state.inbox.check(&delivery.sender, delivery.id);
        if receipt == Receipt::Duplicate {
            tracing::debug!(receiver = %self.name, sender = %delivery.sender, id = %delivery.id, attempt = delivery.attempt, "duplicate suppressed");
            state.metrics.duplicates.increment(1);
        }
        receipt
    }

    fn admit(
        &self,
        state: &mut State,
        sender: &SenderId,
        expected_inbox: Option<Uuid>,
    ) -> Result<Option<Uuid>> {
        match expected_inbox {
            Some(expected) if expected != self.identity && !state.aliases.contains(&expected) => {
                let first = state.reported.insert(sender.clone());
                if !self.adopting {
                    let lost = Error::InboxLost {
                        receiver: self.name.clone(),
                        sender: sender.clone(),
                        expected,
                        found: self.identity,
                    };
                    if first {
                        tracing::error!(error = %lost, "delivery refused");
                    }
                    return Err(lost);
                }
                if first {
                    tracing::error!(receiver = %self.name, %sender, %expected, "adopting the history of a lost inbox");
                }
                Ok(Some(expected))
            }
            _ => Ok(None),
        }
    }

    fn writes(&self, sender: &SenderId, change: &InboxChange) -> WriteBatch {
        let ns = &self.namespace;
        let mut batch = WriteBatch::new();
        if let Some(w) = change.watermark {
            batch = batch.put(ns.clone(), watermark_key(sender), w.to_be_bytes().to_vec());
        }
        for id in &change.added {
            batch = batch.put(ns.clone(), done_key(sender, *id), Vec::new());
        }
        for id in &change.removed {
            batch = batch.delete(ns.clone(), done_key(sender, *id));
        }
        batch
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    courier_core::sync::lock(state)
}

/// A planned inbox change: write [`writes`](Self::writes) (with the
/// effect), then call [`ack`](Self::ack). Dropped unacked, it changes
/// nothing.
#[must_use = "the inbox changes and the delivery is acked only by `ack`"]
pub struct InboxWrite {
    core: Arc<Core>,
    sender: SenderId,
    change: InboxChange,
    /// A lost inbox's identity this write adopts.
    adopt: Option<Uuid>,
    writes: WriteBatch,
    ack: Ack,
    ack_to: ActorRef<Ack>,
    settled: bool,
}

impl std::fmt::Debug for InboxWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InboxWrite({} {})", self.sender, self.ack.id)
    }
}

impl InboxWrite {
    /// The records to write atomically with the delivery's effect.
    pub fn writes(&self) -> WriteBatch {
        self.writes.clone()
    }

    /// The records are durable: applies the change to the inbox in memory,
    /// then acks the delivery.
    pub fn ack(self) {
        let (ack, ack_to) = (self.ack.clone(), self.ack_to.clone());
        self.apply();
        ack_to.tell(ack);
    }

    /// The records are durable: applies the change to the inbox in memory
    /// without acking (the caller acks later, with `Delivery::send_ack`).
    pub fn apply(mut self) {
        self.settled = true;
        let mut state = lock(&self.core.state);
        state.inbox.apply(&self.sender, &self.change);
        state.metrics.applied.increment(1);
        let kept = state.inbox.kept();
        state.metrics.kept.set(kept as f64);
        if let Some(alias) = self.adopt {
            state.aliases.insert(alias);
        }
        state.outstanding = false;
    }
}

impl Drop for InboxWrite {
    fn drop(&mut self) {
        if !self.settled {
            lock(&self.core.state).outstanding = false;
        }
    }
}
