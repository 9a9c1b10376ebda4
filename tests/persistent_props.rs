//! The event-sourced props builder through the facade: the system's default
//! store, the typed refusal when there is none, snapshots taken every N
//! events and recovered from (the state as its own snapshot, and through
//! `Snapshots`), and the configuration's store and `[snapshots.actor.<id>]`.

use std::sync::Arc;
use std::time::Duration;

use courier::config::Config;
use courier::persistence::{
    MemoryStore, Persistence, PersistenceStatus, RecoveryStatus, SnapshotCriteria, SnapshotStore,
    Snapshots,
};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

const SECOND: Duration = Duration::from_secs(1);

enum Cmd {
    Add(u64, ReplyTo<u64>),
    /// The state's total and where the actor stands.
    Status(ReplyTo<(u64, PersistenceStatus)>),
}

/// Its own snapshot.
#[derive(Default, Serialize, Deserialize)]
struct Total {
    total: u64,
}

impl EventSourced for Total {
    type Command = Cmd;
    type Event = u64;

    async fn handle_command(&mut self, cmd: Cmd, ctx: &mut Ctx<Self>) -> Handled<Self> {
        Ok(match cmd {
            Cmd::Add(n, reply) => Effect::persist(n).reply(reply, |s: &Self| s.total),
            Cmd::Status(reply) => {
                let status = ctx.persistence_status();
                Effect::none().reply(reply, move |s: &Self| (s.total, status))
            }
        })
    }

    fn apply_event(&mut self, n: u64) {
        self.total += n;
    }
}

/// A transient field the snapshot leaves out, through `Snapshots`.
struct Counted {
    total: u64,
    /// Set by the factory; a snapshot must not replace it.
    label: &'static str,
}

impl EventSourced for Counted {
    type Command = (u64, ReplyTo<(u64, &'static str)>);
    type Event = u64;

    async fn handle_command(
        &mut self,
        (n, reply): Self::Command,
        _: &mut Ctx<Self>,
    ) -> Handled<Self> {
        Ok(Effect::persist(n).reply(reply, |s: &Self| (s.total, s.label)))
    }

    fn apply_event(&mut self, n: u64) {
        self.total += n;
    }
}

impl Snapshots for Counted {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.total
    }

    fn apply_snapshot(&mut self, total: u64) {
        self.total = total;
    }
}

async fn status(actor: &ActorRef<Cmd>) -> (u64, PersistenceStatus) {
    actor.ask(Cmd::Status, SECOND).await.expect("status")
}

async fn snapshot_seq_nrs(store: &dyn SnapshotStore, id: &str) -> Vec<u64> {
    let mut found = Vec::new();
    let mut criteria = SnapshotCriteria::latest();
    while let Some(s) = store.load_snapshot(id, criteria).await.expect("load") {
        found.push(s.metadata.seq_nr);
        match s.metadata.seq_nr.checked_sub(1) {
            Some(below) => criteria = SnapshotCriteria::latest().max_seq_nr(below),
            None => break,
        }
    }
    found
}

#[tokio::test]
async fn props_without_any_journal_are_refused_at_spawn_with_the_fix() {
    let system = ActorSystem::new("no-journal");
    let props = Persistent::props("account-1", Total::default).with_name("account-1");
    let err = system
        .spawn(props.clone())
        .expect_err("no journal anywhere");
    let courier::Error::Props { source } = &err else {
        panic!("expected Error::Props, got {err:?}");
    };
    let cause = source
        .downcast_ref::<courier::persistence::Error>()
        .expect("a persistence error");
    match cause {
        courier::persistence::Error::NoStore {
            what,
            persistence_id,
        } => {
            assert_eq!(*what, "journal");
            assert_eq!(persistence_id, "account-1");
        }
        other => panic!("expected NoStore, got {other:?}"),
    }
    let message = cause.to_string();
    assert!(
        message.contains("Persistence::of(&system).set_store"),
        "{message}"
    );
    assert!(message.contains(".with_store(store)"), "{message}");
    // Nothing was spawned: the name is free, and the same props spawn once
    // the system has a default.
    Persistence::of(&system).set_store(Arc::new(MemoryStore::memory().expect("store")));
    let account = system.spawn(props).expect("spawn with the default");
    assert_eq!(
        account.ask(|r| Cmd::Add(3, r), SECOND).await.expect("add"),
        3
    );
    system.shutdown().await;
}

#[tokio::test]
async fn a_state_that_takes_snapshots_needs_a_snapshot_store() {
    let system = ActorSystem::new("no-snapshot-store");
    let journal = Arc::new(MemoryStore::memory().expect("store"));
    // A journal alone serves a state without snapshots...
    let plain = Persistent::props("plain", Total::default).with_journal(journal.clone());
    system
        .spawn(plain)
        .expect("no snapshots, no snapshot store needed");
    // ...but not one that takes them.
    let snapshotting = Persistent::props("snap", Total::default)
        .with_journal(journal)
        .snapshot_every(10);
    let err = system.spawn(snapshotting).expect_err("no snapshot store");
    let courier::Error::Props { source } = &err else {
        panic!("expected Error::Props, got {err:?}");
    };
    assert!(
        matches!(
            source.downcast_ref::<courier::persistence::Error>(),
            Some(courier::persistence::Error::NoStore {
                what: "snapshot store",
                ..
            })
        ),
        "{source}"
    );
    system.shutdown().await;
}

#[tokio::test]
async fn snapshots_are_taken_every_n_events_and_recovery_starts_from_the_newest() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("first");
    Persistence::of(&system).set_store(Arc::clone(&store));
    let props = || Persistent::props("total", Total::default).snapshot_every(10);
    let actor = system.spawn(props()).expect("spawn");
    for n in 1..=25 {
        actor.ask(|r| Cmd::Add(n, r), SECOND).await.expect("add");
    }
    let (total, at) = status(&actor).await;
    assert_eq!(total, (1..=25).sum::<u64>());
    assert_eq!(at.seq_nr, 25);
    assert_eq!(at.last_snapshot, Some(20));
    system.shutdown().await;
    // Every 10 events, keeping 2.
    assert_eq!(snapshot_seq_nrs(&*store, "total").await, vec![20, 10]);

    let system = ActorSystem::new("second");
    Persistence::of(&system).set_store(Arc::clone(&store));
    let actor = system.spawn(props()).expect("respawn");
    let (total, at) = status(&actor).await;
    assert_eq!(total, (1..=25).sum::<u64>());
    assert_eq!(
        at.recovery,
        RecoveryStatus::Completed {
            from_snapshot: Some(20),
            replayed: 5,
        }
    );
    system.shutdown().await;
}

#[tokio::test]
async fn a_snapshots_form_keeps_the_fields_it_leaves_out() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("first");
    let props = |label| {
        Persistent::props("counted", move || Counted { total: 0, label })
            .with_store(Arc::clone(&store))
            .snapshot_every(2)
    };
    let actor = system.spawn(props("one")).expect("spawn");
    for n in [1, 2, 3] {
        actor.ask(|r| (n, r), SECOND).await.expect("add");
    }
    system.shutdown().await;
    assert_eq!(snapshot_seq_nrs(&*store, "counted").await, vec![2]);

    let system = ActorSystem::new("second");
    let actor = system.spawn(props("two")).expect("respawn");
    // 1 + 2 from the snapshot, 3 replayed, 4 new; the label is the new
    // factory's.
    assert_eq!(
        actor.ask(|r| (4, r), SECOND).await.expect("add"),
        (10, "two")
    );
    system.shutdown().await;
}

#[tokio::test]
async fn the_configured_store_and_snapshot_overrides_in_a_few_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    let toml = format!(
        "[persistence]\npath = {path:?}\n\n[snapshots]\nevery = 1000\n\n[snapshots.actor.account-7]\nevery = 3\n"
    );
    let config = Config::from_str(&toml).expect("config");
    let system = ActorSystem::new("configured");
    let store = config
        .persistence
        .open_as_default(&system)
        .expect("open the store");
    let props = config.persistent_props("account-7", Total::default);
    assert_eq!(props.settings().snapshots.every, Some(3));
    let actor = system.spawn(props).expect("spawn");
    for n in 1..=7 {
        actor.ask(|r| Cmd::Add(n, r), SECOND).await.expect("add");
    }
    assert_eq!(status(&actor).await.1.last_snapshot, Some(6));
    assert!(config.unused_overrides().is_empty());
    system.shutdown().await;
    // On the embedded engine the configuration named.
    assert_eq!(snapshot_seq_nrs(&*store, "account-7").await, vec![6, 3]);

    let system = ActorSystem::new("again");
    Persistence::of(&system).set_store(Arc::clone(&store));
    let actor = system
        .spawn(config.persistent_props("account-7", Total::default))
        .expect("respawn");
    let (total, at) = status(&actor).await;
    assert_eq!(total, 28);
    assert_eq!(
        at.recovery,
        RecoveryStatus::Completed {
            from_snapshot: Some(6),
            replayed: 1,
        }
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_store_serves_actors_spawned_concurrently() {
    let system = ActorSystem::new("concurrent");
    Persistence::of(&system).set_store(Arc::new(MemoryStore::memory().expect("store")));
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let system = system.clone();
        tasks.push(tokio::spawn(async move {
            let props = Persistent::props(format!("acct-{i}"), Total::default).snapshot_every(2);
            let actor = system.spawn(props).expect("spawn");
            let mut last = 0;
            for n in 1..=5 {
                last = actor
                    .ask(|r| Cmd::Add(n * i, r), SECOND)
                    .await
                    .expect("add");
            }
            last
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.expect("task"), 15 * i as u64);
    }
    system.shutdown().await;
}

/// A snapshot store whose saves wait until the test lets them through.
struct GatedSnapshots {
    inner: Arc<MemoryStore>,
    gate: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl SnapshotStore for GatedSnapshots {
    async fn save_snapshot(
        &self,
        snapshot: courier::persistence::Snapshot,
    ) -> courier::persistence::Result<()> {
        let _pass = self.gate.acquire().await.expect("gate open");
        self.inner.save_snapshot(snapshot).await
    }

    async fn load_snapshot(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> courier::persistence::Result<Option<courier::persistence::Snapshot>> {
        self.inner.load_snapshot(persistence_id, criteria).await
    }

    async fn delete_snapshot(
        &self,
        persistence_id: &str,
        seq_nr: u64,
    ) -> courier::persistence::Result<()> {
        self.inner.delete_snapshot(persistence_id, seq_nr).await
    }

    async fn delete_snapshots(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> courier::persistence::Result<()> {
        self.inner.delete_snapshots(persistence_id, criteria).await
    }
}

#[tokio::test]
async fn a_reply_does_not_wait_for_the_snapshot_its_events_make_due() {
    let system = ActorSystem::new("reply-first");
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let snapshots = Arc::new(GatedSnapshots {
        inner: Arc::clone(&store),
        gate: tokio::sync::Semaphore::new(0),
    });
    let props = Persistent::props("gated", Total::default)
        .with_journal(store.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_every(2);
    let account = system.spawn(props).expect("spawn");
    assert_eq!(account.ask(|r| Cmd::Add(1, r), SECOND).await.expect("1"), 1);
    // The second event makes a snapshot due; its save is held at the gate,
    // and the reply comes anyway.
    assert_eq!(account.ask(|r| Cmd::Add(2, r), SECOND).await.expect("2"), 3);
    assert!(snapshot_seq_nrs(store.as_ref(), "gated").await.is_empty());
    // The next command waits for the snapshot, so it is of exactly the
    // state after event 2.
    let third = account.ask(|r| Cmd::Add(4, r), Duration::from_millis(100));
    assert!(third.await.is_err(), "a command ran during the snapshot");
    snapshots.gate.add_permits(10);
    let (total, status) = status(&account).await;
    assert_eq!(total, 7);
    assert_eq!(status.last_snapshot, Some(2));
    assert_eq!(snapshot_seq_nrs(store.as_ref(), "gated").await, vec![2]);
    system.shutdown().await;
}
