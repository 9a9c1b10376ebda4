//! [`Store`]: a journal and snapshot store over one [`Engine`], with a
//! single writer task that commits concurrent writes in groups.
//!
//! Write path (see `docs/architecture.md`):
//! 1. a caller sends its request to the writer task and waits;
//! 2. the writer takes every request that is waiting (up to a limit);
//! 3. it validates each against what is stored plus what the group has
//!    staged so far (a request that fails validation fails alone), and
//!    applies the staged operations of the whole group as one atomic engine
//!    batch (a deletion, which must read what came before it, splits the
//!    group's batch in two);
//! 4. it keeps one engine flush in flight at a time: a flush covers every
//!    group applied before it started, and the next starts as soon as it
//!    returns, so requests that arrive during a flush form the next group;
//! 5. only when the flush covering a request has returned is its waiter
//!    answered `Ok`.
//!
//! A failed apply or flush poisons the store: every waiter of that group and
//! every later write gets [`Error::Poisoned`], because after a failed flush
//! nobody can say what is durable. Reads go straight to the engine (on
//! `spawn_blocking` for engines that block).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Engine, EngineOp, Entry, MemoryEngine, SledEngine};
use crate::error::{Error, Result};
use crate::journal::{Journal, KvWrite, WriteBatch};
use crate::keys;
use crate::record::{self, EventRecord, SeqNr, Snapshot};
use crate::snapshot::{SnapshotCriteria, SnapshotStore};

/// How many waiting requests one group commit takes at most.
const MAX_GROUP: usize = 4096;
/// How many keys one engine batch deletes at most when deleting history.
const DELETE_CHUNK: usize = 10_000;
/// How many times the writer yields, at most, to let a group fill up.
const LINGER_ROUNDS: usize = 8;
/// How many persistence ids the writer remembers the highest of.
const HIGHEST_CACHE: usize = 100_000;

/// A journal and snapshot store over an [`Engine`]. Cheap to clone.
///
/// # Examples
///
/// ```
/// use courier::persistence::{Journal, MemoryStore, WriteBatch};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), courier::persistence::Error> {
/// let store = MemoryStore::memory()?;
/// store.write(WriteBatch::new().put("settings", "mode", "fast")).await?;
/// assert_eq!(store.kv_get("settings", b"mode").await?, Some(b"fast".to_vec()));
/// # Ok(())
/// # }
/// ```
pub struct Store<E: Engine> {
    engine: Arc<E>,
    requests: mpsc::UnboundedSender<Pending>,
    poison: Arc<Mutex<Option<String>>>,
}

impl<E: Engine> Clone for Store<E> {
    fn clone(&self) -> Self {
        Self {
            engine: Arc::clone(&self.engine),
            requests: self.requests.clone(),
            poison: Arc::clone(&self.poison),
        }
    }
}

/// The in-memory store: for tests and examples.
pub type MemoryStore = Store<MemoryEngine>;
/// The sled store: the embedded durable default.
pub type SledStore = Store<SledEngine>;

impl Store<MemoryEngine> {
    /// A fresh in-memory store. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] outside a tokio runtime.
    pub fn memory() -> Result<Self> {
        Self::with_engine(MemoryEngine::new())
    }
}

impl Store<SledEngine> {
    /// Opens (or creates) a sled store in directory `path`. Must be called
    /// within a tokio runtime.
    ///
    /// # Errors
    ///
    /// sled's error if the directory cannot be opened; [`Error::Invalid`]
    /// outside a tokio runtime.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_engine(SledEngine::open(path)?)
    }

    /// [`open`](Self::open) with `max_group` as the most writes that share
    /// one flush (default 4096; values below 1 count as 1).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_max_group(path: impl AsRef<Path>, max_group: usize) -> Result<Self> {
        Self::with_engine_and_max_group(SledEngine::open(path)?, max_group)
    }
}

enum Request {
    Write(WriteBatch),
    DeleteEventsTo {
        persistence_id: String,
        to: SeqNr,
    },
    SaveSnapshot(Snapshot),
    DeleteSnapshots {
        persistence_id: String,
        criteria: SnapshotCriteria,
    },
}

type Done = oneshot::Sender<Result<()>>;
type FlushFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

enum Step {
    Requests(usize),
    Flushed(Result<()>),
}

/// The flush in flight, or a future that never completes when there is none.
async fn in_flight(flush: &mut Option<FlushFuture>) -> Result<()> {
    match flush {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

struct Pending {
    request: Request,
    done: Done,
}

/// Writes of a group planned but not yet applied to the engine.
#[derive(Default)]
struct Staged {
    ops: Vec<EngineOp>,
    dones: Vec<Done>,
}

/// A journal's bookkeeping, written only when events are deleted: the
/// highest sequence number at that moment (so it never goes down, even when
/// every event is gone) and how far events were deleted. While no event is
/// deleted, the highest is simply the last event's key.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Meta {
    highest: SeqNr,
    deleted_to: SeqNr,
}

impl<E: Engine> Store<E> {
    /// A store over `engine`, with its writer task spawned on the current
    /// tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] outside a tokio runtime.
    pub fn with_engine(engine: E) -> Result<Self> {
        Self::with_engine_and_max_group(engine, MAX_GROUP)
    }

    /// [`with_engine`](Self::with_engine) with `max_group` as the most
    /// writes that share one flush.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] outside a tokio runtime.
    pub fn with_engine_and_max_group(engine: E, max_group: usize) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Invalid {
            what: "runtime",
            reason: "a store must be opened within a tokio runtime".into(),
        })?;
        let engine = Arc::new(engine);
        let poison = Arc::new(Mutex::new(None));
        let (requests, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            engine: Arc::clone(&engine),
            highest: HashMap::new(),
            max_group: max_group.max(1),
            requests: rx,
            poison: Arc::clone(&poison),
        };
        runtime.spawn(writer.run());
        Ok(Self {
            engine,
            requests,
            poison,
        })
    }

    /// The engine underneath.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// Why the store refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        self.poison
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn submit(&self, request: Request) -> Result<()> {
        if let Some(reason) = self.poisoned() {
            return Err(Error::Poisoned { reason });
        }
        let (done, rx) = oneshot::channel();
        self.requests
            .send(Pending { request, done })
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Runs a read against the engine, off the runtime if it may block.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&E) -> Result<T> + Send + 'static,
    {
        if self.engine.blocking() {
            let engine = Arc::clone(&self.engine);
            tokio::task::spawn_blocking(move || f(&engine))
                .await
                .map_err(|e| Error::Storage(Box::new(e)))?
        } else {
            f(&self.engine)
        }
    }
}

fn read_meta<E: Engine>(engine: &E, pid: &str) -> Result<Meta> {
    match engine.get(&keys::meta(pid))? {
        Some(bytes) => record::decode_record(&bytes, pid, 0),
        None => Ok(Meta::default()),
    }
}

/// The highest sequence number of `pid`: the last stored event's, or what
/// the metadata kept when events were deleted, whichever is higher.
fn read_highest<E: Engine>(engine: &E, pid: &str) -> Result<SeqNr> {
    let meta = read_meta(engine, pid)?;
    let prefix = keys::event(pid, 0);
    let prefix = &prefix[..prefix.len() - 8];
    let end = keys::prefix_end(prefix);
    let last = engine
        .scan(prefix, end.as_deref(), 1, true)?
        .first()
        .and_then(|(k, _)| keys::seq_of(k))
        .unwrap_or(0);
    Ok(meta.highest.max(last))
}

fn decode_kv(namespace: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    record::unframe(bytes)
        .map(<[u8]>::to_vec)
        .map_err(|reason| Error::Corrupt {
            persistence_id: format!("kv:{namespace}"),
            seq_nr: 0,
            reason,
        })
}

/// Decodes a scanned event and checks it is the one its key names.
fn decode_event(pid: &str, key: &[u8], value: &[u8]) -> Result<EventRecord> {
    let seq = keys::seq_of(key).unwrap_or(0);
    let record = record::decode_event(value, pid, seq)?;
    if record.persistence_id != pid || record.seq_nr != seq {
        return Err(Error::Corrupt {
            persistence_id: pid.to_owned(),
            seq_nr: seq,
            reason: format!(
                "the record stored here is {}#{}",
                record.persistence_id, record.seq_nr
            ),
        });
    }
    Ok(record)
}

#[async_trait]
impl<E: Engine> Journal for Store<E> {
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.submit(Request::Write(batch)).await
    }

    async fn read_events(
        &self,
        persistence_id: &str,
        from: SeqNr,
        to: SeqNr,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        keys::check_id("persistence id", persistence_id)?;
        if limit == 0 || from > to {
            return Ok(Vec::new());
        }
        let pid = persistence_id.to_owned();
        self.read(move |engine| {
            let meta = read_meta(engine, &pid)?;
            let from = from.max(meta.deleted_to.saturating_add(1));
            if from > to {
                return Ok(Vec::new());
            }
            let start = keys::event(&pid, from);
            let end = match to.checked_add(1) {
                Some(after) => keys::event(&pid, after),
                None => keys::prefix_end(&keys::event(&pid, 0)[..keys::event(&pid, 0).len() - 8])
                    .unwrap_or_default(),
            };
            let mut events = Vec::with_capacity(limit.min(4096));
            engine.visit(&start, Some(&end), limit, &mut |k, v| {
                events.push(decode_event(&pid, k, v)?);
                Ok(())
            })?;
            Ok(events)
        })
        .await
    }

    async fn highest_seq_nr(&self, persistence_id: &str) -> Result<SeqNr> {
        keys::check_id("persistence id", persistence_id)?;
        let pid = persistence_id.to_owned();
        self.read(move |engine| read_highest(engine, &pid)).await
    }

    async fn deleted_to(&self, persistence_id: &str) -> Result<SeqNr> {
        keys::check_id("persistence id", persistence_id)?;
        let pid = persistence_id.to_owned();
        self.read(move |engine| Ok(read_meta(engine, &pid)?.deleted_to))
            .await
    }

    async fn delete_events_to(&self, persistence_id: &str, to: SeqNr) -> Result<()> {
        keys::check_id("persistence id", persistence_id)?;
        self.submit(Request::DeleteEventsTo {
            persistence_id: persistence_id.to_owned(),
            to,
        })
        .await
    }

    async fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        keys::check_id("namespace", namespace)?;
        let ns = namespace.to_owned();
        let full = keys::kv(namespace, key);
        self.read(move |engine| {
            engine
                .get(&full)?
                .map(|bytes| decode_kv(&ns, &bytes))
                .transpose()
        })
        .await
    }

    async fn kv_scan(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        keys::check_id("namespace", namespace)?;
        let ns = namespace.to_owned();
        let prefix = keys::kv(namespace, &[]);
        let start = match after {
            // The smallest key greater than `after` is `after ++ [0]`.
            Some(after) => {
                let mut k = keys::kv(namespace, after);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let end = keys::prefix_end(&prefix);
        self.read(move |engine| {
            engine
                .scan(&start, end.as_deref(), limit, false)?
                .into_iter()
                .map(|(k, v)| Ok((keys::kv_suffix(&ns, &k).to_vec(), decode_kv(&ns, &v)?)))
                .collect()
        })
        .await
    }
}

#[async_trait]
impl<E: Engine> SnapshotStore for Store<E> {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        keys::check_id("persistence id", &snapshot.metadata.persistence_id)?;
        self.submit(Request::SaveSnapshot(snapshot)).await
    }

    async fn load_snapshot(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> Result<Option<Snapshot>> {
        keys::check_id("persistence id", persistence_id)?;
        let pid = persistence_id.to_owned();
        self.read(move |engine| {
            let mut below = criteria.max_seq_nr;
            loop {
                let candidates = snapshots_below(engine, &pid, below, criteria.min_seq_nr, 16)?;
                if candidates.is_empty() {
                    return Ok(None);
                }
                for entry in &candidates {
                    let snapshot = decode_snapshot(&pid, entry)?;
                    if criteria.matches(snapshot.metadata.seq_nr, snapshot.metadata.timestamp) {
                        return Ok(Some(snapshot));
                    }
                }
                let lowest = candidates
                    .last()
                    .and_then(|(k, _)| keys::seq_of(k))
                    .unwrap_or(0);
                match lowest.checked_sub(1) {
                    Some(next) if next >= criteria.min_seq_nr => below = next,
                    _ => return Ok(None),
                }
            }
        })
        .await
    }

    async fn delete_snapshot(&self, persistence_id: &str, seq_nr: SeqNr) -> Result<()> {
        let criteria = SnapshotCriteria::latest()
            .max_seq_nr(seq_nr)
            .min_seq_nr(seq_nr);
        self.delete_snapshots(persistence_id, criteria).await
    }

    async fn delete_snapshots(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> Result<()> {
        keys::check_id("persistence id", persistence_id)?;
        self.submit(Request::DeleteSnapshots {
            persistence_id: persistence_id.to_owned(),
            criteria,
        })
        .await
    }
}

/// An error with its sources, for messages that outlive the error.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Up to `limit` snapshot entries of `pid` with `min <= seq <= max`, newest first.
fn snapshots_below<E: Engine>(
    engine: &E,
    pid: &str,
    max: SeqNr,
    min: SeqNr,
    limit: usize,
) -> Result<Vec<Entry>> {
    let start = keys::snapshot(pid, min);
    let end = match max.checked_add(1) {
        Some(after) => keys::snapshot(pid, after),
        None => {
            let prefix = keys::snapshot(pid, 0);
            keys::prefix_end(&prefix[..prefix.len() - 8]).unwrap_or_default()
        }
    };
    engine.scan(&start, Some(&end), limit, true)
}

fn decode_snapshot(pid: &str, (key, value): &Entry) -> Result<Snapshot> {
    let seq = keys::seq_of(key).unwrap_or(0);
    let snapshot = record::decode_snapshot(value, pid, seq)?;
    if snapshot.metadata.persistence_id != pid || snapshot.metadata.seq_nr != seq {
        return Err(Error::Corrupt {
            persistence_id: pid.to_owned(),
            seq_nr: seq,
            reason: "the snapshot stored here belongs elsewhere".into(),
        });
    }
    Ok(snapshot)
}

/// The single task that writes: validates, applies, flushes, answers.
struct Writer<E: Engine> {
    engine: Arc<E>,
    /// Highest sequence number per persistence id. The writer is the only
    /// one that writes, so the cache cannot go stale.
    highest: HashMap<String, SeqNr>,
    /// The most requests applied (and so flushed) as one group.
    max_group: usize,
    requests: mpsc::UnboundedReceiver<Pending>,
    poison: Arc<Mutex<Option<String>>>,
}

impl<E: Engine> Writer<E> {
    /// Applies requests as they come and keeps one flush in flight at a
    /// time: requests applied while a flush runs wait for the next one, which
    /// starts as soon as the current one returns. So the disk is kept busy
    /// and a group is everything that arrived during the previous flush.
    async fn run(mut self) {
        let mut group = Vec::new();
        // Applied, waiting for a flush that has not started yet.
        let mut waiting: Vec<Done> = Vec::new();
        // The flush in flight and the waiters it covers.
        let mut flush: Option<FlushFuture> = None;
        let mut flushing: Vec<Done> = Vec::new();
        let mut open = true;
        while open || flush.is_some() || !waiting.is_empty() {
            if flush.is_none() && !waiting.is_empty() {
                self.linger(&mut group, &mut waiting).await;
                let engine = Arc::clone(&self.engine);
                flush = Some(Box::pin(async move { engine.flush().await }));
                flushing = std::mem::take(&mut waiting);
            }
            let step = tokio::select! {
                n = self.requests.recv_many(&mut group, self.max_group), if open => Step::Requests(n),
                result = in_flight(&mut flush) => Step::Flushed(result),
            };
            match step {
                // Every store handle is gone: finish what is in flight.
                Step::Requests(0) => open = false,
                Step::Requests(_) => {
                    let applied = self.apply_group(std::mem::take(&mut group));
                    waiting.extend(applied);
                }
                Step::Flushed(result) => {
                    flush = None;
                    let dones = std::mem::take(&mut flushing);
                    match result {
                        Ok(()) => {
                            for done in dones {
                                let _ = done.send(Ok(()));
                            }
                        }
                        Err(e) => {
                            let reason = self.poison(format!("flush failed: {}", chain(&e)));
                            tracing::error!(%reason, "store poisoned: writes since the last flush may be lost");
                            // Nothing applied since can be made durable either.
                            for done in dones.into_iter().chain(waiting.drain(..)) {
                                let _ = done.send(Err(Error::Poisoned {
                                    reason: reason.clone(),
                                }));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Before a flush, gives writers that were just answered a moment to
    /// send their next request, so that it joins this flush instead of
    /// waiting for the next one: without this, writers that each keep one
    /// write in flight split into two cohorts that alternate between
    /// flushes, halving what each flush carries. Yields while requests keep
    /// arriving, a bounded number of times; a lone writer pays one yield.
    async fn linger(&mut self, group: &mut Vec<Pending>, waiting: &mut Vec<Done>) {
        for _ in 0..LINGER_ROUNDS {
            tokio::task::yield_now().await;
            while group.len() < self.max_group {
                match self.requests.try_recv() {
                    Ok(pending) => group.push(pending),
                    Err(_) => break,
                }
            }
            if group.is_empty() {
                return;
            }
            let applied = self.apply_group(std::mem::take(group));
            waiting.extend(applied);
        }
    }

    fn poison(&self, reason: String) -> String {
        let mut poison = self.poison.lock().unwrap_or_else(PoisonError::into_inner);
        poison.get_or_insert(reason).clone()
    }

    fn poisoned(&self) -> Option<String> {
        self.poison
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Validates and applies a group of requests: their writes go to the
    /// engine as one atomic batch (more than one only around a deletion,
    /// which must see what came before it). Returns the waiters of what was
    /// applied, to be answered after the next flush; the others are answered
    /// here with their error.
    fn apply_group(&mut self, group: Vec<Pending>) -> Vec<Done> {
        let mut staged = Staged::default();
        let mut applied = Vec::with_capacity(group.len());
        for Pending { request, done } in group {
            if let Some(reason) = self.poisoned() {
                let _ = done.send(Err(Error::Poisoned { reason }));
                continue;
            }
            let deletion = matches!(
                request,
                Request::DeleteEventsTo { .. } | Request::DeleteSnapshots { .. }
            );
            let result = match &request {
                Request::Write(batch) => self.plan_write(batch, &mut staged),
                Request::SaveSnapshot(snapshot) => {
                    let md = &snapshot.metadata;
                    record::encode_snapshot(snapshot).map(|value| {
                        staged.ops.push(EngineOp::Put(
                            keys::snapshot(&md.persistence_id, md.seq_nr),
                            value,
                        ));
                    })
                }
                Request::DeleteEventsTo { persistence_id, to } => {
                    self.apply_staged(&mut staged, &mut applied);
                    self.plan_delete_events(persistence_id, *to)
                        .and_then(|chunks| self.apply_chunks(chunks))
                }
                Request::DeleteSnapshots {
                    persistence_id,
                    criteria,
                } => {
                    self.apply_staged(&mut staged, &mut applied);
                    self.plan_delete_snapshots(persistence_id, criteria)
                        .and_then(|chunks| self.apply_chunks(chunks))
                }
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
    fn apply_staged(&self, staged: &mut Staged, applied: &mut Vec<Done>) {
        let ops = std::mem::take(&mut staged.ops);
        let dones = std::mem::take(&mut staged.dones);
        if ops.is_empty() {
            applied.extend(dones);
            return;
        }
        match self.engine.apply(ops) {
            Ok(()) => applied.extend(dones),
            Err(e) => {
                let reason = self.poison(format!("apply failed: {}", chain(&e)));
                tracing::error!(%reason, "store poisoned");
                for done in dones {
                    let _ = done.send(Err(Error::Poisoned {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    fn apply_chunks(&self, chunks: Vec<Vec<EngineOp>>) -> Result<()> {
        for ops in chunks {
            if let Err(e) = self.engine.apply(ops) {
                let reason = self.poison(format!("apply failed: {}", chain(&e)));
                tracing::error!(%reason, "store poisoned");
                return Err(e);
            }
        }
        Ok(())
    }

    /// Stages the operations of a write. Validates against the journal's
    /// highest sequence numbers as everything applied and staged so far
    /// leaves them; on error nothing is staged.
    fn plan_write(&mut self, batch: &WriteBatch, staged: &mut Staged) -> Result<()> {
        let mut ops = Vec::with_capacity(batch.events.len() + batch.kv.len());
        // Highest per persistence id as this batch advances it.
        let mut advanced: HashMap<&str, SeqNr> = HashMap::new();
        for event in &batch.events {
            let pid = event.persistence_id.as_str();
            keys::check_id("persistence id", pid)?;
            let highest = match advanced.get_mut(pid) {
                Some(highest) => highest,
                None => {
                    let current = self.highest(pid)?;
                    advanced.entry(pid).or_insert(current)
                }
            };
            let expected = highest.saturating_add(1);
            if event.seq_nr != expected {
                return Err(Error::SequenceConflict {
                    persistence_id: pid.to_owned(),
                    expected,
                    got: event.seq_nr,
                });
            }
            *highest = event.seq_nr;
            ops.push(EngineOp::Put(
                keys::event(pid, event.seq_nr),
                record::encode_event(event)?,
            ));
        }
        for kv in &batch.kv {
            match kv {
                KvWrite::Put {
                    namespace,
                    key,
                    value,
                } => {
                    keys::check_id("namespace", namespace)?;
                    ops.push(EngineOp::Put(
                        keys::kv(namespace, key),
                        record::frame(value.clone()),
                    ));
                }
                KvWrite::Delete { namespace, key } => {
                    keys::check_id("namespace", namespace)?;
                    ops.push(EngineOp::Delete(keys::kv(namespace, key)));
                }
            }
        }
        // Staged writes either apply or poison the store, so the cache may
        // move ahead now.
        for (pid, highest) in advanced {
            self.remember_highest(pid, highest);
        }
        staged.ops.extend(ops);
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
