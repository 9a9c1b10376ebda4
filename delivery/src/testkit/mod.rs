//! Fault injection and a history checker for tests (feature `testkit`): a link that drops,
//! duplicates, reorders and delays messages, driven by a seeded RNG.
//!
//! A [`FaultyLink`] is an actor of its own, at its own path, that forwards
//! what it receives to a target through the faults it was given. Point a
//! sender at the link's path instead of the receiver's:
//!
//! ```
//! use std::time::Duration;
//! use courier::prelude::*;
//! use courier::delivery::testkit::{Faults, FaultyLink};
//!
//! struct Echo;
//! impl Actor for Echo {
//!     type Msg = u64;
//!     async fn handle(&mut self, _n: u64, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let system = ActorSystem::new("docs");
//! let echo = system.spawn(Props::new(|| Echo).with_name("echo"))?;
//! let faults = Faults::seeded(7).drop(0.2).duplicate(0.1).delay(Duration::ZERO, Duration::from_millis(5));
//! let (link, stats) = FaultyLink::spawn(&system, "echo-link", echo, faults)?;
//! for n in 0..100 {
//!     link.tell(n);
//! }
//! # let _ = stats;
//! # Ok(())
//! # }
//! ```
//!
//! [`ChaosJournal`] wraps a journal and fails writes and reads at random.
//!
//! [`FaultyLink::spawn_for_deliveries`] also passes each [`Delivery`]'s
//! acknowledgement back through faults of its own, so tests can lose acks
//! as well as messages.
//!
//! The RNG is seeded, so the sequence of decisions is fixed for a given
//! sequence of messages; the interleaving of actors still varies between
//! runs, so print the seed and keep assertions about outcomes (everything
//! arrives exactly once), not about schedules.
//!
//! [`History`] checks those outcomes: feed it what the sender was told and
//! what the receiver applied, and its [`Report`] lists what was lost,
//! unexpected or applied twice.

mod history;

pub use history::{History, Report};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{
    Actor, ActorPath, ActorRef, ActorSystem, BoxError, BoxFuture, Context, MessageSink, Props,
    SendError, TryTellError, Watcher, WatcherId,
};

use async_trait::async_trait;
use courier_persistence::{
    Error as PersistenceError, EventRecord, Journal, Result as PersistenceResult, SeqNr, WriteBatch,
};

use crate::envelope::Ack;
use crate::envelope::Delivery;

/// Which faults a link injects, and the seed of its RNG. Each probability
/// applies to each message independently.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    seed: u64,
    drop: f64,
    drop_every: Option<u64>,
    duplicate: f64,
    reorder: f64,
    reorder_within: Duration,
    delay: Option<(Duration, Duration)>,
}

impl Faults {
    /// A link that injects nothing yet, with RNG seed `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            drop: 0.0,
            drop_every: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_within: Duration::ZERO,
            delay: None,
        }
    }

    /// Drops each message with probability `p`.
    ///
    /// # Panics
    ///
    /// When `p` is not within `0.0..=1.0`.
    #[must_use]
    pub fn drop(mut self, p: f64) -> Self {
        self.drop = probability("drop", p);
        self
    }

    /// Drops the `n`th message, the `2n`th, and so on (counted from the
    /// link's start), as Akka's at-least-once tests do.
    ///
    /// # Panics
    ///
    /// When `n` is 0.
    #[must_use]
    pub fn drop_every(mut self, n: u64) -> Self {
        assert!(n > 0, "drop_every: n must be at least 1");
        self.drop_every = Some(n);
        self
    }

    /// Forwards each message twice with probability `p`.
    ///
    /// # Panics
    ///
    /// When `p` is not within `0.0..=1.0`.
    #[must_use]
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = probability("duplicate", p);
        self
    }

    /// Holds each message back with probability `p`, for a random time up
    /// to `within`, so that later messages overtake it.
    ///
    /// # Panics
    ///
    /// When `p` is not within `0.0..=1.0`.
    #[must_use]
    pub fn reorder(mut self, p: f64, within: Duration) -> Self {
        self.reorder = probability("reorder", p);
        self.reorder_within = within;
        self
    }

    /// Delays every message by a random time in `min..=max` (messages can
    /// overtake each other when the range is wide).
    ///
    /// # Panics
    ///
    /// When `min > max`.
    #[must_use]
    pub fn delay(mut self, min: Duration, max: Duration) -> Self {
        assert!(min <= max, "delay: min {min:?} is above max {max:?}");
        self.delay = Some((min, max));
        self
    }

    /// The RNG seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

fn probability(what: &str, p: f64) -> f64 {
    assert!(
        (0.0..=1.0).contains(&p),
        "{what}: probability {p} is not within 0..=1"
    );
    p
}

/// What a link has done so far. Cheap to clone; clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct LinkStats {
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    received: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

impl LinkStats {
    /// Messages that entered the link.
    pub fn received(&self) -> u64 {
        self.counts.received.load(Ordering::Relaxed)
    }

    /// Messages handed to the target (duplicates counted twice).
    pub fn forwarded(&self) -> u64 {
        self.counts.forwarded.load(Ordering::Relaxed)
    }

    /// Messages dropped.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Messages forwarded twice.
    pub fn duplicated(&self) -> u64 {
        self.counts.duplicated.load(Ordering::Relaxed)
    }

    /// Messages held back so that later ones could overtake them.
    pub fn reordered(&self) -> u64 {
        self.counts.reordered.load(Ordering::Relaxed)
    }
}

/// The decisions of one link: its faults, its RNG and its counts.
struct Injector {
    faults: Faults,
    rng: fastrand::Rng,
    stats: LinkStats,
}

impl Injector {
    fn new(faults: Faults) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(faults.seed),
            faults,
            stats: LinkStats::default(),
        }
    }

    fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min);
        min + span.mul_f64(self.rng.f64())
    }

    /// Passes `msg` through the faults to `target`.
    fn inject<M: Clone + Send + 'static>(&mut self, msg: M, target: &ActorRef<M>) {
        let counts = &self.stats.counts;
        let number = counts.received.fetch_add(1, Ordering::Relaxed) + 1;
        let every = self.faults.drop_every.is_some_and(|n| number % n == 0);
        if every || self.rng.f64() < self.faults.drop {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if self.rng.f64() < self.faults.duplicate {
            counts.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        if copies == 2 {
            self.forward(msg.clone(), target);
        }
        self.forward(msg, target);
    }

    fn forward<M: Send + 'static>(&mut self, msg: M, target: &ActorRef<M>) {
        let counts = Arc::clone(&self.stats.counts);
        let mut wait = match self.faults.delay {
            Some((min, max)) => self.between(min, max),
            None => Duration::ZERO,
        };
        if self.rng.f64() < self.faults.reorder {
            counts.reordered.fetch_add(1, Ordering::Relaxed);
            wait += self.between(Duration::ZERO, self.faults.reorder_within);
        }
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        if wait.is_zero() {
            target.tell(msg);
        } else {
            let target = target.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                target.tell(msg);
            });
        }
    }
}

/// A link that forwards messages to a target through [`Faults`].
pub struct FaultyLink<M> {
    target: ActorRef<M>,
    injector: Injector,
}

impl<M: Clone + Send + 'static> FaultyLink<M> {
    /// Spawns a link at `/user/<name>` that forwards to `target`. Send to
    /// the returned reference (or look the path up) instead of `target`.
    ///
    /// # Errors
    ///
    /// As [`ActorSystem::spawn`] (a duplicate name, a system shutting down).
    pub fn spawn(
        system: &ActorSystem,
        name: &str,
        target: ActorRef<M>,
        faults: Faults,
    ) -> courier_core::Result<(ActorRef<M>, LinkStats)> {
        let stats = LinkStats::default();
        let shared = stats.clone();
        let link = system.spawn(
            Props::new(move || {
                let mut injector = Injector::new(faults.clone());
                // Restarts keep counting into the same stats.
                injector.stats = shared.clone();
                FaultyLink {
                    target: target.clone(),
                    injector,
                }
            })
            .with_name(name),
        )?;
        Ok((link, stats))
    }
}

impl<M: Clone + Send + 'static> Actor for FaultyLink<M> {
    type Msg = M;

    async fn handle(&mut self, msg: M, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.injector.inject(msg, &self.target);
        Ok(())
    }
}

impl<M: Clone + Send + 'static> FaultyLink<Delivery<M>> {
    /// Spawns a link for deliveries: each [`Delivery`] goes to `target`
    /// through `faults`, and its acknowledgement goes back to the sender
    /// through `ack_faults`. Returns the link and the stats of both ways.
    ///
    /// # Errors
    ///
    /// As [`ActorSystem::spawn`].
    pub fn spawn_for_deliveries(
        system: &ActorSystem,
        name: &str,
        target: ActorRef<Delivery<M>>,
        faults: Faults,
        ack_faults: Faults,
    ) -> courier_core::Result<(ActorRef<Delivery<M>>, LinkStats, LinkStats)> {
        let acks = Arc::new(Mutex::new(Injector::new(ack_faults)));
        let ack_stats = courier_core::sync::lock(&acks).stats.clone();
        let rewriter = AckRewriter {
            system: system.clone(),
            target,
            acks,
        };
        let (link, stats) = FaultyLink::spawn(system, name, rewriter.into_ref(system), faults)?;
        Ok((link, stats, ack_stats))
    }
}

/// Rewrites each delivery's `ack_to` so that its ack passes through the
/// ack faults, then hands the delivery to the receiver.
struct AckRewriter<M> {
    system: ActorSystem,
    target: ActorRef<Delivery<M>>,
    acks: Arc<Mutex<Injector>>,
}

impl<M: Clone + Send + 'static> AckRewriter<M> {
    fn into_ref(self, system: &ActorSystem) -> ActorRef<Delivery<M>> {
        ActorRef::from_sink(system, Arc::new(self))
    }

    fn rewrite(&self, mut delivery: Delivery<M>) -> Delivery<M> {
        let tap = AckTap {
            target: delivery.ack_to.clone(),
            acks: Arc::clone(&self.acks),
        };
        delivery.ack_to = ActorRef::from_sink(&self.system, Arc::new(tap));
        delivery
    }
}

impl<M: Clone + Send + 'static> MessageSink<Delivery<M>> for AckRewriter<M> {
    fn path(&self) -> &ActorPath {
        self.target.path()
    }

    fn try_tell(&self, msg: Delivery<M>) -> Result<(), TryTellError<Delivery<M>>> {
        self.target.try_tell(self.rewrite(msg))
    }

    fn send(&self, msg: Delivery<M>) -> BoxFuture<'_, Result<(), SendError<Delivery<M>>>> {
        let msg = self.rewrite(msg);
        Box::pin(self.target.send(msg))
    }

    fn stop(&self) {
        self.target.stop();
    }

    // Watching through the test link is not supported: no `Terminated`.
    fn watch(&self, _watcher: Watcher) {}

    fn unwatch(&self, _watcher: WatcherId) {}
}

/// The way back: one delivery's ack, through the ack faults.
struct AckTap {
    target: ActorRef<Ack>,
    acks: Arc<Mutex<Injector>>,
}

impl MessageSink<Ack> for AckTap {
    fn path(&self) -> &ActorPath {
        self.target.path()
    }

    fn try_tell(&self, msg: Ack) -> Result<(), TryTellError<Ack>> {
        courier_core::sync::lock(&self.acks).inject(msg, &self.target);
        Ok(())
    }

    fn send(&self, msg: Ack) -> BoxFuture<'_, Result<(), SendError<Ack>>> {
        Box::pin(async move { self.try_tell(msg).map_err(|e| SendError(e.into_inner())) })
    }

    fn stop(&self) {
        self.target.stop();
    }

    fn watch(&self, _watcher: Watcher) {}

    fn unwatch(&self, _watcher: WatcherId) {}
}

/// A journal that fails on purpose: each write fails with probability
/// `write_failure` before it reaches the inner journal (nothing is written),
/// and each read (replay, key–value get and scan) fails with probability
/// `read_failure`. The failures are [`courier_persistence::Error::Storage`].
pub struct ChaosJournal {
    inner: Arc<dyn Journal>,
    chaos: Mutex<Chaos>,
    failures: AtomicU64,
}

struct Chaos {
    write_failure: f64,
    read_failure: f64,
    rng: fastrand::Rng,
}

impl std::fmt::Debug for ChaosJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosJournal")
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

impl ChaosJournal {
    /// Wraps `inner`, failing writes and reads with the given probabilities.
    ///
    /// # Panics
    ///
    /// When a probability is not within `0.0..=1.0`.
    pub fn new(inner: Arc<dyn Journal>, write_failure: f64, read_failure: f64, seed: u64) -> Self {
        Self {
            inner,
            chaos: Mutex::new(Chaos {
                write_failure: probability("write_failure", write_failure),
                read_failure: probability("read_failure", read_failure),
                rng: fastrand::Rng::with_seed(seed),
            }),
            failures: AtomicU64::new(0),
        }
    }

    /// Changes the failure probabilities (0 and 0 heals the journal).
    ///
    /// # Panics
    ///
    /// When a probability is not within `0.0..=1.0`.
    pub fn set_failures(&self, write_failure: f64, read_failure: f64) {
        let mut chaos = self.lock();
        chaos.write_failure = probability("write_failure", write_failure);
        chaos.read_failure = probability("read_failure", read_failure);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Chaos> {
        courier_core::sync::lock(&self.chaos)
    }

    /// How many operations failed on purpose so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn chaos(&self, write: bool, what: &str) -> PersistenceResult<()> {
        let failed = {
            let mut chaos = self.lock();
            let p = if write {
                chaos.write_failure
            } else {
                chaos.read_failure
            };
            chaos.rng.f64() < p
        };
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return Err(PersistenceError::Storage(
                format!("injected {what} failure").into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Journal for ChaosJournal {
    async fn write(&self, batch: WriteBatch) -> PersistenceResult<()> {
        self.chaos(true, "write")?;
        self.inner.write(batch).await
    }

    fn store_identity(&self) -> Option<usize> {
        self.inner.store_identity()
    }

    async fn read_events(
        &self,
        persistence_id: &str,
        from: SeqNr,
        to: SeqNr,
        limit: usize,
    ) -> PersistenceResult<Vec<EventRecord>> {
        self.chaos(false, "replay")?;
        self.inner
            .read_events(persistence_id, from, to, limit)
            .await
    }

    async fn highest_seq_nr(&self, persistence_id: &str) -> PersistenceResult<SeqNr> {
        self.inner.highest_seq_nr(persistence_id).await
    }

    async fn deleted_to(&self, persistence_id: &str) -> PersistenceResult<SeqNr> {
        self.inner.deleted_to(persistence_id).await
    }

    async fn delete_events_to(&self, persistence_id: &str, to: SeqNr) -> PersistenceResult<()> {
        self.chaos(true, "delete")?;
        self.inner.delete_events_to(persistence_id, to).await
    }

    async fn kv_get(&self, namespace: &str, key: &[u8]) -> PersistenceResult<Option<Vec<u8>>> {
        self.chaos(false, "read")?;
        self.inner.kv_get(namespace, key).await
    }

    async fn kv_scan(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> PersistenceResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.chaos(false, "scan")?;
        self.inner.kv_scan(namespace, after, limit).await
    }
}
