//! [`Deliverer`]: the sender side of at-least-once delivery.
//!
//! An actor starts a `Deliverer` in its `started` hook (or, when
//! event-sourced, in `recovery_completed`). The deliverer reloads the
//! sender's durable outbox, spawns its child actors (one owns the
//! redelivery timer, parking and acks; one takes acks from receivers and
//! nothing else) and a writer task, and redelivers every restored entry
//! before anything new. Its parent's handler then calls
//!
//! - [`deliver`](Deliverer::deliver): write the outbox entry (durable, that
//!   is flushed), then send; or
//! - [`prepare`](Deliverer::prepare) for an event-sourced sender: the entry's
//!   records go into the same atomic write as the actor's events
//!   (`Effect::with_writes`), and [`Prepared::send`] runs after it
//!   (`Effect::then`).
//!
//! The send path, step by step: resolve the destination (refuse a path that
//! cannot take `Delivery<M>`); reserve the next id (or fail with
//! [`Error::OutboxFull`]); write the entry and wait for its flush; insert it
//! into the outbox; send it (at-most-once). The ack path: the receiver's
//! [`Ack`] reaches the child actor, which confirms the id (a stale, foreign
//! or repeated ack changes nothing; an ack of a delivery it parked moments
//! before deletes the parked record) and hands the delete to the writer,
//! which writes deletes in order, in groups, with the sender's id
//! high-water mark when a delete needs it (see [`writer`]).
//!
//! Concurrent use: clones share one outbox, and deliveries from several
//! tasks share store writes (the sender's writer puts every entry waiting
//! into one write) and finish in any order. The `settled_below` mark sent
//! with each delivery covers only ids that can never be sent again, never
//! an id still being written, so out-of-order writes cannot make a receiver
//! skip a delivery.

mod deliver;
mod live_handle;
mod manual;
mod names;
mod prepared;
mod recently_parked;
mod recovery;
mod redeliverer;
mod transmit;
mod writer;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use courier_core::{Actor, ActorPath, ActorRef, ActorSystem, Context, Props};
use courier_persistence::{Journal, WriteBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::envelope::{Ack, Delivery, DeliveryId, SenderId};
use crate::error::{Error, Result};
use crate::metrics::SenderMetrics;
use crate::outbox::{Outbox, OutboxSettings};
use crate::records::{
    StoredEntry, decode, encode_entry, id_key, key_id, outbox_ns, parked_ns, scan_all,
    sender_inbox_ns,
};
use tracing::Instrument;

use recently_parked::RecentlyParked;
use redeliverer::{AckInbox, Redeliverer, Signal};
use transmit::Routes;
use writer::{Request, Writer};

pub use prepared::Prepared;

/// What a delivered message must be: stored in the outbox and sent again.
pub trait Outgoing: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Outgoing for T {}

/// Deliveries unconfirmed after `warn_after_attempts` sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnconfirmedWarning {
    /// The sender.
    pub sender: SenderId,
    /// The deliveries (id, destination, attempts so far), oldest first.
    pub deliveries: Vec<(DeliveryId, String, u32)>,
}

/// A delivery moved out of the outbox after running out of attempts or time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedDelivery<M> {
    /// Its id.
    pub id: DeliveryId,
    /// Where it was going.
    pub destination: String,
    /// The message; `None` when the stored bytes no longer decode as `M`
    /// (the message type changed, which is itself a reason to park): the
    /// entry is still listed, and can be purged.
    pub message: Option<M>,
    /// Why it was parked.
    pub reason: String,
}

/// One unconfirmed delivery, as [`Deliverer::pending`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDelivery {
    /// Its id.
    pub id: DeliveryId,
    /// Where it goes.
    pub destination: String,
    /// How often this incarnation of the deliverer sent it.
    pub attempts: u32,
    /// How long ago it was accepted.
    pub age: Duration,
    /// Why its last attempt could not be sent (no such actor, no resolver
    /// for the scheme, a full mailbox, ...), if it could not.
    pub last_error: Option<String>,
    /// It was restored after a restart.
    pub restored: bool,
}

type WarningHandler = Box<dyn Fn(UnconfirmedWarning) + Send + Sync>;

/// The outbox in memory keeps each delivery's schedule and destination but
/// not its message: the message is read back from the store when it is
/// sent again, so memory per unconfirmed delivery does not grow with the
/// message size.
struct State {
    outbox: Outbox<()>,
    /// One shared string per destination.
    destinations: HashMap<String, Arc<str>>,
    rng: fastrand::Rng,
    /// When the last "still unconfirmed" WARN was logged.
    last_warn: Option<Duration>,
    /// Per destination, the identity of the inbox whose acks came back.
    inboxes: HashMap<Arc<str>, Uuid>,
    /// The ids this sender parked last, for acks that come just after.
    recently_parked: RecentlyParked,
    /// The highest `settled_below` sent so far: a receiver may treat any
    /// id below it as done without applying it, so an ack of such an id
    /// that is not pending proves nothing.
    sent_settled_below: DeliveryId,
}

impl State {
    fn intern(&mut self, destination: &str) -> Arc<str> {
        if let Some(shared) = self.destinations.get(destination) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(destination);
        self.destinations
            .insert(destination.to_owned(), Arc::clone(&shared));
        shared
    }
}

/// The sender's namespaces in the store, built once.
struct Namespaces {
    outbox: String,
    parked: String,
    sender_inbox: String,
}

struct Shared<M> {
    sender: SenderId,
    ns: Namespaces,
    /// The actor that started the deliverer.
    owner: ActorPath,
    journal: Arc<dyn Journal>,
    system: ActorSystem,
    state: Mutex<State>,
    on_warning: Mutex<Option<WarningHandler>>,
    signals: OnceLock<ActorRef<Signal>>,
    acks: OnceLock<ActorRef<Ack>>,
    /// The sender's writer ([`writer`]): new entries, deletes, the id mark.
    writes: mpsc::UnboundedSender<Request>,
    /// New deliveries' writes in flight, refused once the sender stopped.
    writing: Arc<deliver::Writes>,
    /// Destinations resolved to references, so that a send does not parse
    /// and look up its path each time.
    routes: Mutex<Routes<M>>,
    clock: Clock,
    redelivered: AtomicU64,
    metrics: SenderMetrics,
    /// Held across each repair (`requeue`, `purge`): a requeue reads the
    /// parked entry, then moves it in a second write, so two repairs of one
    /// id at once could both succeed and send it twice.
    repairs: tokio::sync::Mutex<()>,
    message: PhantomData<fn() -> M>,
}

/// The sender side of at-least-once delivery for messages of type `M`.
/// Cheap to clone; all clones share one outbox and may deliver
/// concurrently.
pub struct Deliverer<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for Deliverer<M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M> std::fmt::Debug for Deliverer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deliverer({})", self.shared.sender)
    }
}

/// Wall-clock time that follows tokio's clock: starts at the system time and
/// advances with `tokio::time::Instant` (so paused test time applies).
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall: Duration,
    start: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Self {
            wall: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO),
            start: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> Duration {
        self.wall.saturating_add(self.start.elapsed())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<M: Outgoing> Deliverer<M> {
    /// Opens the outbox of the sender `name` in `journal`, spawns its child
    /// actors under the actor owning `ctx`, and starts redelivering what was
    /// unconfirmed. A sender seen for the first time gets a new incarnation
    /// (UUIDv7), durable before this returns.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSenderName`] for an empty name or one containing
    /// `'\0'` or `'/'`, [`Error::SenderNameTaken`] when another live sender
    /// of this actor system has the name, [`Error::Store`] or [`Error::Corrupt`] when the
    /// outbox cannot be read, [`Error::Spawn`] when its child actors cannot
    /// be spawned; nothing is sent then.
    pub async fn start<A: Actor>(
        ctx: &mut Context<A>,
        name: &str,
        journal: Arc<dyn Journal>,
        settings: OutboxSettings,
    ) -> Result<Self> {
        if name.is_empty() || name.contains(['\0', '/']) {
            return Err(Error::InvalidSenderName {
                name: name.to_owned(),
                reason: "a sender name must be non-empty, without '/' or NUL",
            });
        }
        let claim = names::claim(ctx.system(), name, ctx.path()).await?;
        let recovery::Recovered {
            meta,
            state,
            restored,
            parked,
        } = recovery::recover(&journal, name, &settings).await?;
        let (writes, requests) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            sender: SenderId {
                name: name.to_owned(),
                incarnation: meta.incarnation,
            },
            ns: Namespaces {
                outbox: outbox_ns(name),
                parked: parked_ns(name),
                sender_inbox: sender_inbox_ns(name),
            },
            owner: ctx.myself().path().clone(),
            journal,
            system: ctx.system().clone(),
            state: Mutex::new(state),
            on_warning: Mutex::new(None),
            signals: OnceLock::new(),
            acks: OnceLock::new(),
            writes,
            writing: Arc::default(),
            routes: Mutex::new(Routes::default()),
            clock: Clock::new(),
            redelivered: AtomicU64::new(0),
            metrics: SenderMetrics::new(name).with_parked(parked),
            repairs: tokio::sync::Mutex::new(()),
            message: PhantomData,
        });
        let spawn_failed = |source: courier_core::Error| Error::Spawn {
            sender: name.to_owned(),
            source,
        };
        let child = Arc::clone(&shared);
        let tick = settings.redelivery.tick();
        let signals = ctx
            .spawn(Props::new(move || {
                Redeliverer::new(Arc::clone(&child), tick)
            }))
            .map_err(spawn_failed)?;
        let forward = signals.clone();
        let acks = ctx
            .spawn(Props::new(move || AckInbox::new(forward.clone())))
            .map_err(spawn_failed)?;
        let _ = shared.signals.set(signals.clone());
        let _ = shared.acks.set(acks);
        let (alive, writer) = tokio::sync::watch::channel(());
        tokio::spawn(
            Writer::new(Arc::clone(&shared), requests, meta.next_id, alive).run(signals.clone()),
        );
        claim.started(signals.clone(), writer);
        live_handle::register(&shared, signals.clone());
        redeliverer::watch_refusals(&shared, signals);
        tracing::debug!(sender = %shared.sender, restored, "deliverer started");
        Ok(Self { shared })
    }

    /// The sender's name and incarnation.
    pub fn sender_id(&self) -> &SenderId {
        &self.shared.sender
    }

    /// The id the next accepted delivery will get (ids continue across
    /// restarts and are never reused).
    pub fn next_id(&self) -> DeliveryId {
        self.shared.lock().outbox.next_id()
    }

    /// How many deliveries await their ack, including those about to be
    /// parked and those whose write failed until a tick has found out
    /// whether they are durable after all.
    pub fn unconfirmed(&self) -> usize {
        let state = self.shared.lock();
        state.outbox.len() + state.outbox.in_doubt()
    }

    /// The unconfirmed deliveries with ids above `after` (`None`: from the
    /// first), oldest first, at most `limit`: pass the last id of a page as
    /// `after` to read the next.
    pub fn pending(&self, after: Option<DeliveryId>, limit: usize) -> Vec<PendingDelivery> {
        let now = self.shared.clock.now();
        let state = self.shared.lock();
        state
            .outbox
            .iter_after(after)
            .take(limit)
            .map(|(id, p)| PendingDelivery {
                id,
                destination: p.destination.to_string(),
                attempts: p.attempts,
                age: now.saturating_sub(p.created),
                last_error: p.last_error.as_deref().map(str::to_owned),
                restored: p.restored,
            })
            .collect()
    }

    /// How many times this deliverer sent a delivery again: a retry after
    /// no ack came in time, or an entry restored after a restart (which
    /// may have been sent before the restart). First sends do not count.
    pub fn redelivered(&self) -> u64 {
        self.shared.redelivered.load(Ordering::Relaxed)
    }

    /// Calls `handler` with each [`UnconfirmedWarning`] (they are also
    /// logged). Typically it tells the owning actor.
    pub fn on_warning(&self, handler: impl Fn(UnconfirmedWarning) + Send + Sync + 'static) {
        *courier_core::sync::lock(&self.shared.on_warning) = Some(Box::new(handler));
    }

    /// The parked deliveries, oldest first. One whose message no longer
    /// decodes is listed with `message: None`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when they cannot be read, [`Error::Corrupt`] when a
    /// record itself (not its message) is damaged.
    pub async fn parked(&self) -> Result<Vec<ParkedDelivery<M>>> {
        let name = &self.shared.sender.name;
        let mut parked = Vec::new();
        for (key, value) in scan_all(&self.shared.journal, name, &self.shared.ns.parked).await? {
            let id = key_id(name, &key)?;
            let stored: StoredEntry = decode(name, id, &value)?;
            parked.push(ParkedDelivery {
                id,
                destination: stored.destination,
                message: decode(name, id, &stored.payload).ok(),
                reason: stored.parked.unwrap_or_default(),
            });
        }
        Ok(parked)
    }

    /// Sends a parked delivery again, under a new id (its old id may be
    /// settled at the receiver already). If the receiver applied it before
    /// but its acks were lost, it is applied again: re-queueing is
    /// at-least-once, like the first attempt.
    ///
    /// # Errors
    ///
    /// [`Error::NotParked`] for an unknown id, [`Error::OutboxFull`],
    /// [`Error::InvalidDestination`], [`Error::Store`].
    pub async fn requeue(&self, id: DeliveryId) -> Result<DeliveryId> {
        let _one_at_a_time = self.shared.repairs.lock().await;
        let name = &self.shared.sender.name;
        let stored = self
            .shared
            .get(&self.shared.ns.parked, id)
            .await?
            .ok_or_else(|| Error::NotParked {
                sender: name.clone(),
                id,
            })?;
        let entry: StoredEntry = decode(name, id, &stored)?;
        let message: M = decode(name, id, &entry.payload)?;
        let mut prepared = self.prepare(&entry.destination, |_| message)?;
        let writes = std::mem::take(&mut prepared.writes)
            .delete(self.shared.ns.parked.clone(), id_key(id).to_vec());
        self.shared.submit(writes).await?;
        self.shared.metrics.unparked(1, true);
        // Its ack can no longer delete the parked record: there is none.
        self.shared.lock().recently_parked.remove(id);
        Ok(prepared.send())
    }

    /// Deletes a parked delivery for good.
    ///
    /// # Errors
    ///
    /// [`Error::NotParked`] for an id that is not parked (never parked,
    /// requeued or purged already); [`Error::Store`] when the delete cannot
    /// be written; [`Error::SenderStopped`] when the sender has stopped.
    pub async fn purge(&self, id: DeliveryId) -> Result<()> {
        let _one_at_a_time = self.shared.repairs.lock().await;
        self.shared.unpark(id).await?;
        self.shared.metrics.unparked(1, false);
        self.shared.lock().recently_parked.remove(id);
        Ok(())
    }
}

impl<M> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, State> {
        courier_core::sync::lock(&self.state)
    }

    fn store_error(&self, source: courier_persistence::Error) -> Error {
        Error::Store {
            owner: self.sender.name.clone(),
            source,
        }
    }

    fn outbox_full(&self, full: crate::outbox::OutboxFull) -> Error {
        Error::OutboxFull {
            sender: self.sender.name.clone(),
            max_unconfirmed: full.max_unconfirmed,
        }
    }

    /// Writes `batch` straight to the journal; `Ok` once it is flushed.
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.journal
            .write(batch)
            .await
            .map_err(|e| self.store_error(e))
    }

    /// Deletes the parked record of delivery `id` through the sender's
    /// writer (which raises the id mark when the delete needs it). The
    /// caller holds `repairs`.
    ///
    /// # Errors
    ///
    /// [`Error::NotParked`] when `id` is not parked, [`Error::Store`] when
    /// the delete cannot be written, [`Error::SenderStopped`] when the
    /// sender has stopped.
    async fn unpark(&self, id: DeliveryId) -> Result<()> {
        let (done, result) = oneshot::channel();
        let stopped = || Error::SenderStopped {
            path: self.owner.clone(),
        };
        self.writes
            .send(Request::Purge(id, done))
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    /// The record of delivery `id` in `namespace` (outbox or parked).
    async fn get(&self, namespace: &str, id: DeliveryId) -> Result<Option<Vec<u8>>> {
        self.journal
            .kv_get(namespace, &id_key(id))
            .await
            .map_err(|e| self.store_error(e))
    }

    /// The records of deliveries `ids` in `namespace`, in that order, read
    /// as one read where the journal can.
    async fn get_many(&self, namespace: &str, ids: &[DeliveryId]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id_key(*id).to_vec()).collect();
        self.journal
            .kv_get_many(namespace, &keys)
            .await
            .map_err(|e| self.store_error(e))
    }
}
