//! Crash test: a child process (this test binary, re-run) persists events as
//! fast as it can and prints every sequence number whose persist returned
//! `Ok`; the parent SIGKILLs it at a random moment, reopens the store and
//! checks that every acknowledged event survived, without gaps, and that
//! recovery rebuilds the state a full replay gives. On each durable engine
//! (sled and fjall).
//!
//! Seeds are fixed and printed; `COURIER_CRASH_SEED=<n>` replays one run and
//! `COURIER_CRASH_CYCLES=<n>` changes the number of cycles (default 20).

#![cfg(all(feature = "sled", feature = "fjall"))]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{ActorSystem, BoxError, Props, ReplyTo};
use courier_persistence::{
    DurableStore, Effect, EngineKind, EventSourced, Journal, Persistent, PersistentContext,
    PersistentSettings, ReplayRange, SnapshotPolicy, Snapshots, replay,
};
use courier_test_support::Rng;
use courier_test_support::crash::{Child, Plan, child_runtime};
use courier_test_support::store::{ENGINE_ENV, open_durable, open_store};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "COURIER_CRASH_CHILD_DIR";
const ACTORS: usize = 4;

#[derive(Default)]
struct Counter {
    value: u64,
}

enum Cmd {
    Increment(ReplyTo<u64>),
    Value(ReplyTo<u64>),
}

#[derive(Serialize, Deserialize)]
struct Incremented;

impl EventSourced for Counter {
    type Command = Cmd;
    type Event = Incremented;

    async fn handle_command(
        &mut self,
        cmd: Cmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(match cmd {
            Cmd::Increment(reply) => Effect::persist(Incremented).reply(reply, |s: &Self| s.value),
            Cmd::Value(reply) => {
                reply.reply(self.value);
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, _: Incremented) {
        self.value += 1;
    }
}

impl Snapshots for Counter {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.value
    }

    fn apply_snapshot(&mut self, value: u64) {
        self.value = value;
    }
}

fn props(store: &Arc<DurableStore>, i: usize) -> Props<Persistent<Counter>> {
    Persistent::props_with(
        format!("counter-{i}"),
        Counter::default,
        store.clone(),
        store.clone(),
        PersistentSettings {
            snapshots: SnapshotPolicy::every(50).keep(2).delete_events(true),
            ..PersistentSettings::default()
        },
    )
}

/// The child: recover, then persist forever, printing each acknowledged
/// (actor, value) — the value equals the event's sequence number.
fn child(dir: &str) {
    child_runtime().block_on(async {
        let store = Arc::new(open_store(dir).await);
        let system = ActorSystem::new("crash-child");
        let mut tasks = Vec::new();
        for i in 0..ACTORS {
            let actor = system.spawn(props(&store, i)).expect("spawn");
            tasks.push(tokio::spawn(async move {
                loop {
                    let seq = actor
                        .ask(Cmd::Increment, Duration::from_secs(30))
                        .await
                        .expect("persist");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {i} {seq}").expect("stdout");
                    out.flush().expect("flush");
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[test]
fn acknowledged_events_survive_sigkill_on_sled() {
    acknowledged_events_survive_sigkill(
        EngineKind::Sled,
        "acknowledged_events_survive_sigkill_on_sled",
    );
}

#[test]
fn acknowledged_events_survive_sigkill_on_fjall() {
    acknowledged_events_survive_sigkill(
        EngineKind::Fjall,
        "acknowledged_events_survive_sigkill_on_fjall",
    );
}

fn acknowledged_events_survive_sigkill(kind: EngineKind, test: &str) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let Plan { seed, cycles } = Plan::from_env(0x00c0_ffee, 20);
    println!(
        "crash test on {kind}: seed {seed} (replay with COURIER_CRASH_SEED={seed}), {cycles} cycles"
    );
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_str = dir.path().to_str().expect("utf-8 path").to_owned();
    let mut acked: HashMap<usize, u64> = HashMap::new();

    for cycle in 0..cycles {
        let kill_after = Duration::from_millis(30 + rng.below(300));
        let seen = Arc::new(Mutex::new(Vec::<(usize, u64)>::new()));
        let sink = Arc::clone(&seen);
        let env = [(CHILD_ENV, dir_str.as_str()), (ENGINE_ENV, kind.name())];
        let mut child = Child::spawn(test, &env, move |line| {
            let mut parts = line.split_whitespace();
            if parts.next() != Some("ack") {
                return;
            }
            let (Some(i), Some(seq)) = (parts.next(), parts.next()) else {
                return;
            };
            if let (Ok(i), Ok(seq)) = (i.parse(), seq.parse()) {
                sink.lock().expect("lock").push((i, seq));
            }
        });
        // Wait for the first acknowledgement, then a random moment more.
        child.wait_until(
            &format!("{kind} seed {seed} cycle {cycle}: first acknowledgement"),
            Duration::from_secs(30),
            || !seen.lock().expect("lock").is_empty(),
        );
        std::thread::sleep(kill_after);
        child.kill();

        let seen = seen.lock().expect("lock").clone();
        assert!(!seen.is_empty(), "cycle {cycle}: no progress");
        for (i, seq) in &seen {
            let max = acked.entry(*i).or_default();
            *max = (*max).max(*seq);
        }
        verify(kind, &dir_str, &acked, cycle, seed);
        println!(
            "cycle {cycle}: killed after {kill_after:?}, {} acks, ok",
            seen.len()
        );
    }
}

/// Reopens the store and checks every invariant.
fn verify(kind: EngineKind, dir: &str, acked: &HashMap<usize, u64>, cycle: u64, seed: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Arc::new(open_durable(kind, dir).await);
        let system = ActorSystem::new("verify");
        for i in 0..ACTORS {
            let pid = format!("counter-{i}");
            let want = acked.get(&i).copied().unwrap_or(0);
            let highest = store.highest_seq_nr(&pid).await.expect("highest");
            assert!(
                highest >= want,
                "{kind} seed {seed} cycle {cycle}: {pid} acknowledged {want} but the journal ends at {highest}"
            );
            // The events still in the journal form an unbroken sequence up to
            // the highest (replay fails on a gap or a bad checksum).
            let deleted = store.deleted_to(&pid).await.expect("deleted");
            let stats = replay(&*store, &pid, ReplayRange::all(), 256, |_| Ok(()))
                .await
                .unwrap_or_else(|e| panic!("{kind} seed {seed} cycle {cycle}: {pid}: {e}"));
            assert_eq!(
                stats.events,
                highest - deleted,
                "{kind} seed {seed} cycle {cycle}: {pid} events missing"
            );
            // Recovery (snapshot + replay) gives the value a full history has.
            let actor = system.spawn(props(&store, i)).expect("spawn");
            let value = actor
                .ask(Cmd::Value, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("{kind} seed {seed} cycle {cycle}: {pid} recovery: {e}"));
            assert_eq!(value, highest, "{kind} seed {seed} cycle {cycle}: {pid} recovered state");
        }
        system.shutdown().await;
        // Release the engine's lock now, so the next child opens without
        // waiting.
        store.close().await.expect("close");
    });
}
