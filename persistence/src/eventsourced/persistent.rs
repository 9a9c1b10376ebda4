//! [`Persistent`]: the actor that runs an [`EventSourced`] state, with its
//! context type. It recovers (snapshot, then replay, then the hook), then for
//! each command persists the effect's events in one durable batch, applies
//! them, runs the follow-ups and snapshots as the policy says.

use std::sync::Arc;
use std::time::Instant;

use courier_core::{Actor, BoxError, Context, Props};
use tracing::Instrument;
use uuid::Uuid;

use super::props::PersistentProps;
use super::snapshots::{SnapshotCodec, SnapshotForm};
use super::{Effect, EventSourced, PersistenceStatus, PersistentSettings, RecoveryStatus};
use crate::error::{Error, Result};
use crate::journal::{Journal, ReplayRange, WriteBatch, replay};
use crate::metrics;
use crate::record::{EventRecord, SeqNr, Snapshot, SnapshotMetadata, encode_payload, now_millis};
use crate::snapshot::{SnapshotCriteria, SnapshotStore};

/// The context an event-sourced actor's handlers get.
pub type PersistentContext<E> = Context<Persistent<E>>;

/// [`PersistentContext`], short, so that a command handler's signature
/// fits on one line: `async fn handle_command(&mut self, cmd: Command, ctx:
/// &mut Ctx<Self>) -> Handled<Self>`.
pub type Ctx<E> = PersistentContext<E>;

/// What a command handler returns: the command's [`Effect`], or a failure
/// of the actor.
pub type Handled<E> = Result<Effect<E>, BoxError>;

/// A state's snapshot store and how its snapshots are written and read.
type Snapshotting<E> = (Arc<dyn SnapshotStore>, SnapshotCodec<E>);

/// The actor that runs an [`EventSourced`] state: recovery, persist, apply,
/// snapshots.
pub struct Persistent<E: EventSourced> {
    state: E,
    persistence_id: String,
    journal: Arc<dyn Journal>,
    /// `None`: the state takes no snapshots (and recovery reads none).
    snapshots: Option<Snapshotting<E>>,
    settings: PersistentSettings,
    seq_nr: SeqNr,
    writer_id: Uuid,
    status: PersistenceStatus,
}

impl<E: EventSourced> Persistent<E> {
    /// The props of an event-sourced actor with persistence id
    /// `persistence_id`; `make` builds the empty state (again on each
    /// restart, before replay). Its journal is the actor system's default
    /// ([`Persistence`](crate::Persistence)) unless the builder names one;
    /// it takes no snapshots unless the builder asks
    /// ([`snapshot_every`](PersistentProps::snapshot_every)).
    pub fn props(
        persistence_id: impl Into<String>,
        make: impl Fn() -> E + Send + Sync + 'static,
    ) -> PersistentProps<E> {
        PersistentProps::new(persistence_id.into(), Arc::new(make))
    }

    /// Props with explicit stores and settings, for a state that has a
    /// [`SnapshotForm`]: the same as
    /// `Persistent::props(id, make).with_journal(journal).with_snapshot_store(snapshots).with_settings(settings)`,
    /// as a [`Props`] value at once.
    pub fn props_with<Form>(
        persistence_id: impl Into<String>,
        make: impl Fn() -> E + Send + Sync + 'static,
        journal: Arc<dyn Journal>,
        snapshots: Arc<dyn SnapshotStore>,
        settings: PersistentSettings,
    ) -> Props<Self>
    where
        E: SnapshotForm<Form>,
    {
        let persistence_id = persistence_id.into();
        let codec = E::codec();
        Props::new(move || {
            Self::new(
                make(),
                persistence_id.clone(),
                Arc::clone(&journal),
                Some((Arc::clone(&snapshots), codec)),
                settings.clone(),
            )
        })
    }

    pub(super) fn new(
        state: E,
        persistence_id: String,
        journal: Arc<dyn Journal>,
        snapshots: Option<Snapshotting<E>>,
        settings: PersistentSettings,
    ) -> Self {
        Persistent {
            state,
            persistence_id,
            journal,
            snapshots,
            settings,
            seq_nr: 0,
            writer_id: Uuid::now_v7(),
            status: PersistenceStatus::default(),
        }
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
        let Some((store, codec)) = &self.snapshots else {
            return Ok(0);
        };
        let mut criteria = SnapshotCriteria::latest();
        loop {
            let failed_at = match store.load_snapshot(&self.persistence_id, criteria).await {
                Ok(None) => return Ok(0),
                Ok(Some(snapshot)) => {
                    let seq = snapshot.metadata.seq_nr;
                    match (codec.restore)(&mut self.state, &snapshot.manifest, &snapshot.payload) {
                        Ok(()) => return Ok(seq),
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
        let from_snapshot = (apply_snapshot > 0).then_some(apply_snapshot);
        // The fields of the `courier.recovery` span this runs in.
        let span = tracing::Span::current();
        span.record("replayed", stats.events);
        span.record("seq_nr", self.seq_nr);
        if let Some(seq) = from_snapshot {
            span.record("from_snapshot", seq);
        }
        self.status = PersistenceStatus {
            seq_nr: self.seq_nr,
            last_snapshot: from_snapshot,
            recovery: RecoveryStatus::Completed {
                from_snapshot,
                replayed: stats.events,
            },
        };
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
    /// applies the events. Returns whether a snapshot is due now: it is
    /// taken after the command's follow-ups ran, so that replies do not
    /// wait for the snapshot's write.
    async fn persist(&mut self, events: Vec<E::Event>, writes: WriteBatch) -> Result<bool> {
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
        let span = tracing::debug_span!(
            "courier.persist",
            persistence_id = %self.persistence_id,
            from_seq_nr = self.seq_nr + 1,
            to_seq_nr = seq,
            events = events.len(),
        );
        self.journal.write(batch).instrument(span).await?;
        for event in events {
            self.state.apply_event(event);
        }
        let before = self.seq_nr;
        self.seq_nr = seq;
        let due = self.snapshots.is_some()
            && self
                .settings
                .snapshots
                .every
                .is_some_and(|every| seq / every > before / every);
        Ok(due)
    }

    /// The sequence number of the oldest of the `keep` newest snapshots
    /// that can be read, counting the one just saved at `newest`; `None` if
    /// there are fewer. Read from the store, not worked out from the policy:
    /// snapshots are not always `every` events apart (a batch that crosses
    /// a multiple, a save that failed), and retention that counted back
    /// `every` events would delete the older snapshot a fallback needs and
    /// the events after it. Corrupt snapshots are passed over, as recovery
    /// passes over them.
    async fn oldest_kept(
        &self,
        store: &dyn SnapshotStore,
        newest: SeqNr,
        keep: usize,
    ) -> Result<Option<SeqNr>> {
        let (mut oldest, mut found) = (newest, 1);
        let mut below = newest;
        while found < keep {
            let Some(max) = below.checked_sub(1) else {
                return Ok(None);
            };
            let criteria = SnapshotCriteria::latest().max_seq_nr(max);
            below = match store.load_snapshot(&self.persistence_id, criteria).await {
                Ok(Some(snapshot)) => {
                    found += 1;
                    oldest = snapshot.metadata.seq_nr;
                    oldest
                }
                Ok(None) => return Ok(None),
                Err(Error::Corrupt { seq_nr, .. } | Error::Decode { seq_nr, .. }) => {
                    seq_nr.min(max)
                }
                Err(other) => return Err(other),
            };
        }
        Ok(Some(oldest))
    }

    /// Saves a snapshot and applies retention. Failures are logged, not
    /// fatal: the journal still holds everything.
    async fn snapshot(&mut self) {
        let Some((store, codec)) = &self.snapshots else {
            return;
        };
        let seq = self.seq_nr;
        let result = async {
            let snapshot = Snapshot {
                metadata: SnapshotMetadata {
                    persistence_id: self.persistence_id.clone(),
                    seq_nr: seq,
                    timestamp: now_millis(),
                },
                manifest: (codec.manifest)(),
                payload: (codec.encode)(&self.state)?,
            };
            store.save_snapshot(snapshot).await?;
            let policy = &self.settings.snapshots;
            let keep = policy.keep.max(1);
            // Fewer snapshots than `keep` can be read: there is nothing to
            // let go of, and the events are the fallback.
            let Some(oldest_kept) = self.oldest_kept(&**store, seq, keep).await? else {
                return Ok(());
            };
            if oldest_kept > 1 {
                store
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
        match result {
            Ok(()) => self.status.last_snapshot = Some(seq),
            Err(e) => {
                tracing::warn!(persistence_id = %self.persistence_id, seq_nr = seq, error = %e, "snapshot failed");
            }
        }
    }
}

impl<E: EventSourced> Actor for Persistent<E> {
    type Msg = E::Command;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        ctx.extensions_mut().insert(PersistenceStatus::default());
        let started = Instant::now();
        let span = tracing::info_span!(
            "courier.recovery",
            persistence_id = %self.persistence_id,
            from_snapshot = tracing::field::Empty,
            replayed = tracing::field::Empty,
            seq_nr = tracing::field::Empty,
        );
        let recovered = self.recover().instrument(span).await;
        match &recovered {
            Ok(()) => match self.status.recovery {
                RecoveryStatus::Completed { replayed, .. } => {
                    metrics::recovered(started.elapsed(), replayed);
                }
                _ => metrics::recovered(started.elapsed(), 0),
            },
            Err(_) => metrics::recovery_failed(started.elapsed()),
        }
        if let Err(e) = recovered {
            tracing::error!(persistence_id = %self.persistence_id, error = %e, "recovery failed");
            // A failed recovery is not retried by restarting: stop, report.
            ctx.stop();
            return Err(Box::new(e));
        }
        ctx.extensions_mut().insert(self.status);
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
        if let Some(elsewhere) = effect
            .bound
            .iter()
            .find(|j| !crate::journal::same_store(j.as_ref(), self.journal.as_ref()))
        {
            let e = Error::Invalid {
                what: "effect",
                reason: format!(
                    "records bound to another store ({}) than this actor's journal: written here they would be missing where they are read back (a dedup inbox would apply a redelivery twice); give both the same store",
                    elsewhere.store_identity().map_or_else(
                        || "a journal that does not tell its store".to_owned(),
                        |id| format!("store {id:#x}")
                    ),
                ),
            };
            tracing::error!(persistence_id = %self.persistence_id, error = %e, "effect refused; stopping");
            ctx.stop();
            return Err(Box::new(e));
        }
        let mut snapshot_due = false;
        if !effect.events.is_empty() || !effect.writes.is_empty() {
            match self.persist(effect.events, effect.writes).await {
                Ok(due) => snapshot_due = due,
                Err(e) => {
                    tracing::error!(persistence_id = %self.persistence_id, error = %e, "persist failed; stopping");
                    ctx.stop();
                    return Err(Box::new(e));
                }
            }
            self.status.seq_nr = self.seq_nr;
            ctx.extensions_mut().insert(self.status);
        }
        for f in effect.then {
            f(&self.state, ctx);
        }
        // After the replies: a snapshot is an optimisation of recovery, and
        // the journal already holds everything it covers. The next command
        // waits for it, so it is of exactly this state.
        if snapshot_due {
            self.snapshot().await;
            ctx.extensions_mut().insert(self.status);
        }
        if effect.stop {
            ctx.stop();
        }
        Ok(())
    }
}
