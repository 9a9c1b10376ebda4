//! [`Deliverer`]: the sender side of at-least-once delivery.
//!
//! An actor starts a `Deliverer` in its `started` hook (or, when
//! event-sourced, in `recovery_completed`). The deliverer reloads the
//! sender's durable outbox, spawns a child actor that owns the redelivery
//! timer and receives acks, and redelivers every restored entry before
//! anything new. Its parent's handler then calls
//!
//! - [`deliver`](Deliverer::deliver): write the outbox entry (durable, that
//!   is flushed), then send; or
//! - [`prepare`](Deliverer::prepare) for an event-sourced sender: the entry's
//!   records go into the same atomic write as the actor's events
//!   (`Effect::with_writes`), and [`Prepared::send`] runs after it
//!   (`Effect::then`).
//!
//! The send path, step by step: reserve the next id (or fail with
//! [`Error::OutboxFull`]); write the entry and the sender's next id in one
//! batch and wait for its flush; insert it into the outbox; send it
//! (at-most-once). The ack path: the receiver's [`Ack`] reaches the child
//! actor, which confirms the id (a stale, foreign or repeated ack changes
//! nothing) and deletes the entry; that delete is not awaited, because a lost
//! delete only causes one more redelivery, which the receiver deduplicates.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use courier_core::{
    Actor, ActorPath, ActorRef, ActorSystem, BoxError, Context, DeadLetter, DeadLetterReason, Props,
};
use courier_persistence::{Journal, WriteBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::envelope::{Ack, Delivery, DeliveryId, SenderId};
use crate::error::{Error, Result};
use crate::outbox::{Confirmation, Dispatch, Outbox, OutboxSettings};
use crate::records::{
    SenderMeta, StoredEntry, decode, encode, id_key, key_id, load_meta, outbox_ns, parked_ns,
    put_meta, scan_all,
};

/// What a delivered message must be: stored in the outbox and sent again.
pub trait Outgoing: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Outgoing for T {}

/// What the sender's child actor receives: acks from receivers, and its own
/// redelivery timer. Serializable, so that acks can come back from another
/// node.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub enum SenderSignal {
    /// A receiver's acknowledgement.
    Ack(Ack),
    /// Time to send overdue deliveries.
    Redeliver,
    /// A remote node refused delivery `id` for good (its message does not
    /// decode there): park it now rather than retry it forever.
    Rejected {
        /// The delivery.
        id: DeliveryId,
        /// Why, as the receiving node said.
        reason: String,
    },
}

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
    /// The message.
    pub message: M,
    /// Why it was parked.
    pub reason: String,
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

struct Shared<M> {
    sender: SenderId,
    journal: Arc<dyn Journal>,
    system: ActorSystem,
    state: Mutex<State>,
    on_warning: Mutex<Option<WarningHandler>>,
    signals: OnceLock<ActorRef<SenderSignal>>,
    clock: Clock,
    redelivered: AtomicU64,
    message: PhantomData<fn() -> M>,
}

/// The sender side of at-least-once delivery for messages of type `M`.
/// Cheap to clone; all clones share one outbox.
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
        self.wall + self.start.elapsed()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<M: Outgoing> Deliverer<M> {
    /// Opens the outbox of the sender `name` in `journal`, spawns its child
    /// actor under the actor owning `ctx`, and starts redelivering what was
    /// unconfirmed. A sender seen for the first time gets a new incarnation
    /// (UUIDv7), durable before this returns.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDestination`] for an empty name or one containing
    /// `'\0'` or `'/'`, [`Error::Store`] or [`Error::Corrupt`] when the
    /// outbox cannot be read; nothing is sent then.
    pub async fn start<A: Actor>(
        ctx: &mut Context<A>,
        name: &str,
        journal: Arc<dyn Journal>,
        settings: OutboxSettings,
    ) -> Result<Self> {
        if name.is_empty() || name.contains(['\0', '/']) {
            return Err(Error::InvalidDestination {
                destination: name.to_owned(),
                reason: "a sender name must be non-empty, without '/' or NUL".into(),
            });
        }
        let meta = match load_meta(&journal, name).await? {
            Some(meta) => meta,
            None => {
                let meta = SenderMeta {
                    incarnation: Uuid::now_v7(),
                    next_id: 1,
                };
                let batch = put_meta(WriteBatch::new(), name, &meta)?;
                journal.write(batch).await.map_err(|source| Error::Store {
                    owner: name.to_owned(),
                    source,
                })?;
                meta
            }
        };
        let mut state = State {
            outbox: Outbox::new(settings.clone()),
            destinations: HashMap::new(),
            rng: fastrand::Rng::new(),
        };
        let mut entries = Vec::new();
        for (key, value) in scan_all(&journal, name, &outbox_ns(name)).await? {
            let id = key_id(name, &key)?;
            // The message itself is decoded when it is sent; one that no
            // longer decodes is parked then.
            let stored: StoredEntry = decode(name, id, &value)?;
            entries.push((
                id,
                state.intern(&stored.destination),
                (),
                Duration::from_millis(stored.created_ms),
            ));
        }
        let restored = entries.len();
        state.outbox.restore(DeliveryId(meta.next_id), entries);
        let shared = Arc::new(Shared {
            sender: SenderId {
                name: name.to_owned(),
                incarnation: meta.incarnation,
            },
            journal,
            system: ctx.system().clone(),
            state: Mutex::new(state),
            on_warning: Mutex::new(None),
            signals: OnceLock::new(),
            clock: Clock::new(),
            redelivered: AtomicU64::new(0),
            message: PhantomData,
        });
        let child = Arc::clone(&shared);
        let tick = settings.redelivery.tick();
        let signals = ctx
            .spawn(Props::new(move || Redeliverer {
                shared: Arc::clone(&child),
                tick,
            }))
            .map_err(|e| Error::InvalidDestination {
                destination: name.to_owned(),
                reason: format!("cannot spawn the sender's child actor: {e}"),
            })?;
        let _ = shared.signals.set(signals.clone());
        watch_rejections(&shared, signals);
        tracing::debug!(sender = %shared.sender, restored, "deliverer started");
        Ok(Self { shared })
    }

    /// The sender's name and incarnation.
    pub fn sender_id(&self) -> &SenderId {
        &self.shared.sender
    }

    /// The id the next accepted delivery will get (ids are gap-free from 1,
    /// and continue across restarts).
    pub fn next_id(&self) -> DeliveryId {
        self.shared.lock().outbox.next_id()
    }

    /// How many deliveries await their ack.
    pub fn unconfirmed(&self) -> usize {
        self.shared.lock().outbox.len()
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
        *self
            .shared
            .on_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(handler));
    }

    /// Delivers at least once: numbers the message (`make` gets its id),
    /// makes the outbox entry durable, then sends it. Returns once the entry
    /// is flushed.
    ///
    /// # Errors
    ///
    /// [`Error::OutboxFull`] when `max_unconfirmed` deliveries are pending
    /// (back-pressure: nothing was accepted); [`Error::InvalidDestination`]
    /// for a path that does not parse; [`Error::Store`] when the write
    /// failed (nothing was accepted, nothing sent).
    pub async fn deliver(
        &self,
        destination: &str,
        make: impl FnOnce(DeliveryId) -> M,
    ) -> Result<DeliveryId> {
        let mut prepared = self.prepare(destination, make)?;
        self.shared
            .write(std::mem::take(&mut prepared.writes))
            .await?;
        Ok(prepared.send())
    }

    /// The first half of [`deliver`](Self::deliver), for a sender whose own
    /// state is event-sourced: numbers the message and returns the records
    /// to write atomically with its events. Call [`Prepared::send`] once
    /// they are durable; dropping the `Prepared` unsent gives the id back.
    ///
    /// # Errors
    ///
    /// As [`deliver`](Self::deliver), apart from the write.
    pub fn prepare(
        &self,
        destination: &str,
        make: impl FnOnce(DeliveryId) -> M,
    ) -> Result<Prepared<M>> {
        ActorPath::parse(destination).map_err(|e| Error::InvalidDestination {
            destination: destination.to_owned(),
            reason: e.to_string(),
        })?;
        let name = &self.shared.sender.name;
        let mut state = self.shared.lock();
        let id = state.outbox.reserve().map_err(|full| Error::OutboxFull {
            sender: name.clone(),
            max_unconfirmed: full.max_unconfirmed,
        })?;
        let message = make(id);
        let now = self.shared.clock.now();
        let built = (|| {
            let entry = StoredEntry {
                destination: destination.to_owned(),
                created_ms: millis(now),
                payload: encode(name, &message)?,
                parked: None,
            };
            let meta = SenderMeta {
                incarnation: self.shared.sender.incarnation,
                next_id: id.0 + 1,
            };
            let batch = WriteBatch::new().put(outbox_ns(name), id_key(id), encode(name, &entry)?);
            put_meta(batch, name, &meta)
        })();
        match built {
            Ok(writes) => Ok(Prepared {
                shared: Arc::clone(&self.shared),
                id,
                destination: state.intern(destination),
                message: Some(message),
                writes,
                created: now,
            }),
            Err(e) => {
                state.outbox.cancel(id);
                Err(e)
            }
        }
    }

    /// The parked deliveries, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Corrupt`] when they cannot be read.
    pub async fn parked(&self) -> Result<Vec<ParkedDelivery<M>>> {
        let name = &self.shared.sender.name;
        let mut parked = Vec::new();
        for (key, value) in scan_all(&self.shared.journal, name, &parked_ns(name)).await? {
            let id = key_id(name, &key)?;
            let stored: StoredEntry = decode(name, id, &value)?;
            parked.push(ParkedDelivery {
                id,
                destination: stored.destination,
                message: decode(name, id, &stored.payload)?,
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
    /// [`Error::Store`].
    pub async fn requeue(&self, id: DeliveryId) -> Result<DeliveryId> {
        let name = &self.shared.sender.name;
        let stored = self
            .shared
            .get(&parked_ns(name), id)
            .await?
            .ok_or_else(|| Error::NotParked {
                sender: name.clone(),
                id,
            })?;
        let entry: StoredEntry = decode(name, id, &stored)?;
        let message: M = decode(name, id, &entry.payload)?;
        let mut prepared = self.prepare(&entry.destination, |_| message)?;
        let writes =
            std::mem::take(&mut prepared.writes).delete(parked_ns(name), id_key(id).to_vec());
        self.shared.write(writes).await?;
        Ok(prepared.send())
    }

    /// Deletes a parked delivery for good.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the delete cannot be written.
    pub async fn purge(&self, id: DeliveryId) -> Result<()> {
        let batch =
            WriteBatch::new().delete(parked_ns(&self.shared.sender.name), id_key(id).to_vec());
        self.shared.write(batch).await
    }
}

impl<M> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store_error(&self, source: courier_persistence::Error) -> Error {
        Error::Store {
            owner: self.sender.name.clone(),
            source,
        }
    }

    /// Writes `batch`; `Ok` once it is flushed.
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.journal
            .write(batch)
            .await
            .map_err(|e| self.store_error(e))
    }

    /// The record of delivery `id` in `namespace` (outbox or parked).
    async fn get(&self, namespace: &str, id: DeliveryId) -> Result<Option<Vec<u8>>> {
        self.journal
            .kv_get(namespace, &id_key(id))
            .await
            .map_err(|e| self.store_error(e))
    }
}

impl<M: Outgoing> Shared<M> {
    /// Sends one attempt, at most once. An unknown destination is a lost
    /// message like any other: the timer sends it again.
    fn transmit(&self, id: DeliveryId, destination: &str, message: M, attempt: u32) {
        let Some(ack_to) = self.signals.get() else {
            return;
        };
        let settled_below = self.lock().outbox.settled_below();
        match self.system.lookup::<Delivery<M>>(destination) {
            Ok(target) => target.tell(Delivery {
                sender: self.sender.clone(),
                id,
                attempt,
                settled_below,
                message,
                ack_to: ack_to.clone(),
            }),
            Err(e) => {
                tracing::debug!(sender = %self.sender, %id, destination, error = %e, "destination not reachable; will redeliver");
            }
        }
    }
}

/// A numbered delivery whose records are not yet durable.
#[must_use = "a prepared delivery is sent only by `send`"]
pub struct Prepared<M: Outgoing> {
    shared: Arc<Shared<M>>,
    id: DeliveryId,
    destination: Arc<str>,
    message: Option<M>,
    writes: WriteBatch,
    created: Duration,
}

impl<M: Outgoing> Prepared<M> {
    /// Its id.
    pub fn id(&self) -> DeliveryId {
        self.id
    }

    /// The records to write (the outbox entry and the sender's next id).
    pub fn writes(&self) -> WriteBatch {
        self.writes.clone()
    }

    /// The records are durable: the delivery joins the outbox and is sent
    /// (now, or after the restored backlog).
    pub fn send(mut self) -> DeliveryId {
        let Some(message) = self.message.take() else {
            return self.id;
        };
        let dispatch = {
            let mut state = self.shared.lock();
            let random = state.rng.f64();
            state.outbox.insert(
                self.id,
                Arc::clone(&self.destination),
                (),
                self.created,
                random,
            )
        };
        if dispatch == Dispatch::Now {
            self.shared.transmit(self.id, &self.destination, message, 1);
        }
        self.id
    }
}

impl<M: Outgoing> Drop for Prepared<M> {
    fn drop(&mut self) {
        if self.message.is_some() {
            self.shared.lock().outbox.cancel(self.id);
        }
    }
}

/// The child actor of a sender: its redelivery timer and its ack inbox.
struct Redeliverer<M> {
    shared: Arc<Shared<M>>,
    tick: Duration,
}

impl<M: Outgoing> Actor for Redeliverer<M> {
    type Msg = SenderSignal;

    async fn started(&mut self, ctx: &mut Context<Self>) -> std::result::Result<(), BoxError> {
        ctx.schedule_repeated(self.tick, || SenderSignal::Redeliver);
        // The restored backlog goes out at once, before anything new.
        ctx.myself().tell(SenderSignal::Redeliver);
        Ok(())
    }

    async fn handle(
        &mut self,
        msg: SenderSignal,
        _ctx: &mut Context<Self>,
    ) -> std::result::Result<(), BoxError> {
        match msg {
            SenderSignal::Ack(ack) => self.confirm(ack),
            SenderSignal::Redeliver => self.redeliver().await?,
            SenderSignal::Rejected { id, reason } => self.reject(id, reason).await?,
        }
        Ok(())
    }
}

impl<M: Outgoing> Redeliverer<M> {
    fn confirm(&self, ack: Ack) {
        let shared = &self.shared;
        if ack.sender != shared.sender {
            tracing::debug!(sender = %shared.sender, from = %ack.sender, "ack for another sender ignored");
            return;
        }
        let confirmed = shared.lock().outbox.confirm(ack.id);
        if let Confirmation::Confirmed(_) = confirmed {
            let batch =
                WriteBatch::new().delete(outbox_ns(&shared.sender.name), id_key(ack.id).to_vec());
            let journal = Arc::clone(&shared.journal);
            let sender = shared.sender.clone();
            // Not awaited: a lost delete means one more redelivery, which the
            // receiver deduplicates. The journal keeps writes in order.
            tokio::spawn(async move {
                if let Err(e) = journal.write(batch).await {
                    tracing::warn!(%sender, id = %ack.id, error = %e, "could not delete a confirmed delivery");
                }
            });
        }
    }

    async fn redeliver(&self) -> Result<()> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let (sends, parked, warnings) = {
            let mut state = shared.lock();
            let State { outbox, rng, .. } = &mut *state;
            let tick = outbox.tick(now, || rng.f64());
            let sends: Vec<_> = tick
                .send
                .iter()
                .filter_map(|id| {
                    outbox.get(*id).map(|p| {
                        if p.attempts > 1 || p.restored {
                            shared.redelivered.fetch_add(1, Ordering::Relaxed);
                        }
                        (*id, Arc::clone(&p.destination), p.attempts)
                    })
                })
                .collect();
            let warnings: Vec<_> = outbox
                .take_warnings()
                .into_iter()
                .filter_map(|id| {
                    outbox
                        .get(id)
                        .map(|p| (id, p.destination.to_string(), p.attempts))
                })
                .collect();
            (sends, tick.parked, warnings)
        };
        for (id, destination, attempt) in sends {
            // The message is read back from the outbox's durable entry.
            match self.load(id).await? {
                Loaded::Message(message) => shared.transmit(id, &destination, message, attempt),
                Loaded::Gone => {}
                Loaded::Undecodable(entry, reason) => {
                    shared.lock().outbox.confirm(id);
                    self.park_entry(id, &destination, entry, reason).await?;
                }
            }
        }
        if !warnings.is_empty() {
            let warning = UnconfirmedWarning {
                sender: shared.sender.clone(),
                deliveries: warnings,
            };
            tracing::warn!(sender = %shared.sender, count = warning.deliveries.len(), "deliveries still unconfirmed");
            if let Some(handler) = shared
                .on_warning
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
            {
                handler(warning);
            }
        }
        for (id, pending, reason) in parked {
            self.park(id, &pending.destination, reason.to_string())
                .await?;
        }
        Ok(())
    }

    /// Parks a delivery a remote node refused for good.
    async fn reject(&self, id: DeliveryId, reason: String) -> Result<()> {
        let destination = {
            let mut state = self.shared.lock();
            match state.outbox.confirm(id) {
                Confirmation::Confirmed(pending) => pending.destination,
                // Confirmed or parked already.
                Confirmation::Unknown => return Ok(()),
            }
        };
        self.park(id, &destination, reason).await
    }

    /// Reads delivery `id`'s message from its durable outbox entry.
    async fn load(&self, id: DeliveryId) -> Result<Loaded<M>> {
        let shared = &self.shared;
        let name = &shared.sender.name;
        let Some(bytes) = shared.get(&outbox_ns(name), id).await? else {
            return Ok(Loaded::Gone);
        };
        let stored: StoredEntry = decode(name, id, &bytes)?;
        Ok(match decode::<M>(name, id, &stored.payload) {
            Ok(message) => Loaded::Message(message),
            Err(e) => Loaded::Undecodable(stored, format!("undecodable message: {e}")),
        })
    }

    /// Moves delivery `id` from the outbox to the parked store, and reports
    /// it as a dead letter. An entry already gone (confirmed) stays gone.
    async fn park(&self, id: DeliveryId, destination: &str, reason: String) -> Result<()> {
        let name = &self.shared.sender.name;
        let Some(bytes) = self.shared.get(&outbox_ns(name), id).await? else {
            return Ok(());
        };
        let entry: StoredEntry = decode(name, id, &bytes)?;
        self.park_entry(id, destination, entry, reason).await
    }

    /// [`park`](Self::park) with the entry already read.
    async fn park_entry(
        &self,
        id: DeliveryId,
        destination: &str,
        mut entry: StoredEntry,
        reason: String,
    ) -> Result<()> {
        let shared = &self.shared;
        let name = &shared.sender.name;
        entry.parked = Some(reason.clone());
        let batch = WriteBatch::new()
            .delete(outbox_ns(name), id_key(id).to_vec())
            .put(parked_ns(name), id_key(id), encode(name, &entry)?);
        shared.write(batch).await?;
        tracing::warn!(sender = %shared.sender, %id, destination, %reason, "delivery parked");
        if let Ok(recipient) = ActorPath::parse(destination) {
            shared.system.publish_dead_letter(DeadLetter {
                recipient,
                message_type: std::any::type_name::<M>(),
                reason: DeadLetterReason::Other(
                    format!("delivery {id} from {} parked: {reason}", shared.sender).into(),
                ),
            });
        }
        Ok(())
    }
}

/// A delivery's message as read back for a resend.
enum Loaded<M> {
    Message(M),
    /// Confirmed (and deleted) meanwhile.
    Gone,
    /// The stored bytes no longer decode as `M` (a changed message type):
    /// the entry as read, and why.
    Undecodable(StoredEntry, String),
}

/// The start of an encoded [`Delivery`]: enough to tell whose and which.
#[derive(serde::Deserialize)]
struct DeliveryHeader {
    sender: SenderId,
    id: DeliveryId,
}

/// Watches the system's remote rejections for this sender's deliveries and
/// hands the permanent ones (the message does not decode on the receiving
/// node, or is too large for it) to the child actor, which parks them.
/// Other rejections (no such actor yet, a type the peer does not know yet)
/// may heal, so those deliveries keep being retried.
fn watch_rejections<M: Outgoing>(shared: &Arc<Shared<M>>, signals: ActorRef<SenderSignal>) {
    let mut rejections = shared
        .system
        .event_stream()
        .subscribe::<courier_remote::RemoteRejection>();
    let sender = shared.sender.clone();
    tokio::spawn(async move {
        let wanted = std::any::type_name::<Delivery<M>>();
        loop {
            let rejection = tokio::select! {
                () = signals.terminated() => return,
                next = rejections.recv() => match next {
                    Ok(rejection) => rejection,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(%sender, missed, "missed remote rejections; those deliveries are retried");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            let permanent = matches!(
                rejection.reason,
                courier_remote::RejectionReason::Undecodable
                    | courier_remote::RejectionReason::Oversized
            );
            if rejection.message_type != wanted || !permanent {
                continue;
            }
            let header: courier_codec::Result<(DeliveryHeader, usize)> =
                courier_codec::decode_prefix(&rejection.payload, courier_codec::MAX_LEN);
            let Ok((header, _)) = header else {
                continue;
            };
            if header.sender == sender {
                signals.tell(SenderSignal::Rejected {
                    id: header.id,
                    reason: format!(
                        "rejected by {}: {}: {}",
                        rejection.recipient, rejection.reason, rejection.detail
                    ),
                });
            }
        }
    });
}
