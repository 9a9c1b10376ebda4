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
//! Every engine batch also sets the store's commit number, and once a flush
//! has returned the writer records that number in a file outside the engine
//! (for sled, `courier.commit` in the store's directory) before it answers:
//! on open, an engine that holds fewer commits than the record says were
//! acknowledged is refused ([`Error::RolledBack`]), because the engine's own
//! recovery lost acknowledged writes.
//!
//! A failed apply or flush poisons the store: every waiter of that group and
//! every later write gets [`Error::Poisoned`], because after a failed flush
//! nobody can say what is durable. Reads go straight to the engine (on
//! `spawn_blocking` for engines that block).

use std::collections::HashMap;
#[cfg(feature = "sled")]
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use courier_core::sync;
use tokio::sync::{mpsc, oneshot};

#[cfg(feature = "sled")]
use crate::commit_file::COMMIT_FILE;
use crate::engine::{Engine, Entry, MemoryEngine};
use crate::error::{Error, Result};
use crate::journal::{Journal, WriteBatch};
use crate::keys;
use crate::record::{self, EventRecord, SeqNr, Snapshot};
#[cfg(feature = "sled")]
use crate::sled_engine::SledEngine;
use crate::snapshot::{SnapshotCriteria, SnapshotStore};

mod close;
mod open;
mod writer;

pub(crate) use close::release;
pub use open::StoreOptions;

/// How many waiting requests one group commit takes at most.
const MAX_GROUP: usize = 4096;
/// How many keys one engine batch deletes at most when deleting history.
const DELETE_CHUNK: usize = 10_000;
/// How many times the writer yields, at most, to let a group fill up.
const LINGER_ROUNDS: usize = 8;
/// How many persistence ids the writer remembers the highest of.
const HIGHEST_CACHE: usize = 100_000;

/// A journal and snapshot store over an [`Engine`]. Cheap to clone: clones
/// share one writer task and one engine.
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
/// store.close().await?;
/// # Ok(())
/// # }
/// ```
pub struct Store<E: Engine> {
    shared: Arc<Shared<E>>,
}

/// What every clone of a store shares.
struct Shared<E: Engine> {
    /// The engine, until [`Store::close`] takes it.
    engine: RwLock<Option<Arc<E>>>,
    requests: mpsc::UnboundedSender<Pending>,
    poison: Arc<Mutex<Option<String>>>,
}

impl<E: Engine> Drop for Shared<E> {
    fn drop(&mut self) {
        let engine = sync::get_mut(&mut self.engine).take();
        if let Some(engine) = engine {
            release(engine);
        }
    }
}

impl<E: Engine> Clone for Store<E> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The in-memory store: for tests and examples.
pub type MemoryStore = Store<MemoryEngine>;
/// The sled store: the embedded durable default.
#[cfg(feature = "sled")]
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

#[cfg(feature = "sled")]
impl Store<SledEngine> {
    /// Opens (or creates) a sled store in directory `path`, with its commit
    /// record in `path/courier.commit`. Must be called within a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`Error::RolledBack`] if sled came back with fewer commits than the
    /// store acknowledged; [`Error::CommitRecord`] if the commit record is
    /// missing while the database has commits, or unreadable;
    /// [`Error::EngineCorrupt`] if sled finds its files damaged; sled's
    /// error if the directory cannot be opened; [`Error::Invalid`] outside a
    /// tokio runtime.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_sled(path.as_ref(), StoreOptions::new())
    }

    /// [`open`](Self::open) with `max_group` as the most writes that share
    /// one flush (default 4096; values below 1 count as 1).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_max_group(path: impl AsRef<Path>, max_group: usize) -> Result<Self> {
        Self::open_sled(path.as_ref(), StoreOptions::new().max_group(max_group))
    }

    /// Opens the sled store in `path` even if its engine lost acknowledged
    /// writes or its commit record is gone: logs at ERROR what was lost,
    /// rewrites the commit record from what the engine holds, and starts a
    /// new store epoch (see [`store_epoch`](crate::store_epoch)), so that
    /// layers above can tell the history before the loss from the history
    /// after it. Use it after [`Error::RolledBack`] or
    /// [`Error::CommitRecord`] once you decided not to restore a backup, and
    /// after restoring a backup (which is a rollback the store cannot see).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), except the two it accepts.
    pub fn open_accepting_loss(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_sled(path.as_ref(), StoreOptions::new().accept_loss(true))
    }

    fn open_sled(path: &Path, options: StoreOptions) -> Result<Self> {
        let options = options.commit_file(path.join(COMMIT_FILE));
        Self::with_options(SledEngine::open(path)?, options)
    }
}

/// A request to the writer task.
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
    /// Nothing to apply (it was applied when the store opened): answered
    /// after the next flush.
    Sync,
    /// Stop taking requests, finish those before, let go of the engine.
    Close,
}

type Done = oneshot::Sender<Result<()>>;

struct Pending {
    request: Request,
    done: Done,
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
    /// tokio runtime, and no commit record (see [`StoreOptions`]).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] outside a tokio runtime; the engine's errors while
    /// reading or writing the store's own records.
    pub fn with_engine(engine: E) -> Result<Self> {
        Self::with_options(engine, StoreOptions::new())
    }

    /// [`with_engine`](Self::with_engine) with `max_group` as the most
    /// writes that share one flush.
    ///
    /// # Errors
    ///
    /// As [`with_engine`](Self::with_engine).
    pub fn with_engine_and_max_group(engine: E, max_group: usize) -> Result<Self> {
        Self::with_options(engine, StoreOptions::new().max_group(max_group))
    }

    /// A store over `engine` as `options` say: checks the engine against the
    /// commit record (if there is one), writes the store epoch if the
    /// engine has none, and spawns the writer task on the current tokio
    /// runtime. The few engine reads and the one batch this takes run on
    /// the calling thread, as the engine's own open does.
    ///
    /// # Errors
    ///
    /// [`Error::RolledBack`] and [`Error::CommitRecord`] as for
    /// [`SledStore::open`](Store::open); [`Error::Invalid`] outside a
    /// tokio runtime; the engine's errors.
    pub fn with_options(engine: E, options: StoreOptions) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Invalid {
            what: "runtime",
            reason: "a store must be opened within a tokio runtime".into(),
        })?;
        let opened = open::prepare(&engine, &options)?;
        let engine = Arc::new(engine);
        let poison = Arc::new(Mutex::new(None));
        let (requests, rx) = mpsc::unbounded_channel();
        if opened.unflushed {
            // Its waiter is nobody: a failed flush poisons the store anyway.
            let (done, _) = oneshot::channel();
            let _ = requests.send(Pending {
                request: Request::Sync,
                done,
            });
        }
        let writer = writer::Writer {
            engine: close::Releaser::new(Arc::clone(&engine)),
            highest: HashMap::new(),
            max_group: options.max_group.max(1),
            requests: rx,
            poison: Arc::clone(&poison),
            commit: opened.commit,
            commit_file: opened.commit_file,
            open: true,
            closers: Vec::new(),
        };
        runtime.spawn(writer.run());
        Ok(Self {
            shared: Arc::new(Shared {
                engine: RwLock::new(Some(engine)),
                requests,
                poison,
            }),
        })
    }

    /// The engine underneath, or `None` once the store is closed. Holding
    /// the handle keeps the engine open: [`close`](Self::close) waits for
    /// it to be dropped.
    pub fn engine(&self) -> Option<Arc<E>> {
        sync::read(&self.shared.engine).clone()
    }

    /// Why the store refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        sync::lock(&self.shared.poison).clone()
    }

    async fn submit(&self, request: Request) -> Result<()> {
        if let Some(reason) = self.poisoned() {
            return Err(Error::Poisoned { reason });
        }
        let (done, rx) = oneshot::channel();
        self.shared
            .requests
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
        let engine = self.engine().ok_or(Error::Closed)?;
        if engine.blocking() {
            tokio::task::spawn_blocking(move || f(&engine))
                .await
                .map_err(|e| Error::Storage(Box::new(e)))?
        } else {
            f(&engine)
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

/// Checks a key–value record's frame; an error names the record.
pub(crate) fn decode_kv(namespace: &str, key: &[u8], bytes: &[u8]) -> Result<Vec<u8>> {
    record::unframe(bytes)
        .map(<[u8]>::to_vec)
        .map_err(|reason| Error::CorruptKv {
            namespace: namespace.to_owned(),
            key: keys::printable(key),
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
        let key = key.to_vec();
        let full = keys::kv(namespace, &key);
        self.read(move |engine| {
            engine
                .get(&full)?
                .map(|bytes| decode_kv(&ns, &key, &bytes))
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
                .map(|(k, v)| {
                    let key = keys::kv_suffix(&ns, &k);
                    Ok((key.to_vec(), decode_kv(&ns, key, &v)?))
                })
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
