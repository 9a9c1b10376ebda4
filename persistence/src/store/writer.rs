//! The store's single writer task: validates, applies, flushes, records the
//! commit, answers (the write path of `docs/architecture.md`).
//!
//! The task itself only moves requests and waiters around; every engine
//! call it makes (the reads that validate, the applies, the flushes and the
//! commit record's update) runs on the store's I/O thread when the engine
//! may block. Records arrive encoded and checksummed by their callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ::metrics::Counter;

use tokio::sync::mpsc;

use super::close::Releaser;
use super::io::Io;
use super::prepared::PreparedWrite;
use super::{
    DELETE_CHUNK, Done, HIGHEST_CACHE, LINGER_ROUNDS, Pending, Request, chain, decode_snapshot,
    read_highest, read_meta, snapshots_below,
};
use crate::commit_file::CommitFile;
use crate::engine::{Engine, EngineOp};
use crate::epoch;
use crate::error::{Error, Result};
use crate::keys;
use crate::metrics::StoreMetrics;
use crate::record::{self, SeqNr};
use crate::snapshot::SnapshotCriteria;

/// What a commit job gives back: the engine's core (`None` if the I/O
/// thread failed with it), the waiters of what it applied and of the syncs
/// it covered, and its flush's outcome.
struct Committed<E: Engine> {
    core: Option<Core<E>>,
    applied: Vec<Done>,
    flushed: Result<()>,
}

type CommitFuture<E> = std::pin::Pin<Box<dyn std::future::Future<Output = Committed<E>> + Send>>;

enum Step<E: Engine> {
    Requests(usize),
    Committed(Committed<E>),
}

/// The commit in flight, or a future that never completes when there is
/// none.
async fn in_flight<E: Engine>(commit: &mut Option<CommitFuture<E>>) -> Committed<E> {
    match commit {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Writes of a group planned but not yet applied to the engine.
#[derive(Default)]
struct Staged {
    ops: Vec<EngineOp>,
    dones: Vec<Done>,
}

/// The single task that writes: validates, applies, flushes, answers.
pub(super) struct Writer<E: Engine> {
    /// What touches the engine. Lent to the I/O thread while a group is
    /// applied there; `None` afterwards only if that thread failed (the
    /// store is poisoned then).
    pub(super) core: Option<Core<E>>,
    /// The I/O thread, for engines that block (and for the commit record,
    /// which is a file); `None`: engine calls run on this task.
    pub(super) io: Option<Io>,
    /// The most requests applied (and so flushed) as one group.
    pub(super) max_group: usize,
    pub(super) requests: mpsc::Receiver<Pending>,
    pub(super) poison: Arc<Mutex<Option<String>>>,
    /// Where the highest acknowledged commit is recorded outside the engine.
    pub(super) commit_file: Option<Arc<CommitFile>>,
    /// Whether new requests are still taken (until a close arrives or every
    /// handle is gone).
    pub(super) open: bool,
    /// The callers of `close`, answered once everything before them is
    /// flushed and the writer has let go of the engine.
    pub(super) closers: Vec<Done>,
    pub(super) metrics: StoreMetrics,
}

/// The writer's engine and what it knows about the engine's contents.
pub(super) struct Core<E: Engine> {
    /// Released off the runtime when dropped (the runtime may drop the
    /// writer task at shutdown, mid-flush).
    pub(super) engine: Releaser<E>,
    /// Highest sequence number per persistence id. The writer is the only
    /// one that writes, so the cache cannot go stale.
    pub(super) highest: HashMap<String, SeqNr>,
    /// The number of the last engine batch applied; every batch writes it
    /// (see [`Core::apply`]).
    pub(super) commit: u64,
    pub(super) poison: Arc<Mutex<Option<String>>>,
    /// Counts the store's poisoning (once, whoever poisons it).
    pub(super) poisoned: Counter,
}

impl<E: Engine> Writer<E> {
    /// Takes requests as they come and keeps one commit in flight at a
    /// time: requests that arrive while one runs wait in the queue for the
    /// next, which starts as soon as the current one returns. So the disk
    /// is kept busy and a group is everything that arrived during the
    /// previous commit.
    pub(super) async fn run(mut self) {
        let mut group = Vec::new();
        // Taken, not yet applied: the next commit's writes.
        let mut queued: Vec<Pending> = Vec::new();
        // Syncs, answered by the next commit's flush.
        let mut syncs: Vec<Done> = Vec::new();
        let mut commit: Option<CommitFuture<E>> = None;
        while self.open || commit.is_some() || !queued.is_empty() || !syncs.is_empty() {
            if commit.is_none() && !(queued.is_empty() && syncs.is_empty()) {
                self.linger(&mut group, &mut queued, &mut syncs).await;
                commit = self.commit(std::mem::take(&mut queued), std::mem::take(&mut syncs));
                if commit.is_none() {
                    continue;
                }
            }
            // Nothing is taken while a commit runs: what arrives meanwhile
            // waits in the bounded queue, so writers beyond it wait in
            // `write` (back-pressure) rather than pile up here, and the
            // next commit takes it all at once.
            let taking = self.open && commit.is_none();
            let step = tokio::select! {
                n = self.requests.recv_many(&mut group, self.max_group), if taking => Step::Requests(n),
                done = in_flight(&mut commit) => Step::Committed(done),
            };
            match step {
                // Every store handle is gone: finish what is in flight.
                Step::Requests(0) => self.open = false,
                Step::Requests(_) => self.sort_out(&mut group, &mut queued, &mut syncs),
                Step::Committed(done) => {
                    commit = None;
                    self.answer(done);
                }
            }
        }
        let closers = std::mem::take(&mut self.closers);
        // The last handle to the engine may be this one: sled's drop can
        // block (forever, after an I/O error), so it happens off the runtime.
        drop(self);
        for done in closers {
            let _ = done.send(Ok(()));
        }
    }

    /// Answers the waiters of a commit that returned, poisoning the store
    /// if its flush failed.
    fn answer(&mut self, done: Committed<E>) {
        let Committed {
            core,
            applied,
            flushed,
        } = done;
        match core {
            Some(core) => self.core = Some(core),
            None => {
                // The job went with the I/O thread: its waiters learn from
                // the poison.
                let reason = poison(
                    &self.poison,
                    "the store's I/O thread failed".into(),
                    &self.metrics.poisoned,
                );
                tracing::error!(%reason, "store poisoned");
            }
        }
        self.metrics.group(applied.len());
        match flushed {
            Ok(()) => {
                for done in applied {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                let reason = match e {
                    // Poisoned before the flush (by a failed apply, already
                    // logged): the flush did not run.
                    Error::Poisoned { reason } => reason,
                    e => {
                        let reason = poison(
                            &self.poison,
                            format!("flush failed: {}", chain(&e)),
                            &self.metrics.poisoned,
                        );
                        tracing::error!(%reason, "store poisoned: writes since the last flush may be lost");
                        reason
                    }
                };
                for done in applied {
                    let _ = done.send(Err(Error::Poisoned {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// One commit of `work` and `syncs`, as one job on the I/O thread (one
    /// hand-off per group): the writes applied to the engine, then the
    /// engine flush covering every batch applied so far, then the update of
    /// the commit record. A commit is recorded as acknowledged only once
    /// the engine holds it durably, and its writes are answered only after
    /// that, so the record never claims more than the engine holds after a
    /// crash, and always as much as was acknowledged. `None` when there is
    /// nothing to run: a poisoned store answers here, without touching the
    /// engine again (sled's flush may hang after an I/O error).
    fn commit(&mut self, work: Vec<Pending>, syncs: Vec<Done>) -> Option<CommitFuture<E>> {
        let core = match (self.poisoned(), self.core.take()) {
            (None, Some(core)) => core,
            (reason, core) => {
                self.core = core;
                let reason = reason.unwrap_or_else(|| {
                    poison(
                        &self.poison,
                        "the store's I/O thread failed".into(),
                        &self.metrics.poisoned,
                    )
                });
                let dones = work.into_iter().map(|p| p.done).chain(syncs);
                for done in dones {
                    let _ = done.send(Err(Error::Poisoned {
                        reason: reason.clone(),
                    }));
                }
                return None;
            }
        };
        let record = self.commit_file.clone();
        let metrics = self.metrics.clone();
        let job = move || -> Committed<E> {
            let mut core = core;
            let mut applied = syncs;
            if !work.is_empty() {
                let started = Instant::now();
                applied.extend(core.apply_group(work));
                metrics.apply(started.elapsed());
            }
            // An apply that failed poisoned the store: nothing of this
            // group may be acknowledged, and the engine is not asked to
            // flush again (sled's flush may hang after an I/O error).
            let poisoned = courier_core::sync::lock(&core.poison).clone();
            let flushed = match poisoned {
                Some(reason) => Err(Error::Poisoned { reason }),
                None => core.flush(record.as_deref(), &metrics),
            };
            Committed {
                core: Some(core),
                applied,
                flushed,
            }
        };
        Some(match self.io.clone() {
            Some(io) => Box::pin(async move {
                match io.run(job).await {
                    Ok(done) => done,
                    // The job's waiters went with it.
                    Err(why) => Committed {
                        core: None,
                        applied: Vec::new(),
                        flushed: Err(Error::Storage(why.into())),
                    },
                }
            }),
            None => Box::pin(async move { job() }),
        })
    }

    /// Before a commit, gives writers that were just answered a moment to
    /// send their next request, so that it joins this commit instead of
    /// waiting for the next one: without this, writers that each keep one
    /// write in flight split into two cohorts that alternate between
    /// commits, halving what each carries. Yields while requests keep
    /// arriving, a bounded number of times; a lone writer pays one yield.
    async fn linger(
        &mut self,
        group: &mut Vec<Pending>,
        queued: &mut Vec<Pending>,
        syncs: &mut Vec<Done>,
    ) {
        for _ in 0..LINGER_ROUNDS {
            // A group is at most `max_group` writes: the rest waits in the
            // bounded queue.
            if !self.open || queued.len() >= self.max_group {
                return;
            }
            tokio::task::yield_now().await;
            while queued.len() + group.len() < self.max_group {
                match self.requests.try_recv() {
                    Ok(pending) => group.push(pending),
                    Err(_) => break,
                }
            }
            if group.is_empty() {
                return;
            }
            self.sort_out(group, queued, syncs);
        }
    }

    /// Sorts requests out: a close stops the intake (what follows it is
    /// refused), a sync only needs the next flush, and the writes are queued
    /// for the next commit (a poisoned store refuses them here).
    fn sort_out(
        &mut self,
        group: &mut Vec<Pending>,
        queued: &mut Vec<Pending>,
        syncs: &mut Vec<Done>,
    ) {
        for Pending { request, done } in group.drain(..) {
            if !self.open {
                // A close came before this request in the same group.
                let _ = done.send(Err(Error::Closed));
                continue;
            }
            match request {
                Request::Close => {
                    self.open = false;
                    self.closers.push(done);
                }
                // Applied at open: it only needs the next flush.
                Request::Sync => syncs.push(done),
                request => match self.poisoned() {
                    Some(reason) => {
                        let _ = done.send(Err(Error::Poisoned { reason }));
                    }
                    None => queued.push(Pending { request, done }),
                },
            }
        }
    }

    fn poisoned(&self) -> Option<String> {
        courier_core::sync::lock(&self.poison).clone()
    }
}

/// Poisons the store unless it already is (counting it when it is new);
/// the reason that stands.
fn poison(poison: &Mutex<Option<String>>, reason: String, poisoned: &Counter) -> String {
    let mut poison = courier_core::sync::lock(poison);
    if poison.is_none() {
        poisoned.increment(1);
    }
    poison.get_or_insert(reason).clone()
}

impl<E: Engine> Core<E> {
    /// The engine flush covering every batch applied so far, then the
    /// commit record's update to the last batch's commit number.
    fn flush(&self, record: Option<&CommitFile>, metrics: &StoreMetrics) -> Result<()> {
        let started = Instant::now();
        let _span = tracing::trace_span!(
            "courier.store.flush",
            engine = self.engine.name(),
            commit = self.commit
        )
        .entered();
        self.engine.flush()?;
        if let Some(file) = record {
            let recording = Instant::now();
            file.record(self.commit).map_err(|e| {
                Error::Storage(
                    format!(
                        "cannot update the commit record {}: {e}",
                        file.path().display()
                    )
                    .into(),
                )
            })?;
            metrics.commit_record(recording.elapsed());
        }
        metrics.flush(started.elapsed());
        Ok(())
    }

    /// Validates and applies writes: they go to the engine as one atomic
    /// batch (more than one only around a deletion, which must see what
    /// came before it). Returns the waiters of what was applied; the others
    /// are answered here with their error.
    fn apply_group(&mut self, work: Vec<Pending>) -> Vec<Done> {
        let mut staged = Staged::default();
        let mut applied = Vec::with_capacity(work.len());
        for Pending { request, done } in work {
            if let Some(reason) = courier_core::sync::lock(&self.poison).clone() {
                let _ = done.send(Err(Error::Poisoned { reason }));
                continue;
            }
            let deletion = matches!(
                request,
                Request::DeleteEventsTo { .. } | Request::DeleteSnapshots { .. }
            );
            let result = match request {
                Request::Write(write) => self.plan_write(write, &mut staged),
                Request::SaveSnapshot(op) => {
                    staged.ops.push(op);
                    Ok(())
                }
                Request::DeleteEventsTo { persistence_id, to } => {
                    self.apply_staged(&mut staged, &mut applied);
                    self.plan_delete_events(&persistence_id, to)
                        .and_then(|chunks| self.apply_chunks(chunks))
                }
                Request::DeleteSnapshots {
                    persistence_id,
                    criteria,
                } => {
                    self.apply_staged(&mut staged, &mut applied);
                    self.plan_delete_snapshots(&persistence_id, &criteria)
                        .and_then(|chunks| self.apply_chunks(chunks))
                }
                // Sorted out by the writer before.
                Request::Close | Request::Sync => Ok(()),
            };
            match result {
                Err(e) => {
                    let _ = done.send(Err(e));
                }
                Ok(()) if deletion => applied.push(done),
                Ok(()) => staged.dones.push(done),
            }
        }
        self.apply_staged(&mut staged, &mut applied);
        applied
    }

    /// Applies what is staged as one atomic engine batch; its waiters move
    /// to `applied`, or get the error (and the store is poisoned).
    fn apply_staged(&mut self, staged: &mut Staged, applied: &mut Vec<Done>) {
        let ops = std::mem::take(&mut staged.ops);
        let dones = std::mem::take(&mut staged.dones);
        if ops.is_empty() {
            applied.extend(dones);
            return;
        }
        match self.apply(ops) {
            Ok(()) => applied.extend(dones),
            Err(e) => {
                let reason = poison(
                    &self.poison,
                    format!("apply failed: {}", chain(&e)),
                    &self.poisoned,
                );
                tracing::error!(%reason, "store poisoned");
                for done in dones {
                    let _ = done.send(Err(Error::Poisoned {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// Applies `ops` as one atomic engine batch that also sets the commit
    /// number to the next one. Every batch carries it, so the engine's
    /// commit number counts exactly the batches it holds: if the engine's
    /// recovery drops a batch that a flush had covered, it drops that
    /// batch's commit number with it (or a later one), and the engine comes
    /// back below what the commit record says was acknowledged.
    fn apply(&mut self, mut ops: Vec<EngineOp>) -> Result<()> {
        let commit = self.commit.saturating_add(1);
        ops.push(epoch::commit_op(commit));
        self.engine.apply(ops)?;
        self.commit = commit;
        Ok(())
    }

    fn apply_chunks(&mut self, chunks: Vec<Vec<EngineOp>>) -> Result<()> {
        for ops in chunks {
            if let Err(e) = self.apply(ops) {
                let reason = poison(
                    &self.poison,
                    format!("apply failed: {}", chain(&e)),
                    &self.poisoned,
                );
                tracing::error!(%reason, "store poisoned");
                return Err(e);
            }
        }
        Ok(())
    }

    /// Stages the operations of a write. Validates against the journal's
    /// highest sequence numbers as everything applied and staged so far
    /// leaves them; on error nothing is staged.
    fn plan_write(&mut self, write: PreparedWrite, staged: &mut Staged) -> Result<()> {
        // Highest per persistence id as this batch advances it.
        let mut advanced: HashMap<&str, SeqNr> = HashMap::new();
        for (pid, seq_nr) in &write.events {
            let pid = pid.as_str();
            let highest = match advanced.get_mut(pid) {
                Some(highest) => highest,
                None => {
                    let current = self.highest(pid)?;
                    advanced.entry(pid).or_insert(current)
                }
            };
            let expected = highest.saturating_add(1);
            if *seq_nr != expected {
                return Err(Error::SequenceConflict {
                    persistence_id: pid.to_owned(),
                    expected,
                    got: *seq_nr,
                });
            }
            *highest = *seq_nr;
        }
        // Staged writes either apply or poison the store, so the cache may
        // move ahead now.
        for (pid, highest) in advanced {
            self.remember_highest(pid, highest);
        }
        staged.ops.extend(write.ops);
        Ok(())
    }

    /// The highest sequence number of `pid`, from the cache or the engine.
    fn highest(&mut self, pid: &str) -> Result<SeqNr> {
        if let Some(highest) = self.highest.get(pid) {
            return Ok(*highest);
        }
        let highest = read_highest(&*self.engine, pid)?;
        self.remember_highest(pid, highest);
        Ok(highest)
    }

    fn remember_highest(&mut self, pid: &str, highest: SeqNr) {
        if self.highest.len() >= HIGHEST_CACHE && !self.highest.contains_key(pid) {
            // Crude but bounded: start over rather than grow without limit.
            self.highest.clear();
        }
        self.highest.insert(pid.to_owned(), highest);
    }

    fn plan_delete_events(&mut self, pid: &str, to: SeqNr) -> Result<Vec<Vec<EngineOp>>> {
        let mut meta = read_meta(&*self.engine, pid)?;
        meta.highest = self.highest(pid)?;
        let to = to.min(meta.highest);
        if to <= meta.deleted_to {
            return Ok(Vec::new());
        }
        meta.deleted_to = to;
        // The metadata goes first: once it is applied, the events below are
        // invisible even if a crash stops the physical deletes half way; the
        // scan starts at the journal's first key, so a later delete finishes
        // the job.
        let mut chunks = vec![vec![EngineOp::Put(
            keys::meta(pid),
            record::encode_record(&meta, "journal metadata")?,
        )]];
        let start = keys::event(pid, 0);
        let end = keys::event(pid, to.saturating_add(1));
        let mut from = start;
        loop {
            let entries = self.engine.scan(&from, Some(&end), DELETE_CHUNK, false)?;
            let Some((last, _)) = entries.last() else {
                break;
            };
            let mut next = last.clone();
            next.push(0);
            let full = entries.len() == DELETE_CHUNK;
            chunks.push(
                entries
                    .into_iter()
                    .map(|(k, _)| EngineOp::Delete(k))
                    .collect(),
            );
            if !full {
                break;
            }
            from = next;
        }
        Ok(chunks)
    }

    fn plan_delete_snapshots(
        &self,
        pid: &str,
        criteria: &SnapshotCriteria,
    ) -> Result<Vec<Vec<EngineOp>>> {
        let entries = snapshots_below(
            &*self.engine,
            pid,
            criteria.max_seq_nr,
            criteria.min_seq_nr,
            usize::MAX,
        )?;
        let any_time = criteria.min_timestamp == 0 && criteria.max_timestamp == u64::MAX;
        let mut ops = Vec::new();
        for entry in entries {
            let matches = any_time
                || match decode_snapshot(pid, &entry) {
                    Ok(s) => criteria.matches(s.metadata.seq_nr, s.metadata.timestamp),
                    // Its timestamp cannot be read: keep it rather than guess.
                    Err(_) => false,
                };
            if matches {
                ops.push(EngineOp::Delete(entry.0));
            }
        }
        Ok(vec![ops])
    }
}
