//! An event-sourced actor's handlers change transient state and read
//! where the actor stands: sequence number, last snapshot, recovery.

use std::sync::Arc;
use std::time::Duration;

use courier_core::{ActorSystem, BoxError, ReplyTo};
use courier_persistence::{
    Effect, EventSourced, MemoryStore, PersistenceStatus, Persistent, PersistentContext,
    PersistentInfo, PersistentSettings, RecoveryStatus, SnapshotPolicy, Snapshots,
};

const SECOND: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Tally {
    total: u64,
    /// Transient: counted by the command handler, never persisted.
    commands: u64,
    /// What `recovery_completed` saw.
    recovered: Option<PersistenceStatus>,
}

enum Cmd {
    /// Adds 1, twice: `persist_all` of two events, then reports.
    AddTwo(ReplyTo<(u64, PersistenceStatus)>),
    /// Persists nothing; reports what the handler sees.
    Look(ReplyTo<(u64, PersistenceStatus)>),
    Recovered(ReplyTo<Option<PersistenceStatus>>),
}

impl EventSourced for Tally {
    type Command = Cmd;
    type Event = u64;

    async fn handle_command(
        &mut self,
        cmd: Cmd,
        ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        self.commands += 1;
        Ok(match cmd {
            Cmd::AddTwo(reply) => Effect::persist_all(vec![1, 1]).then(move |s: &Self, ctx| {
                reply.reply((s.commands, ctx.persistence_status()));
            }),
            Cmd::Look(reply) => {
                reply.reply((self.commands, ctx.persistence_status()));
                Effect::none()
            }
            Cmd::Recovered(reply) => {
                reply.reply(self.recovered);
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, n: u64) {
        self.total += n;
    }

    async fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        self.recovered = Some(ctx.persistence_status());
        Ok(())
    }
}

impl Snapshots for Tally {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.total
    }

    fn apply_snapshot(&mut self, total: u64) {
        self.total = total;
    }
}

fn spawn(system: &ActorSystem, store: &Arc<MemoryStore>) -> courier_core::ActorRef<Cmd> {
    let settings = PersistentSettings {
        snapshots: SnapshotPolicy::every(4),
        ..PersistentSettings::default()
    };
    system
        .spawn(Persistent::props_with(
            "tally",
            Tally::default,
            store.clone(),
            store.clone(),
            settings,
        ))
        .expect("spawn")
}

#[tokio::test]
async fn handlers_mutate_transient_state_and_see_seq_nr_snapshot_and_recovery() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("status");
    let tally = spawn(&system, &store);
    let fresh = tally.ask(Cmd::Recovered, SECOND).await.expect("ask");
    assert_eq!(
        fresh.map(|s| s.recovery),
        Some(RecoveryStatus::Completed {
            from_snapshot: None,
            replayed: 0
        })
    );
    let (commands, status) = tally.ask(Cmd::AddTwo, SECOND).await.expect("ask");
    assert_eq!(
        (commands, status.seq_nr, status.last_snapshot),
        (2, 2, None)
    );
    let (_, status) = tally.ask(Cmd::AddTwo, SECOND).await.expect("ask");
    // The fourth event crossed the snapshot interval: the snapshot is taken
    // after the command's follow-ups (the reply does not wait for it), and
    // before the next command, which sees it.
    assert_eq!((status.seq_nr, status.last_snapshot), (4, None));
    let (_, seen) = tally.ask(Cmd::Look, SECOND).await.expect("ask");
    assert_eq!((seen.seq_nr, seen.last_snapshot), (4, Some(4)));
    let (_, status) = tally.ask(Cmd::AddTwo, SECOND).await.expect("ask");
    assert_eq!((status.seq_nr, status.last_snapshot), (6, Some(4)));
    let (commands, seen) = tally.ask(Cmd::Look, SECOND).await.expect("ask");
    assert_eq!((commands, seen.seq_nr), (6, 6));
    system.shutdown().await;

    // A new incarnation: transient state starts over, recovery reports the
    // snapshot and the replayed events after it.
    let system = ActorSystem::new("status");
    let tally = spawn(&system, &store);
    let recovered = tally.ask(Cmd::Recovered, SECOND).await.expect("ask");
    assert_eq!(
        recovered,
        Some(PersistenceStatus {
            seq_nr: 6,
            last_snapshot: Some(4),
            recovery: RecoveryStatus::Completed {
                from_snapshot: Some(4),
                replayed: 2
            },
        })
    );
    let (commands, seen) = tally.ask(Cmd::Look, SECOND).await.expect("ask");
    assert_eq!((commands, seen.seq_nr), (2, 6));
    assert!(seen.recovery.is_completed());
    system.shutdown().await;
}
