//! Reopening a store a killed child held.

use std::time::{Duration, Instant};

use courier_persistence::SledStore;

/// Opens the sled store at `path`, retrying for up to 10 s: sled refuses a
/// directory another handle still holds, and a SIGKILLed predecessor's lock
/// may take a moment to go.
///
/// # Panics
///
/// If the store still cannot be opened after 10 s (with sled's error).
pub async fn open_sled(path: &str) -> SledStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(path) {
            Ok(store) => return store,
            Err(e) if Instant::now() < deadline => {
                eprintln!("open {path} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot open {path}: {e}"),
        }
    }
}
