//! Two nodes (two OS processes, this test binary re-run) sharing one
//! PostgreSQL journal.
//!
//! Failover: node A runs an event-sourced sender and a deduplicating
//! receiver and is SIGKILLed mid-stream; node B starts the same actors
//! (same names) on the same database and finishes: every order applied
//! exactly once (history checker), nothing lost. Ten seeds, each in a
//! schema of its own; `COURIER_CRASH_SEED=<n>` replays one.
//!
//! Fencing: both nodes run the same sender at once, on purpose. The
//! journal never interleaves their writes: the node that falls behind gets
//! a typed `SequenceConflict`, its actor stops, and its process ends.

#[path = "support/postgres.rs"]
mod pg;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use courier::persistence::{
    EventRecord, Journal, Persistent, PersistentSettings, ReplayRange, SeqNr, SnapshotPolicy,
    WriteBatch, replay,
};
use courier::prelude::*;
use courier_delivery::testkit::History;
use courier_test_support::Rng;
use courier_test_support::crash::{Child, Plan, child_runtime};
use courier_test_support::ledger::{Ledger, ledger};
use pg::{Desk, DeskCmd};

const CHILD_ENV: &str = "COURIER_PG_FAILOVER_CHILD";
const ORDERS: u64 = 200;
const SEEDS: u64 = 10;
const FAILOVER: &str = "node_b_finishes_what_a_sigkilled_node_a_started_exactly_once";
const FENCING: &str = "a_second_node_running_the_same_sender_is_fenced_off";
/// The exit code of a child whose sender was fenced off.
const FENCED: i32 = 3;

// ---- the child: one node ----

/// The journal as a node sees it, reporting the typed conflict that fences
/// it off before its actor stops.
struct Reporting(Arc<dyn Journal>);

#[async_trait]
impl Journal for Reporting {
    async fn write(&self, batch: WriteBatch) -> courier::persistence::Result<()> {
        let result = self.0.write(batch).await;
        if let Err(courier::persistence::Error::SequenceConflict {
            persistence_id,
            expected,
            got,
        }) = &result
        {
            println!("conflict {persistence_id} expected={expected} got={got}");
            let _ = std::io::stdout().flush();
        }
        result
    }

    fn store_identity(&self) -> Option<usize> {
        self.0.store_identity()
    }
    async fn read_events(
        &self,
        pid: &str,
        from: SeqNr,
        to: SeqNr,
        limit: usize,
    ) -> courier::persistence::Result<Vec<EventRecord>> {
        self.0.read_events(pid, from, to, limit).await
    }
    async fn highest_seq_nr(&self, pid: &str) -> courier::persistence::Result<SeqNr> {
        self.0.highest_seq_nr(pid).await
    }
    async fn deleted_to(&self, pid: &str) -> courier::persistence::Result<SeqNr> {
        self.0.deleted_to(pid).await
    }
    async fn delete_events_to(&self, pid: &str, to: SeqNr) -> courier::persistence::Result<()> {
        self.0.delete_events_to(pid, to).await
    }
    async fn kv_get(&self, ns: &str, key: &[u8]) -> courier::persistence::Result<Option<Vec<u8>>> {
        self.0.kv_get(ns, key).await
    }
    async fn kv_scan(
        &self,
        ns: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> courier::persistence::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.0.kv_scan(ns, after, limit).await
    }
}

/// A node: the desk (and, unless `fencing`, the ledger) on the shared
/// schema, placing orders up to `ORDERS`, then waiting for every ack.
fn node(schema: &str, fencing: bool) {
    let code = child_runtime().block_on(async {
        let store = pg::open(schema).await;
        let journal: Arc<dyn Journal> = Arc::new(Reporting(store.clone()));
        let system = ActorSystem::new("pg-node");
        if !fencing {
            system
                .spawn(Ledger::<u64>::props(&journal).with_name("ledger"))
                .expect("spawn ledger");
        }
        let desk_journal = Arc::clone(&journal);
        let desk = system
            .spawn(
                Persistent::props_with(
                    "desk",
                    move || Desk::new(Arc::clone(&desk_journal)),
                    Arc::clone(&journal),
                    store.clone(),
                    PersistentSettings {
                        snapshots: SnapshotPolicy::every(100).keep(2),
                        ..PersistentSettings::default()
                    },
                )
                .with_name("desk"),
            )
            .expect("spawn desk");
        let ask = Duration::from_secs(30);
        loop {
            match desk.ask(DeskCmd::PlaceNext, ask).await {
                Ok(placed) => {
                    println!("placed {placed}");
                    if placed >= ORDERS {
                        break;
                    }
                }
                // The desk stopped: fenced off by the other node.
                Err(e) => {
                    println!("stopped: {e}");
                    let _ = std::io::stdout().flush();
                    return FENCED;
                }
            }
        }
        if !fencing {
            while desk.ask(DeskCmd::Unconfirmed, ask).await.expect("ask") > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            println!("drained");
        }
        let _ = std::io::stdout().flush();
        system.shutdown().await;
        0
    });
    std::process::exit(code);
}

/// What a node printed.
#[derive(Default)]
struct Progress {
    placed: u64,
    drained: bool,
    conflicts: Vec<String>,
}

fn spawn_node(test: &str, schema: &str, node: &str) -> (Child, Arc<Mutex<Progress>>) {
    let progress = Arc::new(Mutex::new(Progress::default()));
    let seen = Arc::clone(&progress);
    let role = format!("{schema}:{node}");
    let child = Child::spawn(test, &[(CHILD_ENV, &role)], move |line| {
        let mut p = seen.lock().expect("lock");
        if let Some(n) = line.strip_prefix("placed ") {
            if let Ok(n) = n.trim().parse::<u64>() {
                p.placed = p.placed.max(n);
            }
        } else if line.trim() == "drained" {
            p.drained = true;
        } else if line.starts_with("conflict ") {
            p.conflicts.push(line.to_owned());
        }
    });
    (child, progress)
}

/// Runs the child role if this process is one.
fn child_role(fencing: bool) -> bool {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let (schema, _node) = role.split_once(':').expect("schema:node");
    node(schema, fencing);
    true
}

// ---- the parent ----

#[test]
fn node_b_finishes_what_a_sigkilled_node_a_started_exactly_once() {
    if child_role(false) || pg::url().is_none() {
        return;
    }
    let Plan { seed, cycles } = Plan::from_env(0xfa11_0be5, SEEDS);
    let seeds: Vec<u64> = match std::env::var("COURIER_CRASH_SEED") {
        Ok(_) => vec![seed],
        Err(_) => (0..cycles).map(|i| seed + i).collect(),
    };
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let schema = pg::new_schema();
        let (mut a, progress) = spawn_node(FAILOVER, &schema, "a");
        let until = 1 + rng.below(ORDERS / 2);
        a.wait_until(
            &format!("seed {seed}: node a places {until}"),
            Duration::from_secs(60),
            || progress.lock().expect("lock").placed >= until,
        );
        std::thread::sleep(Duration::from_millis(rng.below(30)));
        a.kill();
        let acknowledged = progress.lock().expect("lock").placed;
        verify(&schema, acknowledged, false, seed);

        let (b, progress) = spawn_node(FAILOVER, &schema, "b");
        let status = b.wait(Duration::from_secs(120));
        assert!(status.success(), "seed {seed}: node b failed: {status}");
        assert!(
            progress.lock().expect("lock").drained,
            "seed {seed}: not drained"
        );
        let applied = verify(&schema, ORDERS, true, seed);
        assert_eq!(applied, ORDERS, "seed {seed}: orders missing");
        println!(
            "seed {seed} (replay with COURIER_CRASH_SEED={seed}): node a killed after {acknowledged} \
             placed, node b finished: {applied} applied exactly once"
        );
    }
}

/// Checks the shared journal: every acknowledged order is in it, and the
/// ledger applied each placed order at most once (exactly once once
/// `drained`). Returns how many were applied.
fn verify(schema: &str, acknowledged: u64, drained: bool, seed: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = pg::open(schema).await;
        let placed = store.highest_seq_nr("desk").await.expect("highest");
        assert!(
            placed >= acknowledged,
            "seed {seed}: order {acknowledged} was acknowledged but the journal ends at {placed}"
        );
        let mut history = History::new();
        for order in 1..=placed {
            if drained {
                history.sent(order);
            } else {
                history.maybe_sent(order);
            }
        }
        for order in ledger(store.as_ref()).await {
            history.applied(order);
        }
        let report = history.check();
        assert!(
            report.is_clean(),
            "seed {seed}: {report} (journal ends at {placed})"
        );
        report.applied as u64
    })
}

#[test]
fn a_second_node_running_the_same_sender_is_fenced_off() {
    if child_role(true) || pg::url().is_none() {
        return;
    }
    let schema = pg::new_schema();
    // Both nodes at once, on purpose.
    let (a, pa) = spawn_node(FENCING, &schema, "a");
    let (b, pb) = spawn_node(FENCING, &schema, "b");
    let (sa, sb) = (
        a.wait(Duration::from_secs(120)),
        b.wait(Duration::from_secs(120)),
    );
    let fenced: Vec<_> = [(&sa, &pa), (&sb, &pb)]
        .into_iter()
        .filter(|(s, _)| s.code() == Some(FENCED))
        .collect();
    assert_eq!(
        fenced.len(),
        1,
        "exactly one node must be fenced off: a {sa}, b {sb}"
    );
    let (_, loser) = fenced[0];
    let conflicts = loser.lock().expect("lock").conflicts.clone();
    assert!(
        conflicts.iter().any(|c| c.starts_with("conflict desk ")),
        "the fenced node saw a typed sequence conflict: {conflicts:?}"
    );
    assert!(
        sa.success() || sb.success(),
        "the other node finished: a {sa}, b {sb}"
    );
    // The journal holds one writer's events after the other's, never
    // interleaved: the writer id changes at most once.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = pg::open(&schema).await;
        let mut writers = Vec::new();
        let stats = replay(store.as_ref(), "desk", ReplayRange::all(), 128, |r| {
            if writers.last() != Some(&r.writer_id) {
                writers.push(r.writer_id);
            }
            Ok(())
        })
        .await
        .expect("replay");
        assert!(stats.events >= ORDERS, "{} events", stats.events);
        assert!(
            writers.len() <= 2,
            "the two nodes' writes interleave: {} runs of writer ids",
            writers.len()
        );
    });
}
