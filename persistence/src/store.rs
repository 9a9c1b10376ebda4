//! [`Store`]: a journal and snapshot store over one [`Engine`], with a
//! single writer task that commits concurrent writes in groups.
//!
//! Write path (see `docs/architecture.md`):
//! 1. a caller encodes its records (keys, bodies, checksums) on its own
//!    task, sends the request to the writer task's bounded queue (waiting
//!    for room when it is full: back-pressure) and waits;
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
//! (for sled and fjall, `courier.commit` in the store's directory) before
//! it answers:
//! on open, an engine that holds fewer commits than the record says were
//! acknowledged is refused ([`Error::RolledBack`]), because the engine's own
//! recovery lost acknowledged writes.
//!
//! A failed apply or flush poisons the store: every waiter of that group and
//! every later write gets [`Error::Poisoned`], because after a failed flush
//! nobody can say what is durable. Reads go straight to the engine (on
//! `spawn_blocking` for engines that block).
//!
//! No engine call runs on a tokio worker when the engine may block: the
//! writer task hands its applies, its flushes and the commit record's
//! update to the store's I/O thread (see `io.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use courier_core::sync;
use tokio::sync::{mpsc, oneshot};

#[cfg(any(feature = "sled", feature = "fjall"))]
use crate::durable::DurableEngine;
use crate::engine::{Engine, EngineOp, MemoryEngine};
use crate::error::{Error, Result};
#[cfg(feature = "fjall")]
use crate::fjall_engine::FjallEngine;
use crate::metrics::StoreMetrics;
use crate::record::SeqNr;
#[cfg(feature = "sled")]
use crate::sled_engine::SledEngine;
use crate::snapshot::SnapshotCriteria;

mod close;
mod commits;
#[cfg(any(feature = "sled", feature = "fjall"))]
mod disk;
mod io;
mod journal;
mod open;
mod prepared;
mod reads;
mod snapshots;
mod verify;
mod writer;

pub(crate) use close::release;
pub use open::StoreOptions;
pub(crate) use reads::decode_kv;
pub use verify::{
    JournalSummary, MAX_LISTED_PROBLEMS, NamespaceSummary, Problem, StoreReport, Verifier,
};
// The writer validates with the same readers.
use reads::{decode_snapshot, read_highest, read_meta, snapshots_below};

/// How many waiting requests one group commit takes at most, by default
/// (`StoreOptions::max_group`, `[persistence] group_commit_max`).
pub const MAX_GROUP: usize = 4096;
/// How many keys one engine batch deletes at most when deleting history.
const DELETE_CHUNK: usize = 10_000;
/// How many requests wait in the writer's queue at most, per request one
/// group takes: a full queue makes writers wait (back-pressure) instead of
/// growing memory.
const QUEUE_PER_GROUP: usize = 2;
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
    requests: mpsc::Sender<Pending>,
    poison: Arc<Mutex<Option<String>>>,
    /// What reads may answer (see [`commits`]).
    commits: Arc<commits::Commits>,
    metrics: StoreMetrics,
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
/// The fjall store: the second embedded engine.
#[cfg(feature = "fjall")]
pub type FjallStore = Store<FjallEngine>;
/// The store over whichever embedded engine was chosen at run time
/// ([`EngineKind`](crate::EngineKind)).
#[cfg(any(feature = "sled", feature = "fjall"))]
pub type DurableStore = Store<DurableEngine>;

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

/// A request to the writer task.
enum Request {
    Write(prepared::PreparedWrite),
    DeleteEventsTo {
        persistence_id: String,
        to: SeqNr,
    },
    /// The snapshot's put, encoded by the caller.
    SaveSnapshot(EngineOp),
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
        let io = match engine.blocking() || opened.commit_file.is_some() {
            true => Some(io::Io::spawn()?),
            false => None,
        };
        let metrics = StoreMetrics::new(engine.name());
        let engine = Arc::new(engine);
        let poison = Arc::new(Mutex::new(None));
        // A store that opened with a batch to flush (a new epoch) holds one
        // commit that is not durable yet.
        let durable = match opened.unflushed {
            true => opened.commit.saturating_sub(1),
            false => opened.commit,
        };
        let commits = Arc::new(commits::Commits::new(opened.commit, durable));
        let max_group = options.max_group.max(1);
        let (requests, rx) = mpsc::channel(max_group.saturating_mul(QUEUE_PER_GROUP));
        if opened.unflushed {
            // Its waiter is nobody: a failed flush poisons the store anyway.
            // The queue is new, so there is room.
            let (done, _) = oneshot::channel();
            let _ = requests.try_send(Pending {
                request: Request::Sync,
                done,
            });
        }
        let writer = writer::Writer {
            core: Some(writer::Core {
                engine: close::Releaser::new(Arc::clone(&engine)),
                highest: HashMap::new(),
                commit: opened.commit,
                poison: Arc::clone(&poison),
                poisoned: metrics.poisoned.clone(),
                commits: Arc::clone(&commits),
            }),
            io,
            max_group,
            requests: rx,
            poison: Arc::clone(&poison),
            commits: Arc::clone(&commits),
            commit_file: opened.commit_file,
            open: true,
            closers: Vec::new(),
            metrics: metrics.clone(),
        };
        runtime.spawn(writer.run());
        Ok(Self {
            shared: Arc::new(Shared {
                engine: RwLock::new(Some(engine)),
                requests,
                poison,
                commits,
                metrics,
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
            .await
            .map_err(|_| Error::Closed)?;
        // A waiter dropped unanswered: the writer is gone, or the engine
        // panicked on the I/O thread (which poisons the store).
        rx.await.map_err(|_| match self.poisoned() {
            Some(reason) => Error::Poisoned { reason },
            None => Error::Closed,
        })?
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
