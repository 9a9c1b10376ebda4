//! Event-sourced actors: persist, apply, reply, recover, snapshots,
//! schema evolution and failure handling.

mod support;

use std::sync::Arc;
use std::time::Duration;

use courier_core::DeadLetter;
use courier_core::{ActorRef, ActorSystem, BoxError, ReplyTo, SupervisorStrategy};
use courier_persistence::{
    Effect, EventSourced, Journal, Manifest, MemoryStore, Persistent, PersistentContext,
    PersistentSettings, ReplayRange, Snapshot, SnapshotCriteria, SnapshotPolicy, SnapshotStore,
    Snapshots, Store, decode_payload,
};
use serde::{Deserialize, Serialize};
use support::TestEngine;

const SECOND: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Ledger {
    entries: Vec<u64>,
    recovered_with: Option<usize>,
}

enum Cmd {
    Append(u64, ReplyTo<usize>),
    /// Appends only if the ledger has exactly `len` entries.
    AppendAt {
        len: usize,
        value: u64,
        reply: ReplyTo<bool>,
    },
    Entries(ReplyTo<Vec<u64>>),
    RecoveredWith(ReplyTo<Option<usize>>),
    Fail,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Appended(u64);

impl EventSourced for Ledger {
    type Command = Cmd;
    type Event = Appended;

    async fn handle_command(
        &mut self,
        cmd: Cmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(match cmd {
            Cmd::Append(v, reply) => {
                Effect::persist(Appended(v)).reply(reply, |s: &Self| s.entries.len())
            }
            Cmd::AppendAt { len, value, reply } => {
                if self.entries.len() == len {
                    Effect::persist(Appended(value)).reply(reply, |_| true)
                } else {
                    reply.reply(false);
                    Effect::none()
                }
            }
            Cmd::Entries(reply) => {
                reply.reply(self.entries.clone());
                Effect::none()
            }
            Cmd::RecoveredWith(reply) => {
                reply.reply(self.recovered_with);
                Effect::none()
            }
            Cmd::Fail => return Err("told to fail".into()),
        })
    }

    fn apply_event(&mut self, Appended(v): Appended) {
        self.entries.push(v);
    }

    async fn recovery_completed(
        &mut self,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        self.recovered_with = Some(self.entries.len());
        Ok(())
    }
}

impl Snapshots for Ledger {
    type Snapshot = Vec<u64>;

    fn to_snapshot(&self) -> Vec<u64> {
        self.entries.clone()
    }

    fn apply_snapshot(&mut self, entries: Vec<u64>) {
        self.entries = entries;
    }
}

fn ledger(
    store: &Arc<MemoryStore>,
    settings: PersistentSettings,
) -> courier_core::Props<Persistent<Ledger>> {
    Persistent::props_with(
        "ledger-1",
        Ledger::default,
        store.clone(),
        store.clone(),
        settings,
    )
}

async fn entries(actor: &ActorRef<Cmd>) -> Vec<u64> {
    actor.ask(Cmd::Entries, SECOND).await.expect("entries")
}

#[tokio::test]
async fn persist_then_apply_then_reply_and_recover_after_a_new_system() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(ledger(&store, PersistentSettings::default()))
        .expect("spawn");
    for v in 1..=5 {
        let len = actor
            .ask(|r| Cmd::Append(v * 10, r), SECOND)
            .await
            .expect("append");
        assert_eq!(len, v as usize, "the reply sees the applied event");
    }
    assert_eq!(store.highest_seq_nr("ledger-1").await.expect("highest"), 5);
    system.shutdown().await;

    let system = ActorSystem::new("b");
    let actor = system
        .spawn(ledger(&store, PersistentSettings::default()))
        .expect("spawn");
    assert_eq!(entries(&actor).await, vec![10, 20, 30, 40, 50]);
    assert_eq!(
        actor.ask(Cmd::RecoveredWith, SECOND).await.expect("hook"),
        Some(5),
        "recovery_completed ran after replay"
    );
    // New events continue the sequence.
    actor
        .ask(|r| Cmd::Append(60, r), SECOND)
        .await
        .expect("append");
    assert_eq!(store.highest_seq_nr("ledger-1").await.expect("highest"), 6);
    system.shutdown().await;
}

#[tokio::test]
async fn a_supervisor_restart_replays_the_journal() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(
            ledger(&store, PersistentSettings::default()).with_supervisor(
                SupervisorStrategy::restart().with_backoff(Duration::ZERO, Duration::ZERO),
            ),
        )
        .expect("spawn");
    for v in 1..=3 {
        actor
            .ask(|r| Cmd::Append(v, r), SECOND)
            .await
            .expect("append");
    }
    actor.tell(Cmd::Fail);
    assert_eq!(entries(&actor).await, vec![1, 2, 3]);
    system.shutdown().await;
}

#[tokio::test]
async fn commands_wait_while_a_persist_is_in_flight() {
    // A slow engine makes each persist take a while; the second command must
    // still see the first one's event applied.
    let store = Arc::new(
        Store::with_engine(TestEngine::with_flush_delay(Duration::from_millis(20))).expect("store"),
    );
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(Persistent::props("ledger-1", Ledger::default).with_store(store.clone()))
        .expect("spawn");
    let mut asks = Vec::new();
    for len in 0..5 {
        let actor = actor.clone();
        asks.push(async move {
            actor
                .ask(
                    |reply| Cmd::AppendAt {
                        len,
                        value: len as u64,
                        reply,
                    },
                    SECOND * 5,
                )
                .await
                .expect("reply")
        });
    }
    let results = futures_join_all(asks).await;
    assert_eq!(
        results,
        vec![true; 5],
        "each command saw the previous event applied"
    );
    assert_eq!(entries(&actor).await, vec![0, 1, 2, 3, 4]);
    system.shutdown().await;
}

async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    // Send all commands before awaiting any reply.
    let mut out = Vec::new();
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    for f in pinned.iter_mut() {
        out.push(f.as_mut().await);
    }
    out
}

#[tokio::test]
async fn snapshots_every_n_keep_k_and_optionally_delete_events() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let settings = PersistentSettings {
        snapshots: SnapshotPolicy::every(10).keep(2).delete_events(true),
        ..PersistentSettings::default()
    };
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(ledger(&store, settings.clone()))
        .expect("spawn");
    for v in 1..=35 {
        actor
            .ask(|r| Cmd::Append(v, r), SECOND)
            .await
            .expect("append");
    }
    system.shutdown().await;

    let latest = store
        .load_snapshot("ledger-1", SnapshotCriteria::latest())
        .await
        .expect("load")
        .expect("a snapshot");
    assert_eq!(latest.metadata.seq_nr, 30);
    let older = store
        .load_snapshot("ledger-1", SnapshotCriteria::latest().max_seq_nr(29))
        .await
        .expect("load")
        .expect("the second kept snapshot");
    assert_eq!(older.metadata.seq_nr, 20);
    assert!(
        store
            .load_snapshot("ledger-1", SnapshotCriteria::latest().max_seq_nr(19))
            .await
            .expect("load")
            .is_none(),
        "only two are kept"
    );
    assert_eq!(store.deleted_to("ledger-1").await.expect("deleted"), 20);
    assert_eq!(store.highest_seq_nr("ledger-1").await.expect("highest"), 35);

    let system = ActorSystem::new("b");
    let actor = system.spawn(ledger(&store, settings)).expect("spawn");
    assert_eq!(entries(&actor).await, (1..=35).collect::<Vec<_>>());
    system.shutdown().await;
}

/// Overwrites the stored value of every key that `pick` selects.
fn corrupt(store: &MemoryStore, pick: impl Fn(&[u8]) -> bool) -> usize {
    let mut n = 0;
    let engine = store.engine().expect("open");
    for (key, mut value) in engine.raw_entries() {
        if pick(&key) {
            let last = value.len() - 1;
            value[last] ^= 0xff;
            engine.put_raw(&key, &value);
            n += 1;
        }
    }
    n
}

fn is_snapshot_at(key: &[u8], seq: u64) -> bool {
    key.first() == Some(&0x03) && key.ends_with(&seq.to_be_bytes())
}

fn is_event_at(key: &[u8], seq: u64) -> bool {
    key.first() == Some(&0x01) && key.ends_with(&seq.to_be_bytes())
}

#[tokio::test]
async fn a_corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let settings = PersistentSettings {
        snapshots: SnapshotPolicy::every(5).keep(3),
        ..PersistentSettings::default()
    };
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(ledger(&store, settings.clone()))
        .expect("spawn");
    for v in 1..=12 {
        actor
            .ask(|r| Cmd::Append(v, r), SECOND)
            .await
            .expect("append");
    }
    system.shutdown().await;
    assert_eq!(corrupt(&store, |k| is_snapshot_at(k, 10)), 1);

    let system = ActorSystem::new("b");
    let actor = system.spawn(ledger(&store, settings)).expect("spawn");
    assert_eq!(entries(&actor).await, (1..=12).collect::<Vec<_>>());
    system.shutdown().await;
}

/// A snapshot store whose saves at one sequence number fail (a full disk
/// for a moment, say); everything else goes to the memory store.
struct SaveFailsAt {
    inner: Arc<MemoryStore>,
    seq_nr: u64,
}

#[async_trait::async_trait]
impl SnapshotStore for SaveFailsAt {
    async fn save_snapshot(&self, snapshot: Snapshot) -> courier_persistence::Result<()> {
        if snapshot.metadata.seq_nr == self.seq_nr {
            return Err(courier_persistence::Error::Storage(
                "the disk is full for a moment".into(),
            ));
        }
        self.inner.save_snapshot(snapshot).await
    }

    async fn load_snapshot(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> courier_persistence::Result<Option<Snapshot>> {
        self.inner.load_snapshot(persistence_id, criteria).await
    }

    async fn delete_snapshot(
        &self,
        persistence_id: &str,
        seq_nr: u64,
    ) -> courier_persistence::Result<()> {
        self.inner.delete_snapshot(persistence_id, seq_nr).await
    }

    async fn delete_snapshots(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> courier_persistence::Result<()> {
        self.inner.delete_snapshots(persistence_id, criteria).await
    }
}

#[tokio::test]
async fn a_failed_snapshot_does_not_cost_the_older_one_nor_the_events_it_needs() {
    // Keep 2, delete the events they cover: the snapshot at 20 fails, so
    // the two kept at 30 are 10 and 30, and only events up to 10 may go.
    // Retention that counts back `every` events from 30 would delete the
    // snapshot at 10 and the events up to 20, leaving the one at 30 alone:
    // if it cannot be read, the actor can never recover.
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let snapshots = Arc::new(SaveFailsAt {
        inner: store.clone(),
        seq_nr: 20,
    });
    let settings = PersistentSettings {
        snapshots: SnapshotPolicy::every(10).keep(2).delete_events(true),
        ..PersistentSettings::default()
    };
    let props = || {
        Persistent::props_with(
            "ledger-1",
            Ledger::default,
            store.clone(),
            snapshots.clone(),
            settings.clone(),
        )
    };
    let system = ActorSystem::new("a");
    let actor = system.spawn(props()).expect("spawn");
    for v in 1..=30 {
        actor
            .ask(|r| Cmd::Append(v, r), SECOND)
            .await
            .expect("append");
    }
    system.shutdown().await;
    assert!(
        store
            .load_snapshot("ledger-1", SnapshotCriteria::latest().max_seq_nr(29))
            .await
            .expect("load")
            .is_some_and(|s| s.metadata.seq_nr == 10),
        "the snapshot at 10 is the second of the two kept"
    );
    assert!(
        store.deleted_to("ledger-1").await.expect("deleted") <= 10,
        "events after the oldest kept snapshot were deleted"
    );

    // The newest snapshot cannot be read: recovery falls back to the one
    // at 10 and replays the events after it.
    assert_eq!(corrupt(&store, |k| is_snapshot_at(k, 30)), 1);
    let system = ActorSystem::new("b");
    let actor = system.spawn(props()).expect("spawn");
    assert_eq!(entries(&actor).await, (1..=30).collect::<Vec<_>>());
    system.shutdown().await;
}

#[tokio::test]
async fn a_failed_recovery_stops_the_actor_without_state_or_replies() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(ledger(&store, PersistentSettings::default()))
        .expect("spawn");
    for v in 1..=5 {
        actor
            .ask(|r| Cmd::Append(v, r), SECOND)
            .await
            .expect("append");
    }
    system.shutdown().await;
    assert_eq!(corrupt(&store, |k| is_event_at(k, 3)), 1);

    let system = ActorSystem::new("b");
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let actor = system
        .spawn(
            ledger(&store, PersistentSettings::default())
                .with_supervisor(SupervisorStrategy::restart()),
        )
        .expect("spawn");
    // Commands queued during the failed recovery are not handled.
    let reply = actor.ask(Cmd::Entries, SECOND).await;
    assert!(
        reply.is_err(),
        "a failed recovery must not answer: {reply:?}"
    );
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped, not restarted forever");
    let letters: Vec<_> = std::iter::from_fn(|| dead.try_recv().ok()).collect();
    assert!(
        letters.len() <= 1,
        "at most the one queued command became a dead letter: {letters:?}"
    );
    // Nothing was written by the failed incarnation.
    assert_eq!(store.highest_seq_nr("ledger-1").await.expect("highest"), 5);
    system.shutdown().await;
}

#[tokio::test]
async fn recovery_refuses_to_start_from_deleted_history() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(ledger(&store, PersistentSettings::default()))
        .expect("spawn");
    for v in 1..=5 {
        actor
            .ask(|r| Cmd::Append(v, r), SECOND)
            .await
            .expect("append");
    }
    system.shutdown().await;
    // Events deleted without a snapshot covering them: replaying the rest
    // would build the wrong state, so recovery must fail instead.
    store.delete_events_to("ledger-1", 2).await.expect("delete");
    let system = ActorSystem::new("b");
    let actor = system
        .spawn(ledger(&store, PersistentSettings::default()))
        .expect("spawn");
    assert!(actor.ask(Cmd::Entries, SECOND).await.is_err());
    actor.terminated().await;
}

#[tokio::test]
async fn a_failed_persist_stops_the_actor() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("a");
    let actor = system
        .spawn(ledger(&store, PersistentSettings::default()))
        .expect("spawn");
    actor
        .ask(|r| Cmd::Append(1, r), SECOND)
        .await
        .expect("append");
    // Another writer takes sequence number 2 behind the actor's back: its
    // next persist conflicts, and it must stop rather than go on with state
    // the journal does not hold.
    store
        .write(
            courier_persistence::WriteBatch::new().event(courier_persistence::EventRecord {
                persistence_id: "ledger-1".into(),
                seq_nr: 2,
                manifest: Ledger::event_manifest_for_tests(),
                payload: courier_persistence::encode_payload(&Appended(99)).expect("encode"),
                writer_id: uuid::Uuid::now_v7(),
                timestamp: 0,
            }),
        )
        .await
        .expect("write");
    let reply = actor.ask(|r| Cmd::Append(2, r), SECOND).await;
    assert!(reply.is_err(), "{reply:?}");
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped");
}

trait ManifestForTests {
    fn event_manifest_for_tests() -> Manifest;
}

impl ManifestForTests for Ledger {
    fn event_manifest_for_tests() -> Manifest {
        <Ledger as EventSourced>::event_manifest()
    }
}

// Schema evolution: v1 wrote `Appended(u64)`; v2 writes `AppendedV2` and
// reads v1 events through upcast_event.

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct AppendedV2 {
    value: u64,
    note: String,
}

#[derive(Default)]
struct LedgerV2 {
    entries: Vec<(u64, String)>,
}

enum CmdV2 {
    Append(u64, String, ReplyTo<usize>),
    Entries(ReplyTo<Vec<(u64, String)>>),
}

impl EventSourced for LedgerV2 {
    type Command = CmdV2;
    type Event = AppendedV2;

    fn event_manifest() -> Manifest {
        Manifest::new("ledger.Appended", 2)
    }

    fn upcast_event(manifest: &Manifest, payload: &[u8]) -> Result<AppendedV2, BoxError> {
        match (manifest.version, manifest.type_name.as_str()) {
            (2, "ledger.Appended") => Ok(decode_payload(payload)?),
            (1, _) => {
                let Appended(value) = decode_payload(payload)?;
                Ok(AppendedV2 {
                    value,
                    note: "from v1".into(),
                })
            }
            _ => Err(format!("unknown manifest {manifest:?}").into()),
        }
    }

    async fn handle_command(
        &mut self,
        cmd: CmdV2,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(match cmd {
            CmdV2::Append(value, note, reply) => {
                Effect::persist(AppendedV2 { value, note }).reply(reply, |s: &Self| s.entries.len())
            }
            CmdV2::Entries(reply) => {
                reply.reply(self.entries.clone());
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, e: AppendedV2) {
        self.entries.push((e.value, e.note));
    }
}

impl Snapshots for LedgerV2 {
    type Snapshot = Vec<(u64, String)>;

    fn to_snapshot(&self) -> Self::Snapshot {
        self.entries.clone()
    }

    fn apply_snapshot(&mut self, s: Self::Snapshot) {
        self.entries = s;
    }
}

#[tokio::test]
async fn events_of_an_older_schema_are_upcast_on_replay() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("v1");
    let v1 = system
        .spawn(ledger(&store, PersistentSettings::default()))
        .expect("spawn");
    v1.ask(|r| Cmd::Append(7, r), SECOND).await.expect("append");
    v1.ask(|r| Cmd::Append(8, r), SECOND).await.expect("append");
    system.shutdown().await;

    let system = ActorSystem::new("v2");
    let v2 = system
        .spawn(Persistent::props("ledger-1", LedgerV2::default).with_store(store.clone()))
        .expect("spawn");
    v2.ask(|r| CmdV2::Append(9, "new".into(), r), SECOND)
        .await
        .expect("append");
    let entries = v2.ask(CmdV2::Entries, SECOND).await.expect("entries");
    assert_eq!(
        entries,
        vec![
            (7, "from v1".to_string()),
            (8, "from v1".to_string()),
            (9, "new".to_string())
        ]
    );
    // The journal keeps each event's own manifest.
    let mut versions = Vec::new();
    courier_persistence::replay(&*store, "ledger-1", ReplayRange::all(), 10, |r| {
        versions.push(r.manifest.version);
        Ok(())
    })
    .await
    .expect("replay");
    assert_eq!(versions, vec![1, 1, 2]);
    system.shutdown().await;
}
