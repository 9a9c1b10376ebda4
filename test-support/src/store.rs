//! Reopening a store a killed child held, on the engine a test runs on.
//!
//! The engine seam: [`engine`] reads `COURIER_TEST_ENGINE` (`sled`, the
//! default, or `fjall`), so a crash loop or a scenario written once runs on
//! either engine (`COURIER_TEST_ENGINE=fjall cargo test …`), and a test
//! that loops over engines passes the one it wants to [`open_durable`].

use std::time::{Duration, Instant};

use courier_persistence::{DurableStore, EngineKind, SledStore, StoreOptions};

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
