//! The store's single writer task: validates, applies, flushes, records the
//! commit, answers (the write path of `docs/architecture.md`).
//!
//! The task itself only moves requests and waiters around; every engine
//! call it makes (the reads that validate, the applies, the flushes and the
//! commit record's update) runs on the store's I/O thread when the engine
//! may block. Records arrive encoded and checksummed by their callers.

mod apply;

pub(super) use apply::Core;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ::metrics::Counter;

use tokio::sync::mpsc;

use super::io::Io;
use super::{Done, LINGER_ROUNDS, Pending, Request, chain};
use crate::commit_file::CommitFile;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::metrics::StoreMetrics;

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
    /// What reads may answer: woken here when the store is poisoned.
    pub(super) commits: Arc<super::commits::Commits>,
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
        // `None`: the job went with the I/O thread, and its waiters with
        // it; its error below poisons the store.
        self.core = core;
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
                // Reads waiting for this flush fail now.
                self.commits.poisoned();
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
                self.commits.poisoned();
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
                        flushed: Err(Error::Storage(
                            format!("the store's I/O thread failed: {why}").into(),
                        )),
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
