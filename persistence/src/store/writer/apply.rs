//! The engine side of the store's writer: validating a group's writes
//! against the journals, staging them as atomic engine batches (each with
//! the next commit number), applying them and flushing with the commit
//! record. Runs on the store's I/O thread when the engine may block.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ::metrics::Counter;

use super::super::close::Releaser;
use super::super::prepared::PreparedWrite;
use super::super::{
    DELETE_CHUNK, Done, HIGHEST_CACHE, Pending, Request, chain, decode_snapshot, read_highest,
    read_meta, snapshots_below,
};
use super::poison;
use crate::commit_file::CommitFile;
use crate::engine::{Engine, EngineOp};
use crate::epoch;
use crate::error::{Error, Result};
use crate::keys;
use crate::metrics::StoreMetrics;
use crate::record::{self, SeqNr};
use crate::snapshot::SnapshotCriteria;

/// Writes of a group planned but not yet applied to the engine.
#[derive(Default)]
struct Staged {
    ops: Vec<EngineOp>,
    dones: Vec<Done>,
}

/// The writer's engine and what it knows about the engine's contents.
pub(in crate::store) struct Core<E: Engine> {
    /// Released off the runtime when dropped (the runtime may drop the
    /// writer task at shutdown, mid-flush).
    pub(in crate::store) engine: Releaser<E>,
    /// Highest sequence number per persistence id. The writer is the only
    /// one that writes, so the cache cannot go stale.
    pub(in crate::store) highest: HashMap<String, SeqNr>,
    /// The number of the last engine batch applied; every batch writes it
    /// (see [`Core::apply`]).
    pub(in crate::store) commit: u64,
    pub(in crate::store) poison: Arc<Mutex<Option<String>>>,
    /// Counts the store's poisoning (once, whoever poisons it).
    pub(in crate::store) poisoned: Counter,
    /// Told of each batch before it is applied and of each flush after it.
    pub(in crate::store) commits: Arc<super::super::commits::Commits>,
}

impl<E: Engine> Core<E> {
    /// The engine flush covering every batch applied so far, then the
    /// commit record's update to the last batch's commit number.
    pub(super) fn flush(&self, record: Option<&CommitFile>, metrics: &StoreMetrics) -> Result<()> {
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
        // Reads may answer these batches now: they survive a crash.
        self.commits.flushed(self.commit);
        metrics.flush(started.elapsed());
        Ok(())
    }

    /// Validates and applies writes: they go to the engine as one atomic
    /// batch (more than one only around a deletion, which must see what
    /// came before it). Returns the waiters of what was applied; the others
    /// are answered here with their error.
    pub(super) fn apply_group(&mut self, work: Vec<Pending>) -> Vec<Done> {
        let mut staged = Staged::default();
        let mut applied = Vec::with_capacity(work.len());
        for Pending { request, done } in work {
            if let Err(poisoned) = self.unpoisoned() {
                let _ = done.send(Err(poisoned));
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
                    self.unpoisoned()
                        .and_then(|()| self.plan_delete_events(&persistence_id, to))
                        .and_then(|chunks| self.apply_chunks(chunks))
                }
                Request::DeleteSnapshots {
                    persistence_id,
                    criteria,
                } => {
                    self.apply_staged(&mut staged, &mut applied);
                    self.unpoisoned()
                        .and_then(|()| self.plan_delete_snapshots(&persistence_id, &criteria))
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

    /// `Err(Poisoned)` once the store is poisoned, by this group's own
    /// staged writes too: a deletion behind a failed apply must not reach
    /// the engine (sled flushes in the background), or the events could be
    /// gone while the snapshot staged before them never landed.
    fn unpoisoned(&self) -> Result<()> {
        match courier_core::sync::lock(&self.poison).clone() {
            Some(reason) => Err(Error::Poisoned { reason }),
            None => Ok(()),
        }
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
        // Before the engine shows it: a read that sees it waits for its
        // flush.
        self.commits.applying(commit);
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
