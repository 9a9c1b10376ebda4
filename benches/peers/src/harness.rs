//! The drivers: one runtime and criterion configuration for all benches, and
//! the workloads, generic over [`Peer`] so that every implementation runs
//! the same code.
//!
//! Each measurement runs inside a task spawned on the runtime (not on the
//! thread that `block_on`s), so that senders and actors share the same two
//! worker threads, as they would in a service.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use tokio::runtime::Runtime;

use crate::latch::Latch;
use crate::target::{MailboxKind, Peer, Target};

/// Messages per iteration of the tell and bounded workloads.
pub const TELL_MESSAGES: u64 = 100_000;
/// Sequential round trips per iteration of the ask workload.
pub const ASK_ROUND_TRIPS: u64 = 10_000;
/// Actors per iteration of the spawn workloads.
pub const SPAWN_ACTORS: usize = 1_000;
/// Concurrent senders of the fan-in workloads.
pub const FAN_IN_SENDERS: usize = 8;
/// Capacity of the bounded mailboxes.
pub const BOUNDED_CAPACITY: usize = 1024;

/// The runtime every bench runs on: multi-thread, two workers (the machine
/// has two cores).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime")
}

/// Criterion settings that keep the whole suite to a few minutes.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// What one iteration does.
#[derive(Clone, Copy, Debug)]
pub enum Workload {
    /// `senders` tasks each `tell` their share of `messages` without
    /// waiting; then one flush.
    Tell {
        /// Concurrent sender tasks (1 sends from the measuring task).
        senders: usize,
        /// Messages in all.
        messages: u64,
    },
    /// As `Tell`, with `send(..).await` (back-pressure on a bounded mailbox).
    Send {
        /// Concurrent sender tasks (1 sends from the measuring task).
        senders: usize,
        /// Messages in all.
        messages: u64,
    },
    /// `round_trips` asks, one after the other.
    Ask {
        /// Sequential round trips.
        round_trips: u64,
    },
}

impl Workload {
    /// Messages (or round trips) per iteration, for `Throughput::Elements`.
    pub fn elements(self) -> u64 {
        match self {
            Self::Tell { messages, .. } | Self::Send { messages, .. } => messages,
            Self::Ask { round_trips } => round_trips,
        }
    }

    /// Runs one iteration against `target`.
    pub async fn run<T: Target>(self, target: &T) {
        match self {
            Self::Tell { senders, messages } => burst(target, senders, messages, false).await,
            Self::Send { senders, messages } => burst(target, senders, messages, true).await,
            Self::Ask { round_trips } => {
                for _ in 0..round_trips {
                    black_box(target.ask().await);
                }
            }
        }
    }
}

/// Sends `messages` from `senders` tasks, then waits until the actor has
/// handled the last one.
async fn burst<T: Target>(target: &T, senders: usize, messages: u64, wait: bool) {
    let share = messages / senders as u64;
    if senders == 1 {
        send_share(target, share, wait).await;
    } else {
        let tasks: Vec<_> = (0..senders)
            .map(|_| {
                let target = target.clone();
                tokio::spawn(async move { send_share(&target, share, wait).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("sender task panicked");
        }
    }
    // Every sender has finished enqueueing (joined), so the flush queues
    // behind all their messages.
    let handled = target.flush().await;
    assert_eq!(handled, share * senders as u64, "messages were lost");
}

async fn send_share<T: Target>(target: &T, share: u64, wait: bool) {
    if wait {
        for x in 0..share {
            target.send(x).await;
        }
    } else {
        for x in 0..share {
            target.tell(x);
        }
    }
}

/// One message workload on one kind of mailbox, to run against each
/// implementation in turn within the same criterion group.
#[derive(Clone, Copy, Debug)]
pub struct MessageBench<'a> {
    /// The runtime everything runs on.
    pub rt: &'a Runtime,
    /// The mailbox each actor gets.
    pub mailbox: MailboxKind,
    /// What one iteration does.
    pub workload: Workload,
}

impl MessageBench<'_> {
    /// Benches the workload against one actor of `peer`, spawned once for
    /// the whole bench, as `name` in `group`; then stops it.
    pub fn run<P: Peer>(&self, group: &mut BenchmarkGroup<'_, WallTime>, name: &str, peer: P) {
        let (rt, workload) = (self.rt, self.workload);
        let (target, handle) = rt.block_on(peer.spawn(self.mailbox, None));
        group.bench_function(name, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let target = target.clone();
                async move {
                    tokio::spawn(async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            workload.run(&target).await;
                        }
                        start.elapsed()
                    })
                    .await
                    .expect("bench task panicked")
                }
            });
        });
        rt.block_on(async {
            peer.stop_all(vec![(target, handle)]).await;
            peer.finish().await;
        });
    }
}

/// What the spawn benches time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnTiming {
    /// From the first spawn until every actor has run its start hook; the
    /// stop that follows is not timed.
    Ready,
    /// As `Ready`, then stop all and wait until every one has stopped: a
    /// whole life.
    Lifecycle,
}

/// Spawning `actors` actors per iteration, to run against each
/// implementation in turn within the same criterion group. Every iteration
/// stops all its actors before the next, so memory does not grow.
#[derive(Clone, Copy, Debug)]
pub struct SpawnBench<'a> {
    /// The runtime everything runs on.
    pub rt: &'a Runtime,
    /// Actors spawned per iteration.
    pub actors: usize,
    /// What is timed.
    pub timing: SpawnTiming,
}

impl SpawnBench<'_> {
    /// Benches spawning actors of `peer`, as `name` in `group`.
    pub fn run<P: Peer>(&self, group: &mut BenchmarkGroup<'_, WallTime>, name: &str, peer: P) {
        let (actors, timing) = (self.actors, self.timing);
        group.bench_function(name, |b| {
            b.to_async(self.rt).iter_custom(|iters| {
                let peer = peer.clone();
                async move {
                    tokio::spawn(async move {
                        let mut timed = Duration::ZERO;
                        for _ in 0..iters {
                            timed += spawn_batch(&peer, actors, timing).await;
                        }
                        timed
                    })
                    .await
                    .expect("bench task panicked")
                }
            });
        });
        self.rt.block_on(peer.finish());
    }
}

/// Spawns `actors` actors, waits until all have started, stops them all;
/// returns the time that `timing` asks for.
async fn spawn_batch<P: Peer>(peer: &P, actors: usize, timing: SpawnTiming) -> Duration {
    let started = Latch::new(actors);
    let start = Instant::now();
    let mut spawned = Vec::with_capacity(actors);
    for _ in 0..actors {
        let actor = peer
            .spawn(MailboxKind::Unbounded, Some(started.clone()))
            .await;
        spawned.push(actor);
    }
    started.wait().await;
    let ready = start.elapsed();
    peer.stop_all(spawned).await;
    match timing {
        SpawnTiming::Ready => ready,
        SpawnTiming::Lifecycle => start.elapsed(),
    }
}
