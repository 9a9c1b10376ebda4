//! The sender's child actors: [`Redeliverer`] owns the redelivery timer,
//! confirms acks and parks deliveries; [`AckInbox`] is the reference that
//! receivers hold (`Delivery::ack_to`): it takes [`Ack`]s and nothing else,
//! so holding a delivery lets a receiver or a peer confirm it, not force
//! redeliveries or park other deliveries.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use courier_core::{Actor, ActorPath, ActorRef, BoxError, Context, DeadLetter, DeadLetterReason};
use courier_persistence::WriteBatch;

use super::{Outgoing, Shared, State, UnconfirmedWarning};
use crate::envelope::{Ack, Delivery, DeliveryId, SenderId};
use crate::error::{Error, Result};
use crate::outbox::{Confirmation, Pending};
use tracing::Instrument;

use crate::records::{StoredEntry, decode, encode, id_key};

use super::writer::Request;

/// How many outbox entries a resend reads back per read.
const READ_CHUNK: usize = 256;

/// How often, at most, the sender logs that deliveries are still
/// unconfirmed, while they are.
const WARN_EVERY: Duration = Duration::from_secs(30);
/// How many deliveries one such WARN names.
const WARN_EXAMPLES: usize = 5;
/// How long a stopping sender waits for its last confirmations' write.
const FLUSH_ON_STOP: Duration = Duration::from_secs(5);

/// What the [`Redeliverer`] receives. Private to the sender: none of it
/// travels to receivers.
pub(super) enum Signal {
    /// Time to send overdue deliveries.
    Redeliver,
    /// A receiver's acknowledgement, forwarded by the [`AckInbox`].
    Ack(Ack),
    /// Delivery `id` can never be delivered as addressed: park it now.
    Park { id: DeliveryId, reason: String },
}

/// The sender's ack reference: forwards acks to the [`Redeliverer`].
pub(super) struct AckInbox {
    to: ActorRef<Signal>,
}

impl AckInbox {
    pub(super) fn new(to: ActorRef<Signal>) -> Self {
        Self { to }
    }
}

impl Actor for AckInbox {
    type Msg = Ack;

    async fn handle(&mut self, ack: Ack, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.to.tell(Signal::Ack(ack));
        Ok(())
    }
}

/// The sender's timer, ack confirmation and parking, one message at a time.
pub(super) struct Redeliverer<M> {
    shared: Arc<Shared<M>>,
    tick: Duration,
}

impl<M> Redeliverer<M> {
    pub(super) fn new(shared: Arc<Shared<M>>, tick: Duration) -> Self {
        Self { shared, tick }
    }
}

impl<M: Outgoing> Actor for Redeliverer<M> {
    type Msg = Signal;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        ctx.schedule_repeated(self.tick, || Signal::Redeliver);
        // The restored backlog goes out at once, before anything new.
        ctx.myself().tell(Signal::Redeliver);
        Ok(())
    }

    /// Confirmed deletes still waiting for a write are written before the
    /// sender counts as stopped (so a sender stopped, or an actor system
    /// shut down, right after its last ack leaves no confirmed entry on
    /// disk), waiting at most [`FLUSH_ON_STOP`] for the store.
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.shared.writes.send(Request::Flush(done)).is_ok()
            && tokio::time::timeout(FLUSH_ON_STOP, flushed).await.is_err()
        {
            tracing::warn!(sender = %self.shared.sender, "the store did not write the sender's last confirmations in time; those deliveries are sent once more after a restart");
        }
    }

    async fn handle(&mut self, msg: Signal, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Signal::Ack(ack) => self.confirm(&ack).await,
            Signal::Redeliver => self.redeliver().await?,
            Signal::Park { id, reason } => self.park(id, reason).await?,
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

/// How a parked delivery turned out confirmed.
#[derive(Clone, Copy)]
enum Unparked {
    /// Confirmed (by hand: acks wait for the park) while its park was
    /// written; it was never counted as parked.
    WhileParking,
    /// Acked after its park: its receiver applied it.
    AckedLate,
}

impl<M: Outgoing> Redeliverer<M> {
    /// Confirms the delivery `ack` names. An ack of a delivery this sender
    /// parked moments ago deletes its parked record, unless a delivery sent
    /// since may have let the receiver ack it unapplied; any other ack of a
    /// delivery that is not pending is a repeat and changes nothing.
    async fn confirm(&self, ack: &Ack) {
        let shared = &self.shared;
        if ack.sender != shared.sender {
            tracing::debug!(sender = %shared.sender, from = %ack.sender, "ack for another sender ignored");
            return;
        }
        let acked_late = {
            let mut state = shared.lock();
            match state.outbox.confirm(ack.id) {
                Confirmation::Confirmed(pending) => {
                    self.confirmed(&mut state, ack, &pending);
                    false
                }
                Confirmation::Unknown => {
                    let parked = state.recently_parked.remove(ack.id);
                    // A delivery sent since the park may have told the
                    // receiver that ids up to this one are done: it then
                    // acks a late attempt of it as a repeat, unapplied.
                    if parked && ack.id < state.sent_settled_below {
                        tracing::warn!(sender = %shared.sender, id = %ack.id, "parked delivery {} was acked after a later delivery let its receiver forget it: it may not have been applied, so it stays parked; check the receiver before a requeue or a purge", ack.id);
                        false
                    } else {
                        parked
                    }
                }
            }
        };
        if acked_late {
            self.unpark(ack.id, Unparked::AckedLate).await;
        }
    }

    /// The rest of [`confirm`](Self::confirm) for a delivery that was
    /// pending: metrics, the delete, the inbox that acked.
    fn confirmed(&self, state: &mut State, ack: &Ack, pending: &Pending<()>) {
        let shared = &self.shared;
        let now = shared.clock.now();
        let latency = now.saturating_sub(pending.created);
        // The last step of one delivery's path, named as `courier.deliver`
        // named its first.
        let _confirm = tracing::debug_span!(
            "courier.confirm",
            sender = %shared.sender,
            destination = %pending.destination,
            id = %ack.id,
        )
        .entered();
        tracing::debug!(
            sender = %shared.sender,
            id = %ack.id,
            destination = %pending.destination,
            latency_ms = latency.as_millis() as u64,
            "delivery confirmed"
        );
        shared.metrics.confirmed_after(latency);
        shared.metrics.outbox(
            state.outbox.len() + state.outbox.in_doubt(),
            state
                .outbox
                .iter()
                .next()
                .map(|(_, p)| now.saturating_sub(p.created)),
        );
        // A lost delete means one more redelivery, which the receiver
        // deduplicates; the writer writes deletes in order, in groups.
        let _ = shared.writes.send(Request::Confirmed(ack.id));
        if let Some(inbox) = ack.inbox {
            let known = state.inboxes.get(&pending.destination);
            if known != Some(&inbox) {
                if let Some(previous) = known {
                    tracing::warn!(sender = %shared.sender, destination = %pending.destination, %previous, %inbox, "the destination's inbox changed (it adopted a lost inbox's history)");
                }
                state
                    .inboxes
                    .insert(Arc::clone(&pending.destination), inbox);
                let _ = shared
                    .writes
                    .send(Request::Inbox(Arc::clone(&pending.destination), inbox));
            }
        }
    }

    async fn redeliver(&self) -> Result<()> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let (sends, park, warnings, resolve, stuck) = {
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
                            shared.metrics.redelivered.increment(1);
                        }
                        (*id, Arc::clone(&p.destination), p.attempts)
                    })
                })
                .collect();
            let warnings: Vec<_> = tick
                .warn
                .iter()
                .filter_map(|id| {
                    outbox
                        .get(*id)
                        .map(|p| (*id, p.destination.to_string(), p.attempts))
                })
                .collect();
            let stuck = stuck_report(&mut state, now);
            shared.metrics.outbox(
                state.outbox.len() + state.outbox.in_doubt(),
                state
                    .outbox
                    .iter()
                    .next()
                    .map(|(_, p)| now.saturating_sub(p.created)),
            );
            (sends, tick.park, warnings, tick.resolve, stuck)
        };
        if !resolve.is_empty() {
            let _ = shared.writes.send(Request::Resolve(resolve));
        }
        // The messages are read back from the outbox's durable entries, a
        // chunk per read: a read waits for any flush in progress, so one
        // read per delivery would stall a large tick (and the acks queued
        // behind it) while other writers stream.
        for chunk in sends.chunks(READ_CHUNK) {
            let ids: Vec<DeliveryId> = chunk.iter().map(|(id, _, _)| *id).collect();
            let entries = shared.get_many(&shared.ns.outbox, &ids).await?;
            for ((id, destination, attempt), bytes) in chunk.iter().zip(entries) {
                let (id, attempt) = (*id, *attempt);
                let span = tracing::debug_span!(
                    "courier.redeliver",
                    sender = %shared.sender,
                    destination = %destination,
                    id = %id,
                    attempt,
                );
                match self.loaded(id, bytes)? {
                    Loaded::Message(message) => {
                        let _entered = span.enter();
                        shared.transmit(id, destination, None, message, attempt);
                    }
                    Loaded::Gone => {}
                    Loaded::Undecodable(entry, reason) => {
                        self.park_entry(id, destination, entry, reason)
                            .instrument(span)
                            .await?;
                    }
                }
            }
        }
        if !warnings.is_empty() {
            let warning = UnconfirmedWarning {
                sender: shared.sender.clone(),
                deliveries: warnings,
            };
            if let Some(handler) = courier_core::sync::lock(&shared.on_warning).as_ref() {
                handler(warning);
            }
        }
        if let Some((count, examples)) = stuck {
            tracing::warn!(
                sender = %shared.sender,
                count,
                deliveries = %examples,
                "deliveries still unconfirmed; Deliverer::pending lists them all"
            );
        }
        for (id, reason) in park {
            self.park(id, reason.to_string()).await?;
        }
        Ok(())
    }

    /// Delivery `id`'s message, from its outbox entry as read (`None`:
    /// confirmed and deleted meanwhile).
    fn loaded(&self, id: DeliveryId, bytes: Option<Vec<u8>>) -> Result<Loaded<M>> {
        let name = &self.shared.sender.name;
        let Some(bytes) = bytes else {
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
    async fn park(&self, id: DeliveryId, reason: String) -> Result<()> {
        let shared = &self.shared;
        let name = &shared.sender.name;
        let Some(destination) = shared
            .lock()
            .outbox
            .get(id)
            .map(|p| Arc::clone(&p.destination))
        else {
            return Ok(());
        };
        let Some(bytes) = shared.get(&shared.ns.outbox, id).await? else {
            return Ok(());
        };
        let entry: StoredEntry = decode(name, id, &bytes)?;
        self.park_entry(id, &destination, entry, reason).await
    }

    /// [`park`](Self::park) with the entry already read. The delivery stays
    /// unconfirmed until its parked record is durable, so it is always
    /// listed somewhere. One confirmed by hand while the record was written
    /// is not left parked (see [`unpark`](Self::unpark)).
    async fn park_entry(
        &self,
        id: DeliveryId,
        destination: &str,
        mut entry: StoredEntry,
        reason: String,
    ) -> Result<()> {
        let shared = &self.shared;
        let name = &shared.sender.name;
        // For the dead letter: the message itself, when it still decodes
        // (an entry parked because it does not is reported without it).
        let message = decode::<M>(name, id, &entry.payload).ok();
        entry.parked = Some(reason.clone());
        let batch = WriteBatch::new()
            .delete(shared.ns.outbox.clone(), id_key(id).to_vec())
            .put(shared.ns.parked.clone(), id_key(id), encode(name, &entry)?);
        shared.write(batch).await?;
        let parked = {
            let mut state = shared.lock();
            let parked = state.outbox.settle_parked(id).is_some();
            if parked {
                state.recently_parked.insert(id);
            }
            parked
        };
        if !parked {
            // Confirmed or cancelled by hand while the park was written.
            self.unpark(id, Unparked::WhileParking).await;
            return Ok(());
        }
        shared.metrics.parked_one();
        tracing::warn!(sender = %shared.sender, %id, destination, %reason, "delivery parked; Deliverer::requeue sends it again, Deliverer::purge drops it");
        if let Ok(recipient) = ActorPath::parse(destination) {
            let letter = DeadLetter {
                recipient,
                message_type: std::any::type_name::<M>(),
                reason: DeadLetterReason::Other(
                    format!("delivery {id} from {} parked: {reason}", shared.sender).into(),
                ),
            };
            match message {
                Some(message) => {
                    let owner = Some(shared.owner.clone());
                    shared.system.publish_dead_message(letter, owner, message);
                }
                None => shared.system.publish_dead_letter(letter),
            }
        }
        Ok(())
    }
}

impl<M: Outgoing> Redeliverer<M> {
    /// Deletes the parked record of delivery `id`, which turned out
    /// confirmed: requeued, it would be applied a second time. Holds the
    /// sender's repairs, so that a requeue of the same id goes either
    /// before (this finds it not parked) or after (it finds it gone). A
    /// delete that fails is logged for the operator, who purges it.
    async fn unpark(&self, id: DeliveryId, how: Unparked) {
        let shared = &self.shared;
        let sender = &shared.sender;
        let result = {
            let _one_at_a_time = shared.repairs.lock().await;
            shared.unpark(id).await
        };
        match (result, how) {
            (Ok(()), Unparked::WhileParking) => {
                tracing::info!(%sender, %id, "delivery {id} was confirmed while it was being parked; its parked record is deleted");
            }
            (Ok(()), Unparked::AckedLate) => {
                shared.metrics.unparked_acked();
                tracing::info!(%sender, %id, "parked delivery {id} was acked late: it was applied; its parked record is deleted");
            }
            (Err(Error::NotParked { .. }), _) => {
                tracing::warn!(%sender, %id, "delivery {id} was confirmed, but its parked record is gone already (requeued or purged meanwhile): if it was requeued, the receiver applies it a second time");
            }
            (Err(e), _) => {
                tracing::error!(%sender, %id, error = %e, "delivery {id} was confirmed, but its parked record could not be deleted: purge it (Deliverer::purge); requeueing it would apply it twice");
            }
        }
    }
}

/// Decides whether to log that deliveries are stuck: at most every
/// [`WARN_EVERY`] while any delivery has been sent `warn_after_attempts`
/// times or could not be sent at all. Returns how many, and the oldest few
/// with their destinations, attempts and last errors.
fn stuck_report(state: &mut State, now: Duration) -> Option<(usize, String)> {
    if state
        .last_warn
        .is_some_and(|last| now.saturating_sub(last) < WARN_EVERY)
    {
        return None;
    }
    let threshold = state.outbox.settings().warn_after_attempts;
    let mut count = 0;
    let mut examples = String::new();
    for (id, p) in state.outbox.iter() {
        if p.attempts < threshold && p.last_error.is_none() {
            continue;
        }
        count += 1;
        if count <= WARN_EXAMPLES {
            use std::fmt::Write as _;
            if !examples.is_empty() {
                examples.push_str("; ");
            }
            let _ = write!(
                examples,
                "{id} to {} after {} attempts",
                p.destination, p.attempts
            );
            if let Some(error) = &p.last_error {
                let _ = write!(examples, " (last error: {error})");
            }
        }
    }
    if count == 0 {
        return None;
    }
    state.last_warn = Some(now);
    Some((count, examples))
}

/// The start of an encoded [`Delivery`]: enough to tell whose and which.
#[derive(serde::Deserialize)]
struct DeliveryHeader {
    sender: SenderId,
    id: DeliveryId,
}

/// Watches the system's transport refusals for this sender's deliveries and
/// hands the permanent ones (the message does not decode at the receiving
/// end, or is too large for it) to the child actor, which parks them. Other
/// refusals (no such actor yet, a type the peer does not know yet) may heal,
/// so those deliveries keep being retried.
pub(super) fn watch_refusals<M: Outgoing>(shared: &Arc<Shared<M>>, signals: ActorRef<Signal>) {
    let mut refusals = shared
        .system
        .event_stream()
        .subscribe::<courier_core::Refusal>();
    let sender = shared.sender.clone();
    tokio::spawn(async move {
        let wanted = std::any::type_name::<Delivery<M>>();
        loop {
            let refusal = tokio::select! {
                () = signals.terminated() => return,
                next = refusals.recv() => match next {
                    Ok(refusal) => refusal,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(%sender, missed, "missed transport refusals; those deliveries are retried");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            if refusal.message_type != wanted || !refusal.permanent {
                continue;
            }
            // The transport's bytes are a serde encoding of the delivery; its
            // first fields say whose and which.
            let header: courier_codec::Result<(DeliveryHeader, usize)> =
                courier_codec::decode_prefix(&refusal.payload, courier_codec::MAX_LEN);
            let Ok((header, _)) = header else {
                continue;
            };
            if header.sender == sender {
                signals.tell(Signal::Park {
                    id: header.id,
                    reason: format!("refused by {}: {}", refusal.recipient, refusal.detail),
                });
            }
        }
    });
}
