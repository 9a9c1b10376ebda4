//! Crash test with real processes: a child process (this test binary, re-run)
//! runs an event-sourced sender and a deduplicating receiver, each on its own
//! durable store, placing orders as fast as it can; the parent SIGKILLs it at
//! random moments, restarts it, and checks the receiver's ledger after each
//! cycle (nothing applied twice, nothing applied that was never placed) and
//! at the end (each of the N orders applied exactly once, none missing).
//!
//! Seeds are fixed and printed; `COURIER_CRASH_SEED=<n>` replays one run and
//! `COURIER_CRASH_CYCLES=<n>` changes the number of cycles (default 20).
//! The stores are sled's unless `COURIER_TEST_ENGINE=fjall` says otherwise
//! (the child inherits the variable).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::{Deliverer, OutboxSettings, Redelivery};
use courier::persistence::{
    Effect, EventSourced, Journal, Persistent, PersistentContext, PersistentSettings,
    SnapshotPolicy, Snapshots,
};
use courier::prelude::*;
// The facade has `courier::delivery::testkit` only under its `testkit`
// feature; the dev-dependency enables it on the crate itself.
use courier_delivery::testkit::History;
use courier_test_support::Rng;
use courier_test_support::crash::{Child, Plan, child_runtime};
use courier_test_support::ledger::{Ledger, ledger};
use courier_test_support::store::{engine, open_store};

const CHILD_ENV: &str = "COURIER_DELIVERY_CRASH_DIR";
const ORDERS: u64 = 3000;
const TEST: &str = "each_order_is_applied_exactly_once_across_sigkills";

// ---- the child ----

/// The sender: each order is an event, committed with its outbox entry.
struct Desk {
    journal: Arc<dyn Journal>,
    placed: u64,
    out: Option<Deliverer<u64>>,
}

enum DeskCmd {
    PlaceNext(ReplyTo<u64>),
    Unconfirmed(ReplyTo<usize>),
}

impl EventSourced for Desk {
    type Command = DeskCmd;
    type Event = u64;

    async fn handle_command(
        &mut self,
        cmd: DeskCmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        let out = self.out.as_ref().ok_or("not recovered")?;
        Ok(match cmd {
            // Once every order is placed, a restarted child places no more
            // (the final count is exact however early a cycle got there).
            DeskCmd::PlaceNext(reply) if self.placed >= ORDERS => {
                reply.reply(self.placed);
                Effect::none()
            }
            DeskCmd::PlaceNext(reply) => {
                let order = self.placed + 1;
                let prepared = out.prepare("/user/ledger", |_| order)?;
                Effect::persist(order)
                    .with_writes(prepared.writes())
                    .then(move |_: &Self, _| {
                        prepared.send();
                    })
                    .reply(reply, |s: &Self| s.placed)
            }
            DeskCmd::Unconfirmed(reply) => {
                reply.reply(out.unconfirmed());
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, order: u64) {
        self.placed = order;
    }

    async fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(100),
            },
            ..OutboxSettings::default()
        };
        self.out = Some(Deliverer::start(ctx, "desk", Arc::clone(&self.journal), settings).await?);
        Ok(())
    }
}

impl Snapshots for Desk {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.placed
    }

    fn apply_snapshot(&mut self, placed: u64) {
        self.placed = placed;
    }
}

fn child(dir: &str) {
    child_runtime().block_on(async {
        let sender_store = Arc::new(open_store(&format!("{dir}/sender")).await);
        let receiver_store: Arc<dyn Journal> =
            Arc::new(open_store(&format!("{dir}/receiver")).await);
        let system = ActorSystem::new("crash-child");
        system
            .spawn(Ledger::<u64>::props(&receiver_store).with_name("ledger"))
            .expect("spawn ledger");
        let journal: Arc<dyn Journal> = sender_store.clone();
        let desk = system
            .spawn(
                Persistent::props_with(
                    "desk",
                    move || Desk {
                        journal: Arc::clone(&journal),
                        placed: 0,
                        out: None,
                    },
                    sender_store.clone(),
                    sender_store.clone(),
                    PersistentSettings {
                        snapshots: SnapshotPolicy::every(500).keep(2).delete_events(true),
                        ..PersistentSettings::default()
                    },
                )
                .with_name("desk"),
            )
            .expect("spawn desk");
        let ask = Duration::from_secs(30);
        loop {
            let placed = desk.ask(DeskCmd::PlaceNext, ask).await.expect("place");
            println!("placed {placed}");
            if placed >= ORDERS {
                break;
            }
        }
        while desk.ask(DeskCmd::Unconfirmed, ask).await.expect("ask") > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("drained");
        let _ = std::io::stdout().flush();
        system.shutdown().await;
    });
}

// ---- the parent ----

/// What a child printed: the highest order whose placement returned, and
/// whether it finished.
#[derive(Default)]
struct Progress {
    placed: u64,
    drained: bool,
}

fn spawn_child(dir: &str) -> (Child, Arc<Mutex<Progress>>) {
    let progress = Arc::new(Mutex::new(Progress::default()));
    let seen = Arc::clone(&progress);
    let child = Child::spawn(TEST, &[(CHILD_ENV, dir)], move |line| {
        let mut p = seen.lock().expect("lock");
        if let Some(n) = line.strip_prefix("placed ") {
            if let Ok(n) = n.trim().parse::<u64>() {
                p.placed = p.placed.max(n);
            }
        } else if line.trim() == "drained" {
            p.drained = true;
        }
    });
    (child, progress)
}

#[test]
fn each_order_is_applied_exactly_once_across_sigkills() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let Plan { seed, cycles } = Plan::from_env(0x0de1_1fe7, 20);
    println!(
        "delivery crash test on {}: seed {seed} (replay with COURIER_CRASH_SEED={seed}), {cycles} cycles, {ORDERS} orders",
        engine()
    );
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().to_str().expect("utf-8 path").to_owned();
    let mut acknowledged = 0;

    for cycle in 0..cycles {
        let kill_after = Duration::from_millis(20 + rng.below(250));
        let (mut child, progress) = spawn_child(&dir);
        // Wait for progress (or the end), then a random moment more.
        let before = acknowledged;
        child.wait_until(
            &format!("seed {seed} cycle {cycle}: progress"),
            Duration::from_secs(60),
            || {
                let p = progress.lock().expect("lock");
                p.placed > before || p.drained
            },
        );
        std::thread::sleep(kill_after);
        child.kill();
        acknowledged = acknowledged.max(progress.lock().expect("lock").placed);
        let applied = verify(&dir, acknowledged, false, seed, cycle);
        println!(
            "cycle {cycle}: killed after {kill_after:?}; {acknowledged} placed, {applied} applied, ok"
        );
    }

    // A last run without a kill: everything placed, drained, applied once.
    let (child, progress) = spawn_child(&dir);
    let status = child.wait(Duration::from_secs(300));
    assert!(status.success(), "seed {seed}: final run failed: {status}");
    assert!(
        progress.lock().expect("lock").drained,
        "seed {seed}: not drained"
    );
    let applied = verify(&dir, ORDERS, true, seed, cycles);
    assert_eq!(applied, ORDERS, "seed {seed}: orders missing");
}

/// Checks the stores after a kill, or after the run that `drained` its
/// outbox; returns how many orders were applied.
fn verify(dir: &str, acknowledged: u64, drained: bool, seed: u64, cycle: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sender = open_store(&format!("{dir}/sender")).await;
        let placed = sender.highest_seq_nr("desk").await.expect("highest");
        assert!(
            placed >= acknowledged,
            "seed {seed} cycle {cycle}: order {acknowledged} was acknowledged but the journal ends at {placed}"
        );
        drop(sender);
        let receiver = open_store(&format!("{dir}/receiver")).await;
        let mut history = History::new();
        for order in 1..=placed {
            // Until the outbox drained, a placed order may still be in
            // flight: applied once or not yet, never twice.
            if drained {
                history.sent(order);
            } else {
                history.maybe_sent(order);
            }
        }
        for order in ledger(&receiver).await {
            history.applied(order);
        }
        let report = history.check();
        assert!(
            report.is_clean(),
            "seed {seed} cycle {cycle}: {report} (journal ends at {placed})"
        );
        report.applied as u64
    })
}
