//! Event-sourced actors: state rebuilt from a journal of events.
//!
//! Implement [`EventSourced`] for your state and spawn it with
//! [`Persistent::props`]. A command handler looks at the state and returns an
//! [`Effect`]: events to persist and what to do after. The adapter then
//!
//! 1. writes the events (and any extra records) as one atomic, durable batch;
//! 2. applies them to the state, in order;
//! 3. runs the follow-up effects (replies, tells);
//! 4. takes a snapshot if the policy says so.
//!
//! The next command is taken only after all of that, so commands never see
//! state that is not durable. A failed write stops the actor: its state can
//! no longer be trusted to match the journal.
//!
//! Recovery runs before the first command: the newest readable snapshot
//! (falling back to older ones, loudly, if the newest is corrupt), then the
//! events after it, then [`EventSourced::recovery_completed`]. A failed
//! recovery stops the actor with the error reported to its supervisor; it
//! sends nothing and handles no command. A restart replays from scratch.

use std::any::type_name;
use std::future::Future;
use std::sync::Arc;

use courier_core::{Actor, BoxError, Context, Props, ReplyTo};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::journal::{Journal, ReplayRange, WriteBatch, replay};
use crate::record::{
    EventRecord, Manifest, SeqNr, Snapshot, SnapshotMetadata, decode_payload, encode_payload,
    now_millis,
};
use crate::snapshot::{SnapshotCriteria, SnapshotStore};

/// The context an event-sourced actor's handlers get.
pub type PersistentContext<E> = Context<Persistent<E>>;

/// State that is changed only by events, and rebuilt by replaying them.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use courier::prelude::*;
/// use courier::persistence::{Effect, EventSourced, MemoryStore, Persistent, PersistentContext};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default)]
/// struct Counter {
///     value: u64,
/// }
///
/// enum Command {
///     Add(u64, ReplyTo<u64>),
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Added(u64);
///
/// impl EventSourced for Counter {
///     type Command = Command;
///     type Event = Added;
///     type Snapshot = u64;
///
///     async fn handle_command(
///         &self,
///         cmd: Command,
///         _ctx: &mut PersistentContext<Self>,
///     ) -> Result<Effect<Self>, BoxError> {
///         let Command::Add(n, reply) = cmd;
///         Ok(Effect::persist(Added(n)).reply(reply, |state: &Self| state.value))
///     }
///
///     fn apply_event(&mut self, Added(n): Added) {
///         self.value += n;
///     }
///
///     fn to_snapshot(&self) -> u64 {
///         self.value
///     }
///
///     fn apply_snapshot(&mut self, value: u64) {
///         self.value = value;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let store = Arc::new(MemoryStore::memory()?);
/// let system = ActorSystem::new("docs");
/// let counter = system.spawn(Persistent::props("counter-1", Counter::default, store.clone(), store))?;
/// let value = counter.ask(|r| Command::Add(5, r), Duration::from_secs(1)).await?;
/// assert_eq!(value, 5);
/// # Ok(())
/// # }
/// ```
pub trait EventSourced: Send + Sync + Sized + 'static {
    /// What the actor is told to do.
    type Command: Send + 'static;
    /// What happened; stored in the journal.
    type Event: Serialize + DeserializeOwned + Send + 'static;
    /// The stored form of the state, for snapshots.
    type Snapshot: Serialize + DeserializeOwned + Send + 'static;

    /// The manifest this version writes events with. Bump the version when
    /// the event type changes shape, and teach
    /// [`upcast_event`](Self::upcast_event) to read the old one.
    fn event_manifest() -> Manifest {
        Manifest::new(type_name::<Self::Event>(), 1)
    }

    /// The manifest this version writes snapshots with.
    fn snapshot_manifest() -> Manifest {
        Manifest::new(type_name::<Self::Snapshot>(), 1)
    }

    /// Decides what a command does. Must not change state: state changes
    /// only through events.
    ///
    /// # Errors
    ///
    /// An error is a failure of the actor, handled by its supervisor; nothing
    /// is persisted.
    fn handle_command(
        &self,
        command: Self::Command,
        ctx: &mut PersistentContext<Self>,
    ) -> impl Future<Output = Result<Effect<Self>, BoxError>> + Send;

    /// Applies one event to the state. Runs after a persist and during
    /// replay, so it must be deterministic and free of side effects.
    fn apply_event(&mut self, event: Self::Event);

    /// The state as a snapshot.
    fn to_snapshot(&self) -> Self::Snapshot;

    /// Replaces the state with a snapshot's.
    fn apply_snapshot(&mut self, snapshot: Self::Snapshot);

    /// Reads a stored event of any version. The default reads only the
    /// current [`event_manifest`](Self::event_manifest).
    ///
    /// # Errors
    ///
    /// When the manifest is unknown or the payload does not decode; recovery
    /// then fails with the persistence id and sequence number.
    fn upcast_event(manifest: &Manifest, payload: &[u8]) -> Result<Self::Event, BoxError> {
        let current = Self::event_manifest();
        if *manifest != current {
            return Err(format!(
                "unknown event manifest {}/v{} (this version reads {}/v{})",
                manifest.type_name, manifest.version, current.type_name, current.version
            )
            .into());
        }
        Ok(decode_payload(payload)?)
    }

    /// Reads a stored snapshot of any version. The default reads only the
    /// current [`snapshot_manifest`](Self::snapshot_manifest).
    ///
    /// # Errors
    ///
    /// When the manifest is unknown or the payload does not decode; recovery
    /// then falls back to an older snapshot.
    fn upcast_snapshot(manifest: &Manifest, payload: &[u8]) -> Result<Self::Snapshot, BoxError> {
        let current = Self::snapshot_manifest();
        if *manifest != current {
            return Err(format!(
                "unknown snapshot manifest {}/v{}",
                manifest.type_name, manifest.version
            )
            .into());
        }
        Ok(decode_payload(payload)?)
    }

    /// Runs once recovery has rebuilt the state, before the first command.
    ///
    /// # Errors
    ///
    /// An error fails recovery: the actor stops.
    fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}

type Then<E> = Box<dyn FnOnce(&E, &mut PersistentContext<E>) + Send>;

/// What a command does: events to persist, records to write with them, and
/// follow-up effects that run once they are durable and applied.
#[must_use = "an effect does nothing unless returned from handle_command"]
pub struct Effect<E: EventSourced> {
    events: Vec<E::Event>,
    writes: WriteBatch,
    then: Vec<Then<E>>,
    stop: bool,
}

impl<E: EventSourced> Effect<E> {
    /// Persist nothing.
    pub fn none() -> Self {
        Self {
            events: Vec::new(),
            writes: WriteBatch::new(),
            then: Vec::new(),
            stop: false,
        }
    }

    /// Persist one event.
    pub fn persist(event: E::Event) -> Self {
        Self::persist_all(vec![event])
    }

    /// Persist several events atomically.
    pub fn persist_all(events: Vec<E::Event>) -> Self {
        Self {
            events,
            ..Self::none()
        }
    }

    /// Also write `batch` (key–value records, for example an outbox entry)
    /// in the same atomic write as the events.
    pub fn with_writes(mut self, batch: WriteBatch) -> Self {
        self.writes.extend(batch);
        self
    }

    /// After the events are durable and applied, run `f` with the new state.
    pub fn then(mut self, f: impl FnOnce(&E, &mut PersistentContext<E>) + Send + 'static) -> Self {
        self.then.push(Box::new(f));
        self
    }

    /// After the events are durable and applied, reply with `f(&state)`.
    pub fn reply<R: Send + 'static>(
        self,
        reply_to: ReplyTo<R>,
        f: impl FnOnce(&E) -> R + Send + 'static,
    ) -> Self {
        self.then(move |state, _| reply_to.reply(f(state)))
    }

    /// After the events are durable and applied, stop the actor.
    pub fn stop(mut self) -> Self {
        self.stop = true;
        self
    }

    /// The events this effect persists.
    pub fn events(&self) -> &[E::Event] {
        &self.events
    }
}

/// When to take snapshots and what to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Take a snapshot after every this many events (`None`: never).
    pub every: Option<u64>,
    /// Keep this many snapshots (at least 1); older ones are deleted.
    pub keep: usize,
    /// Delete the events covered by the oldest kept snapshot.
    pub delete_events: bool,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every: None,
            keep: 2,
            delete_events: false,
        }
    }
}

impl SnapshotPolicy {
    /// A snapshot every `n` events, keeping 2.
    pub fn every(n: u64) -> Self {
        Self {
            every: Some(n.max(1)),
            ..Self::default()
        }
    }

    /// Keep `k` snapshots (at least 1).
    pub fn keep(mut self, k: usize) -> Self {
        self.keep = k.max(1);
        self
    }

    /// Delete events covered by the oldest kept snapshot.
    pub fn delete_events(mut self, delete: bool) -> Self {
        self.delete_events = delete;
        self
    }
}

/// Settings of a [`Persistent`] actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistentSettings {
    /// Snapshot policy.
    pub snapshots: SnapshotPolicy,
    /// How many events recovery reads per page.
    pub replay_page: usize,
}

impl Default for PersistentSettings {
    fn default() -> Self {
        Self {
            snapshots: SnapshotPolicy::default(),
            replay_page: 1024,
        }
    }
}

/// The actor that runs an [`EventSourced`] state: recovery, persist, apply,
/// snapshots.
pub struct Persistent<E: EventSourced> {
    state: E,
    persistence_id: String,
    journal: Arc<dyn Journal>,
    snapshots: Arc<dyn SnapshotStore>,
    settings: PersistentSettings,
    seq_nr: SeqNr,
    writer_id: Uuid,
}

impl<E: EventSourced> Persistent<E> {
    /// Props for an event-sourced actor with default settings. `make`
    /// builds the empty state (again on each restart, before replay).
    pub fn props(
        persistence_id: impl Into<String>,
        make: impl Fn() -> E + Send + Sync + 'static,
        journal: Arc<dyn Journal>,
        snapshots: Arc<dyn SnapshotStore>,
    ) -> Props<Self> {
        Self::props_with(
            persistence_id,
            make,
            journal,
            snapshots,
            PersistentSettings::default(),
        )
    }

    /// Props with explicit settings.
    pub fn props_with(
        persistence_id: impl Into<String>,
        make: impl Fn() -> E + Send + Sync + 'static,
        journal: Arc<dyn Journal>,
        snapshots: Arc<dyn SnapshotStore>,
        settings: PersistentSettings,
    ) -> Props<Self> {
        let persistence_id = persistence_id.into();
        Props::new(move || Persistent {
            state: make(),
            persistence_id: persistence_id.clone(),
            journal: Arc::clone(&journal),
            snapshots: Arc::clone(&snapshots),
            settings: settings.clone(),
            seq_nr: 0,
            writer_id: Uuid::now_v7(),
        })
    }

    /// The state.
    pub fn state(&self) -> &E {
        &self.state
    }

    /// The sequence number of the last event applied.
    pub fn seq_nr(&self) -> SeqNr {
        self.seq_nr
    }

    /// The persistence id.
    pub fn persistence_id(&self) -> &str {
        &self.persistence_id
    }

    /// The newest snapshot that can be read, falling back past corrupt or
    /// unreadable ones with a warning. Returns its sequence number (0: none).
    async fn recover_snapshot(&mut self) -> Result<SeqNr> {
        let mut criteria = SnapshotCriteria::latest();
        loop {
            let failed_at = match self
                .snapshots
                .load_snapshot(&self.persistence_id, criteria)
                .await
            {
                Ok(None) => return Ok(0),
                Ok(Some(snapshot)) => {
                    let seq = snapshot.metadata.seq_nr;
                    match E::upcast_snapshot(&snapshot.manifest, &snapshot.payload) {
                        Ok(state) => {
                            self.state.apply_snapshot(state);
                            return Ok(seq);
                        }
                        Err(e) => {
                            tracing::warn!(
                                persistence_id = %self.persistence_id,
                                seq_nr = seq,
                                error = %e,
                                "snapshot cannot be read; falling back to an older one"
                            );
                            seq
                        }
                    }
                }
                Err(Error::Corrupt { seq_nr, reason, .. }) => {
                    tracing::warn!(
                        persistence_id = %self.persistence_id,
                        seq_nr,
                        %reason,
                        "snapshot is corrupt; falling back to an older one"
                    );
                    seq_nr
                }
                Err(Error::Decode { seq_nr, source, .. }) => {
                    tracing::warn!(
                        persistence_id = %self.persistence_id,
                        seq_nr,
                        error = %source,
                        "snapshot does not decode; falling back to an older one"
                    );
                    seq_nr
                }
                Err(other) => return Err(other),
            };
            match failed_at.checked_sub(1) {
                Some(below) => criteria = criteria.max_seq_nr(below),
                None => return Ok(0),
            }
        }
    }

    async fn recover(&mut self) -> Result<()> {
        let apply_snapshot = self.recover_snapshot().await?;
        let deleted_to = self.journal.deleted_to(&self.persistence_id).await?;
        if deleted_to > apply_snapshot {
            return Err(Error::SequenceGap {
                persistence_id: self.persistence_id.clone(),
                expected: apply_snapshot + 1,
                found: deleted_to + 1,
            });
        }
        let pid = self.persistence_id.clone();
        let state = &mut self.state;
        let stats = replay(
            &*self.journal,
            &pid,
            ReplayRange::all().from(apply_snapshot + 1),
            self.settings.replay_page,
            |record: EventRecord| {
                let event =
                    E::upcast_event(&record.manifest, &record.payload).map_err(|source| {
                        Error::Payload {
                            what: "event",
                            persistence_id: record.persistence_id.clone(),
                            seq_nr: record.seq_nr,
                            source,
                        }
                    })?;
                state.apply_event(event);
                Ok(())
            },
        )
        .await?;
        self.seq_nr = apply_snapshot.max(stats.last_seq_nr);
        tracing::debug!(
            persistence_id = %self.persistence_id,
            snapshot = apply_snapshot,
            replayed = stats.events,
            seq_nr = self.seq_nr,
            "recovered"
        );
        Ok(())
    }

    /// Writes the effect's events and records as one durable batch, then
    /// applies the events.
    async fn persist(&mut self, events: Vec<E::Event>, writes: WriteBatch) -> Result<()> {
        let manifest = E::event_manifest();
        let timestamp = now_millis();
        let mut batch = WriteBatch::new();
        let mut seq = self.seq_nr;
        for event in &events {
            seq += 1;
            batch = batch.event(EventRecord {
                persistence_id: self.persistence_id.clone(),
                seq_nr: seq,
                manifest: manifest.clone(),
                payload: encode_payload(event)?,
                writer_id: self.writer_id,
                timestamp,
            });
        }
        batch.extend(writes);
        self.journal.write(batch).await?;
        for event in events {
            self.state.apply_event(event);
        }
        let before = self.seq_nr;
        self.seq_nr = seq;
        if let Some(every) = self.settings.snapshots.every {
            if seq / every > before / every {
                self.snapshot().await;
            }
        }
        Ok(())
    }

    /// Saves a snapshot and applies retention. Failures are logged, not
    /// fatal: the journal still holds everything.
    async fn snapshot(&mut self) {
        let seq = self.seq_nr;
        let result = async {
            let snapshot = Snapshot {
                metadata: SnapshotMetadata {
                    persistence_id: self.persistence_id.clone(),
                    seq_nr: seq,
                    timestamp: now_millis(),
                },
                manifest: E::snapshot_manifest(),
                payload: encode_payload(&self.state.to_snapshot())?,
            };
            self.snapshots.save_snapshot(snapshot).await?;
            let policy = &self.settings.snapshots;
            let every = policy.every.unwrap_or(1);
            let keep = policy.keep.max(1) as u64;
            // Snapshots sit every `every` events, so the oldest one kept is
            // (keep - 1) steps back.
            let oldest_kept = seq.saturating_sub((keep - 1) * every);
            if oldest_kept > 1 {
                self.snapshots
                    .delete_snapshots(
                        &self.persistence_id,
                        SnapshotCriteria::latest().max_seq_nr(oldest_kept - 1),
                    )
                    .await?;
            }
            if policy.delete_events && oldest_kept > 0 {
                self.journal
                    .delete_events_to(&self.persistence_id, oldest_kept)
                    .await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(persistence_id = %self.persistence_id, seq_nr = seq, error = %e, "snapshot failed");
        }
    }
}

impl<E: EventSourced> Actor for Persistent<E> {
    type Msg = E::Command;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if let Err(e) = self.recover().await {
            tracing::error!(persistence_id = %self.persistence_id, error = %e, "recovery failed");
            // A failed recovery is not retried by restarting: stop, report.
            ctx.stop();
            return Err(Box::new(e));
        }
        if let Err(e) = self.state.recovery_completed(ctx).await {
            ctx.stop();
            return Err(e);
        }
        Ok(())
    }

    async fn handle(
        &mut self,
        command: E::Command,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let effect = self.state.handle_command(command, ctx).await?;
        if !effect.events.is_empty() || !effect.writes.is_empty() {
            if let Err(e) = self.persist(effect.events, effect.writes).await {
                tracing::error!(persistence_id = %self.persistence_id, error = %e, "persist failed; stopping");
                ctx.stop();
                return Err(Box::new(e));
            }
        }
        for f in effect.then {
            f(&self.state, ctx);
        }
        if effect.stop {
            ctx.stop();
        }
        Ok(())
    }
}
