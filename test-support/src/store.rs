//! Reopening a store a killed child held, on the engine a test runs on.
//!
//! The engine seam: [`engine`] reads `COURIER_TEST_ENGINE` (`sled`, the
//! default, or `fjall`), so a crash loop or a scenario written once runs on
//! either engine (`COURIER_TEST_ENGINE=fjall cargo test …`), and a test
//! that loops over engines passes the one it wants to [`open_durable`].

use std::time::{Duration, Instant};

use courier_persistence::{
    DurableEngine, DurableStore, Engine, EngineKind, EngineOp, Entry, MemoryEngine, SledStore,
    Store, StoreOptions, Visitor,
};

/// The variable that names the engine durable tests run on.
pub const ENGINE_ENV: &str = "COURIER_TEST_ENGINE";

/// The engine named by `COURIER_TEST_ENGINE`, sled when it is unset.
///
/// # Panics
///
/// If the variable names no engine, or one this build lacks.
pub fn engine() -> EngineKind {
    let kind = match std::env::var(ENGINE_ENV) {
        Ok(name) => name
            .parse()
            .unwrap_or_else(|e| panic!("{ENGINE_ENV}={name}: {e}")),
        Err(_) => EngineKind::Sled,
    };
    if let Err(e) = kind.check_available() {
        panic!("{ENGINE_ENV}: {e}");
    }
    kind
}

/// Opens the sled store at `path`, retrying for up to 10 s: sled refuses a
/// directory another handle still holds, and a SIGKILLed predecessor's lock
/// may take a moment to go.
///
/// # Panics
///
/// If the store still cannot be opened after 10 s (with sled's error).
pub async fn open_sled(path: &str) -> SledStore {
    retry(path, || SledStore::open(path)).await
}

/// Opens a `kind` store at `path`, retrying as [`open_sled`] does.
///
/// # Panics
///
/// If the store still cannot be opened after 10 s (with the engine's error).
pub async fn open_durable(kind: EngineKind, path: &str) -> DurableStore {
    retry(path, || {
        DurableStore::open_engine(kind, path, None, StoreOptions::new())
    })
    .await
}

/// Opens the store at `path` on the engine `COURIER_TEST_ENGINE` names
/// ([`engine`]), retrying as [`open_sled`] does.
///
/// # Panics
///
/// As [`engine`] and [`open_durable`].
pub async fn open_store(path: &str) -> DurableStore {
    open_durable(engine(), path).await
}

async fn retry<S>(path: &str, open: impl Fn() -> courier_persistence::Result<S>) -> S {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Ok(store) => return store,
            Err(e) if Instant::now() < deadline => {
                eprintln!("open {path} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot open {path}: {e}"),
        }
    }
}

/// The store of a scenario: in memory, unless `COURIER_TEST_ENGINE` names
/// a durable engine (see [`scenario_store`]).
pub type ScenarioStore = Store<ScenarioEngine>;

/// A scenario's engine: memory, or a durable engine in a temporary
/// directory that goes with it.
pub enum ScenarioEngine {
    /// Nothing survives the process; every call returns at once, so
    /// scenarios on tokio's paused clock stay deterministic.
    Memory(MemoryEngine),
    /// A real engine in its own temporary directory.
    Durable(DurableEngine, tempfile::TempDir),
}

/// A fresh store for a scenario: the memory store, or, when
/// `COURIER_TEST_ENGINE` is set, a store on that engine in a temporary
/// directory (so `COURIER_TEST_ENGINE=fjall cargo test -p courier-delivery
/// --test scenarios` runs the delivery scenarios on fjall). Must be called
/// within a tokio runtime.
///
/// # Panics
///
/// As [`engine`], or if the store cannot be opened.
pub fn scenario_store() -> ScenarioStore {
    let engine = match std::env::var_os(ENGINE_ENV) {
        None => ScenarioEngine::Memory(MemoryEngine::new()),
        Some(_) => {
            let dir = tempfile::tempdir().expect("tempdir");
            let durable = DurableEngine::open(engine(), dir.path(), None).expect("open engine");
            ScenarioEngine::Durable(durable, dir)
        }
    };
    // No commit record: its update would run on the store's I/O thread
    // (see `blocking` below); the engines' own tests cover it.
    Store::with_options(engine, StoreOptions::new()).expect("store")
}

impl ScenarioEngine {
    fn engine(&self) -> &dyn Engine {
        match self {
            Self::Memory(e) => e,
            Self::Durable(e, _) => e,
        }
    }
}

impl Engine for ScenarioEngine {
    fn get(&self, key: &[u8]) -> courier_persistence::Result<Option<Vec<u8>>> {
        self.engine().get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> courier_persistence::Result<Vec<Entry>> {
        self.engine().scan(start, end, limit, reverse)
    }

    fn visit(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> courier_persistence::Result<()> {
        self.engine().visit(start, end, limit, visit)
    }

    fn apply(&self, ops: Vec<EngineOp>) -> courier_persistence::Result<()> {
        self.engine().apply(ops)
    }

    fn flush(&self) -> courier_persistence::Result<()> {
        self.engine().flush()
    }

    /// `false` even for a durable engine, on purpose: the scenarios run on
    /// tokio's paused clock, which jumps ahead (auto-advance) whenever the
    /// runtime has nothing to do, so an engine call on another thread
    /// would let every timeout fire while the disk works. Inline, the disk
    /// is just a slow engine to them. Running engine calls off the runtime
    /// is the persistence crate's own tests' business.
    fn blocking(&self) -> bool {
        false
    }

    fn close(self) -> courier_persistence::Result<()> {
        match self {
            Self::Memory(e) => e.close(),
            Self::Durable(e, dir) => {
                let closed = e.close();
                drop(dir);
                closed
            }
        }
    }
}
