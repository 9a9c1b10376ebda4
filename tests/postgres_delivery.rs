//! Event sourcing and exactly-once delivery on the shared PostgreSQL
//! journal: an event-sourced sender whose events and outbox entries commit
//! together, a deduplicating receiver whose effect and inbox record commit
//! together, both on one PostgreSQL schema, stopped and recovered halfway;
//! and an event-sourced actor recovering from snapshots and events.

#[path = "support/postgres.rs"]
mod pg;

use std::sync::Arc;
use std::time::Duration;

use courier::persistence::{
    Effect, EventSourced, Journal, Persistent, PersistentContext, PersistentSettings,
    SnapshotCriteria, SnapshotPolicy, SnapshotStore, Snapshots,
};
use courier::prelude::*;
use courier_delivery::testkit::History;
use courier_test_support::ledger::{Ledger, ledger};
use pg::{Desk, DeskCmd};

const ORDERS: u64 = 200;

/// One node's run: recover the desk and the ledger from the journal, place
/// orders up to `until`, wait for every one to be confirmed.
async fn run(schema: &str, until: u64) -> u64 {
    let store = pg::open(schema).await;
    let journal: Arc<dyn Journal> = store.clone();
    let system = ActorSystem::new("pg-delivery");
    system
        .spawn(Ledger::<u64>::props(&journal).with_name("ledger"))
        .expect("spawn ledger");
    let desk_journal = Arc::clone(&journal);
    let desk = system
        .spawn(
            Persistent::props_with(
                "desk",
                move || Desk::new(Arc::clone(&desk_journal)),
                store.clone(),
                store.clone(),
                PersistentSettings {
                    snapshots: SnapshotPolicy::every(50).keep(2).delete_events(true),
                    ..PersistentSettings::default()
                },
            )
            .with_name("desk"),
        )
        .expect("spawn desk");
    let ask = Duration::from_secs(30);
    let mut placed = 0;
    while placed < until {
        placed = desk.ask(DeskCmd::PlaceNext, ask).await.expect("place");
    }
    let started = std::time::Instant::now();
    while desk.ask(DeskCmd::Unconfirmed, ask).await.expect("ask") > 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "not drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    system.shutdown().await;
    placed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_is_applied_exactly_once_across_a_restart() {
    if pg::url().is_none() {
        return;
    }
    let schema = pg::new_schema();
    assert_eq!(run(&schema, ORDERS / 2).await, ORDERS / 2);
    // A new system (a restart, or another node) recovers the desk from its
    // snapshot and events, and the ledger's inbox from its records.
    assert_eq!(run(&schema, ORDERS).await, ORDERS);

    let store = pg::open(&schema).await;
    assert_eq!(store.highest_seq_nr("desk").await.expect("highest"), ORDERS);
    assert!(
        store.deleted_to("desk").await.expect("deleted") > 0,
        "snapshots deleted the events they cover"
    );
    let mut history = History::new();
    for order in 1..=ORDERS {
        history.sent(order);
    }
    for order in ledger(store.as_ref()).await {
        history.applied(order);
    }
    let report = history.check();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.applied as u64, ORDERS);
}

#[derive(Default)]
struct Counter {
    value: u64,
    recovered: Option<tokio::sync::mpsc::UnboundedSender<u64>>,
}

enum Add {
    One(ReplyTo<u64>),
}

impl EventSourced for Counter {
    type Command = Add;
    type Event = u64;

    async fn handle_command(
        &mut self,
        Add::One(reply): Add,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(Effect::persist(1).reply(reply, |s: &Self| s.value))
    }

    fn apply_event(&mut self, n: u64) {
        self.value += n;
    }

    async fn recovery_completed(
        &mut self,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        if let Some(tx) = &self.recovered {
            let _ = tx.send(self.value);
        }
        Ok(())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sourced_actor_recovers_from_snapshots_and_events() {
    if pg::url().is_none() {
        return;
    }
    let schema = pg::new_schema();
    let settings = PersistentSettings {
        snapshots: SnapshotPolicy::every(10).keep(2),
        ..PersistentSettings::default()
    };
    for (round, expected_start) in [(0u64, 0u64), (1, 23), (2, 46)] {
        let store = pg::open(&schema).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let system = ActorSystem::new("pg-counter");
        let counter = system
            .spawn(
                Persistent::props_with(
                    "counter",
                    move || Counter {
                        value: 0,
                        recovered: Some(tx.clone()),
                    },
                    store.clone(),
                    store.clone(),
                    settings.clone(),
                )
                .with_name("counter"),
            )
            .expect("spawn");
        let mut last = 0;
        for _ in 0..23 {
            last = counter
                .ask(Add::One, Duration::from_secs(30))
                .await
                .expect("add");
        }
        assert_eq!(rx.recv().await, Some(expected_start), "round {round}");
        assert_eq!(last, expected_start + 23);
        system.shutdown().await;
        let snapshot = store
            .load_snapshot("counter", SnapshotCriteria::latest())
            .await
            .expect("load")
            .expect("a snapshot");
        assert_eq!(snapshot.metadata.seq_nr, (expected_start + 23) / 10 * 10);
    }
    // The journal is complete and `keep` = 2 snapshots are left.
    let store = pg::open(&schema).await;
    assert_eq!(store.highest_seq_nr("counter").await.expect("highest"), 69);
    let older = store
        .load_snapshot("counter", SnapshotCriteria::latest().max_seq_nr(59))
        .await
        .expect("load");
    assert_eq!(older.map(|s| s.metadata.seq_nr), Some(50));
    let oldest = store
        .load_snapshot("counter", SnapshotCriteria::latest().max_seq_nr(49))
        .await
        .expect("load");
    assert_eq!(oldest, None, "keep = 2 deletes older snapshots");
}
