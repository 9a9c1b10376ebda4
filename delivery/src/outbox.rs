//! [`Outbox`]: the sender's unconfirmed deliveries, as pure logic.
//!
//! The outbox numbers deliveries, remembers how often each was sent and
//! when it is next due, and decides what to send on each tick: overdue
//! deliveries, oldest first, at most `burst_limit` of them. It proposes to
//! park a delivery that ran out of attempts or time, and raises one warning
//! per delivery that stays unconfirmed for `warn_after_attempts` sends.
//!
//! Invariants:
//! - ids are handed out in order from 1 and never twice; an id whose write
//!   failed is skipped (so ids are gap-free unless a write fails);
//! - an entry leaves only by [`confirm`](Outbox::confirm) or, once its parked
//!   record is durable, by [`settle_parked`](Outbox::settle_parked): it is
//!   always visible as unconfirmed until it is visible as parked;
//! - [`settled_below`](Outbox::settled_below) never covers an id that may
//!   still be sent: not a pending entry, not a reserved id whose write has
//!   not finished, not an id whose write ended in doubt. Concurrent callers
//!   finish their writes out of order, so a later id may be sent while an
//!   earlier one is still being written; the receiver lifts its dedup
//!   watermark to `settled_below`, so covering the earlier id would make
//!   the receiver ack it as a duplicate without applying it;
//! - after [`restore`](Outbox::restore), the restored entries go out before
//!   any delivery appended later (those wait for the backlog to drain).
//!
//! It owns no clock: every call that needs the time takes `now`, any
//! monotonic-enough `Duration` (the adapter passes wall-clock time since the
//! Unix epoch, so expiry survives restarts).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::envelope::DeliveryId;
use crate::redelivery::Redelivery;

/// The longest `expire_after` the configuration accepts: 10 years (`"10y"`,
/// of 365.25 days each). The outbox itself only compares with it, so a
/// longer one set in code cannot overflow anything.
pub const MAX_EXPIRE_AFTER: Duration = Duration::from_secs(10 * 31_557_600);

/// The outbox's limits and schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxSettings {
    /// When unconfirmed deliveries are sent again.
    pub redelivery: Redelivery,
    /// At most this many deliveries are sent per tick.
    pub burst_limit: usize,
    /// Warn once about a delivery sent this many times without an ack.
    pub warn_after_attempts: u32,
    /// At most this many unconfirmed deliveries; `append` refuses more.
    pub max_unconfirmed: usize,
    /// Park a delivery after this many unconfirmed sends.
    pub max_attempts: Option<u32>,
    /// Park a delivery this long after it was first accepted.
    pub expire_after: Option<Duration>,
}

impl Default for OutboxSettings {
    /// Akka's defaults: 5 s interval, 10,000 per burst, warn after 5,
    /// 100,000 unconfirmed; never park.
    fn default() -> Self {
        Self {
            redelivery: Redelivery::default(),
            burst_limit: 10_000,
            warn_after_attempts: 5,
            max_unconfirmed: 100_000,
            max_attempts: None,
            expire_after: None,
        }
    }
}

/// One unconfirmed delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending<M> {
    /// Where it goes (an actor path).
    /// Shared between the deliveries to one destination.
    pub destination: Arc<str>,
    /// The message.
    pub message: M,
    /// How often it was sent by this incarnation of the outbox.
    pub attempts: u32,
    /// When it was accepted.
    pub created: Duration,
    /// When it is next due to be sent.
    pub due: Duration,
    /// It was restored after a restart (so it may have been sent before).
    pub restored: bool,
    /// Why its last attempt could not be sent, if it could not.
    pub last_error: Option<Arc<str>>,
    warned: bool,
}

impl<M> Pending<M> {
    /// An entry found durable (restored after a restart, or a write in
    /// doubt that reached the disk): due at once, and sent before anything
    /// appended after it.
    fn restored(destination: Arc<str>, message: M, created: Duration) -> Self {
        Self {
            destination,
            message,
            attempts: 0,
            created,
            due: Duration::ZERO,
            restored: true,
            last_error: None,
            warned: false,
        }
    }
}

/// Why a delivery was parked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParkReason {
    /// It was sent `max_attempts` times without an ack.
    MaxAttempts(u32),
    /// It was not acked within `expire_after`.
    Expired(Duration),
}

impl std::fmt::Display for ParkReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MaxAttempts(n) => write!(f, "unconfirmed after {n} attempts"),
            Self::Expired(after) => write!(f, "unconfirmed after {after:?}"),
        }
    }
}

/// `append` was refused: `max_unconfirmed` deliveries are already pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxFull {
    /// The limit that was reached.
    pub max_unconfirmed: usize,
}

/// Whether an appended delivery is sent now or waits for its turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Send it now (this is its first attempt).
    Now,
    /// Older, restored deliveries go first: a later tick sends it.
    Later,
}

/// What [`Outbox::confirm`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmation<M> {
    /// The delivery was pending and is now confirmed.
    Confirmed(Pending<M>),
    /// No such pending delivery: already confirmed, parked, or never sent.
    Unknown,
}

/// Everything one tick decided, in one value.
#[derive(Debug, PartialEq, Eq)]
pub struct Tick {
    /// Send these now, in this order (their attempt counts are updated).
    pub send: Vec<DeliveryId>,
    /// Park these: write their parked records, then call
    /// [`settle_parked`](Outbox::settle_parked). Until then they stay
    /// pending (and are not sent); a failed write is proposed again.
    pub park: Vec<(DeliveryId, ParkReason)>,
    /// These crossed `warn_after_attempts` on this tick (each reported once).
    pub warn: Vec<DeliveryId>,
    /// Ids whose write ended in doubt: find out whether their entry is
    /// durable and call [`resolve`](Outbox::resolve).
    pub resolve: Vec<DeliveryId>,
}

/// The sender's unconfirmed deliveries.
#[derive(Debug)]
pub struct Outbox<M> {
    settings: OutboxSettings,
    next_id: DeliveryId,
    entries: BTreeMap<DeliveryId, Pending<M>>,
    /// Restored entries not yet sent again; while any are left, new ones wait.
    backlog: usize,
    /// Ids handed out by `reserve` whose write has not finished.
    reserved: BTreeSet<DeliveryId>,
    /// Ids whose write failed or was abandoned: they may be durable.
    in_doubt: BTreeSet<DeliveryId>,
}

impl<M> Outbox<M> {
    /// An empty outbox whose first id is 1.
    pub fn new(settings: OutboxSettings) -> Self {
        Self {
            settings,
            next_id: DeliveryId(1),
            entries: BTreeMap::new(),
            backlog: 0,
            reserved: BTreeSet::new(),
            in_doubt: BTreeSet::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &OutboxSettings {
        &self.settings
    }

    /// The id the next appended delivery gets.
    pub fn next_id(&self) -> DeliveryId {
        self.next_id
    }

    /// Every id below this one is settled (confirmed or parked, or never
    /// written) and will never be sent again: the lowest id that is
    /// pending, reserved or in doubt, or else the next id.
    pub fn settled_below(&self) -> DeliveryId {
        [
            self.entries.keys().next(),
            self.reserved.first(),
            self.in_doubt.first(),
        ]
        .into_iter()
        .flatten()
        .copied()
        .min()
        .unwrap_or(self.next_id)
    }

    /// How many deliveries are unconfirmed (including those about to be
    /// parked).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is unconfirmed, nor in doubt.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.in_doubt.is_empty()
    }

    /// How many ids are in doubt: their write failed or was abandoned, and
    /// no tick has found out yet whether their entry is durable.
    pub fn in_doubt(&self) -> usize {
        self.in_doubt.len()
    }

    /// One pending delivery.
    pub fn get(&self, id: DeliveryId) -> Option<&Pending<M>> {
        self.entries.get(&id)
    }

    /// The pending deliveries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (DeliveryId, &Pending<M>)> {
        self.entries.iter().map(|(id, p)| (*id, p))
    }

    /// The pending deliveries with ids above `after`, oldest first.
    pub fn iter_after(
        &self,
        after: Option<DeliveryId>,
    ) -> impl Iterator<Item = (DeliveryId, &Pending<M>)> {
        let start = after.map_or(DeliveryId(0), DeliveryId::next);
        self.entries.range(start..).map(|(id, p)| (*id, p))
    }

    /// Whether another delivery would be accepted.
    ///
    /// # Errors
    ///
    /// [`OutboxFull`] when `max_unconfirmed` deliveries are pending.
    pub fn check_room(&self, more: usize) -> Result<(), OutboxFull> {
        let used = self.entries.len() + self.reserved.len() + self.in_doubt.len();
        if used + more > self.settings.max_unconfirmed {
            return Err(OutboxFull {
                max_unconfirmed: self.settings.max_unconfirmed,
            });
        }
        Ok(())
    }

    /// Accepts a delivery to `destination`, numbering it with the next id.
    /// `make` builds the message from its id.
    ///
    /// # Errors
    ///
    /// [`OutboxFull`] when `max_unconfirmed` deliveries are pending; nothing
    /// is accepted and no id is used.
    pub fn append(
        &mut self,
        destination: impl Into<Arc<str>>,
        make: impl FnOnce(DeliveryId) -> M,
        now: Duration,
        random: f64,
    ) -> Result<(DeliveryId, Dispatch), OutboxFull> {
        let id = self.reserve()?;
        let dispatch = self.insert(id, destination, make(id), now, random);
        Ok((id, dispatch))
    }

    /// The first half of [`append`](Self::append): takes the next id and
    /// holds room for it, so that the entry can be made durable before the
    /// outbox sends it. Until it is inserted, cancelled or doubted, the id
    /// keeps [`settled_below`](Self::settled_below) at or below it. Follow
    /// with [`insert`](Self::insert), [`cancel`](Self::cancel) or
    /// [`doubt`](Self::doubt).
    ///
    /// # Errors
    ///
    /// [`OutboxFull`] when `max_unconfirmed` deliveries are pending.
    pub fn reserve(&mut self) -> Result<DeliveryId, OutboxFull> {
        self.check_room(1)?;
        let id = self.next_id;
        self.next_id = id.next();
        self.reserved.insert(id);
        Ok(id)
    }

    /// The second half of [`append`](Self::append): the reserved `id` is
    /// durable; it now waits for its ack.
    pub fn insert(
        &mut self,
        id: DeliveryId,
        destination: impl Into<Arc<str>>,
        message: M,
        now: Duration,
        random: f64,
    ) -> Dispatch {
        self.reserved.remove(&id);
        self.in_doubt.remove(&id);
        let (attempts, due, dispatch) = if self.backlog > 0 {
            (0, now, Dispatch::Later)
        } else {
            (
                1,
                now.saturating_add(self.settings.redelivery.delay(1, random)),
                Dispatch::Now,
            )
        };
        self.entries.insert(
            id,
            Pending {
                destination: destination.into(),
                message,
                attempts,
                created: now,
                due,
                restored: false,
                last_error: None,
                warned: false,
            },
        );
        dispatch
    }

    /// Gives a reserved id back: its entry was certainly never written (it
    /// could not even be encoded). The latest reservation is undone, so ids
    /// stay gap-free; an earlier one is skipped.
    pub fn cancel(&mut self, id: DeliveryId) {
        if self.reserved.remove(&id) && id.next() == self.next_id {
            self.next_id = id;
        }
    }

    /// The write of reserved `id` failed or was abandoned: its entry may or
    /// may not be durable. The id keeps `settled_below` below it until
    /// [`resolve`](Self::resolve) says which; every tick lists it.
    pub fn doubt(&mut self, id: DeliveryId) {
        if self.reserved.remove(&id) {
            self.in_doubt.insert(id);
        }
    }

    /// Settles an id in doubt: `Some((destination, message, created))` when
    /// its entry turned out durable (it is then pending, due at once, and
    /// goes out with the restored backlog), `None` when it was never
    /// written (the id is skipped).
    pub fn resolve<D: Into<Arc<str>>>(&mut self, id: DeliveryId, found: Option<(D, M, Duration)>) {
        if !self.in_doubt.remove(&id) {
            return;
        }
        if let Some((destination, message, created)) = found {
            self.backlog += 1;
            self.entries
                .insert(id, Pending::restored(destination.into(), message, created));
        }
    }

    /// Confirms a delivery. A repeated or unknown id changes nothing.
    pub fn confirm(&mut self, id: DeliveryId) -> Confirmation<M> {
        match self.remove(id) {
            Some(pending) => Confirmation::Confirmed(pending),
            None => Confirmation::Unknown,
        }
    }

    /// Removes a delivery whose parked record is durable; `None` if it was
    /// confirmed meanwhile.
    pub fn settle_parked(&mut self, id: DeliveryId) -> Option<Pending<M>> {
        self.remove(id)
    }

    fn remove(&mut self, id: DeliveryId) -> Option<Pending<M>> {
        let pending = self.entries.remove(&id)?;
        if pending.attempts == 0 {
            self.backlog = self.backlog.saturating_sub(1);
        }
        Some(pending)
    }

    /// Whether deleting the records of deliveries up to `deleted`
    /// (confirmed or purged) must also raise the sender's durable id mark.
    /// After a restart the next id is taken from above the highest id still
    /// stored and above that mark; every pending delivery is stored (it
    /// joins the outbox only once its entry is durable, and leaves it before
    /// its delete is written), so while one above `deleted` is pending, the
    /// store itself keeps the next id above `deleted`, and the mark need not
    /// be written. Ids are then never handed out twice, across crashes too.
    pub fn needs_mark(&self, deleted: DeliveryId) -> bool {
        self.entries
            .keys()
            .next_back()
            .is_none_or(|last| *last <= deleted)
    }

    /// Records why the last attempt of `id` could not be sent (`None`: it
    /// was sent).
    pub fn note_error(&mut self, id: DeliveryId, error: Option<Arc<str>>) {
        if let Some(pending) = self.entries.get_mut(&id) {
            pending.last_error = error;
        }
    }

    /// Decides what to do at `now`: every overdue delivery is sent, most
    /// overdue first (ties by id), at most `burst_limit`; those out of
    /// attempts or time are proposed for parking. Ordering by due time
    /// rather than by id means a few stuck deliveries at the head cannot
    /// starve those behind them when the burst limit is small: the ones
    /// just sent go to the back of the line. `random` yields numbers in
    /// `0.0..1.0` for the backoff's jitter.
    pub fn tick(&mut self, now: Duration, mut random: impl FnMut() -> f64) -> Tick {
        let mut due = Vec::new();
        let mut park = Vec::new();
        let mut warn = Vec::new();
        for (id, pending) in &mut self.entries {
            if let Some(limit) = self.settings.expire_after {
                if now.saturating_sub(pending.created) >= limit {
                    park.push((*id, ParkReason::Expired(limit)));
                    continue;
                }
            }
            if pending.due > now {
                continue;
            }
            if let Some(max) = self.settings.max_attempts {
                if pending.attempts >= max {
                    park.push((*id, ParkReason::MaxAttempts(pending.attempts)));
                    continue;
                }
            }
            if pending.attempts >= self.settings.warn_after_attempts && !pending.warned {
                pending.warned = true;
                warn.push(*id);
            }
            due.push((pending.due, *id));
        }
        due.sort_unstable();
        let mut send = Vec::with_capacity(due.len().min(self.settings.burst_limit));
        for (_, id) in due.into_iter().take(self.settings.burst_limit) {
            let Some(pending) = self.entries.get_mut(&id) else {
                continue;
            };
            if pending.attempts == 0 {
                self.backlog = self.backlog.saturating_sub(1);
            }
            pending.attempts = pending.attempts.saturating_add(1);
            pending.due =
                now.saturating_add(self.settings.redelivery.delay(pending.attempts, random()));
            send.push(id);
        }
        Tick {
            send,
            park,
            warn,
            resolve: self.in_doubt.iter().copied().collect(),
        }
    }

    /// Rebuilds the outbox after a restart from its durable entries
    /// (`id`, destination, message, when accepted) and its next id. Every
    /// restored entry is due at once, and goes out before anything appended
    /// later.
    pub fn restore<D: Into<Arc<str>>>(
        &mut self,
        next_id: DeliveryId,
        entries: impl IntoIterator<Item = (DeliveryId, D, M, Duration)>,
    ) {
        self.entries.clear();
        self.reserved.clear();
        self.in_doubt.clear();
        for (id, destination, message, created) in entries {
            self.entries
                .insert(id, Pending::restored(destination.into(), message, created));
        }
        let after_last = self
            .entries
            .keys()
            .next_back()
            .map_or(DeliveryId(1), |id| id.next());
        self.next_id = next_id.max(after_last);
        self.backlog = self.entries.len();
    }
}

#[cfg(test)]
mod tests;
