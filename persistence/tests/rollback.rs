//! Rollback detection: a store whose engine comes back with fewer commits
//! than its commit record says were acknowledged refuses to open; accepting
//! the loss starts a new store epoch; stores from before commit numbers are
//! upgraded. The engine here is the memory engine rolled back by hand, so
//! the check is shown to live in the store, not in an engine.

#![cfg(all(feature = "sled", feature = "fjall"))]

use std::path::Path;
use std::sync::Arc;

use courier_persistence::{
    COMMIT_FILE, Engine, EngineOp, Error, FjallStore, Journal, MemoryEngine, ReplayRange,
    STORE_EPOCH_KEY, STORE_NAMESPACE, SledStore, Store, StoreOptions, WriteBatch, replay,
    store_epoch, tck,
};

const PID: &str = "orders";

fn options(dir: &Path) -> StoreOptions {
    StoreOptions::new().commit_file(dir.join("courier.commit"))
}

/// A memory engine holding exactly `entries`.
fn engine_with(entries: &[(Vec<u8>, Vec<u8>)]) -> Arc<MemoryEngine> {
    let engine = Arc::new(MemoryEngine::new());
    for (k, v) in entries {
        engine.put_raw(k, v);
    }
    engine
}

async fn write_events(store: &Store<Arc<MemoryEngine>>, from: u64, to: u64) {
    for seq in from..=to {
        store
            .write(WriteBatch::new().event(tck::event(PID, seq)))
            .await
            .expect("write");
    }
}

#[tokio::test]
async fn an_engine_that_came_back_shorter_is_refused_until_the_loss_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(MemoryEngine::new());
    let store = Store::with_options(Arc::clone(&engine), options(dir.path())).expect("open");
    write_events(&store, 1, 4).await;
    let before = engine.raw_entries();
    write_events(&store, 5, 10).await;
    let first_epoch = store_epoch(&store).await.expect("epoch").expect("some");
    store.close().await.expect("close");

    // The engine comes back as it was after event 4: events 5..=10 were
    // acknowledged and are gone.
    let rolled_back = engine_with(&before);
    let refused = Store::with_options(Arc::clone(&rolled_back), options(dir.path()));
    match refused {
        Err(Error::RolledBack {
            acknowledged,
            found,
            ref path,
        }) => {
            assert_eq!(acknowledged - found, 6, "one commit per acknowledged write");
            assert_eq!(path, &dir.path().join("courier.commit"));
            let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("courier.commit"), "{message}");
            assert!(message.contains("open_accepting_loss"), "{message}");
        }
        other => panic!("expected a refusal, got {:?}", other.err()),
    }

    let accepted = Store::with_options(
        Arc::clone(&rolled_back),
        options(dir.path()).accept_loss(true),
    )
    .expect("open accepting the loss");
    let second_epoch = store_epoch(&accepted).await.expect("epoch").expect("some");
    assert_ne!(
        first_epoch, second_epoch,
        "accepting loss starts a new epoch"
    );
    assert_eq!(accepted.highest_seq_nr(PID).await.expect("highest"), 4);
    write_events(&accepted, 5, 6).await;
    accepted.close().await.expect("close");

    // The record now matches the engine: a plain open works and keeps the
    // new epoch.
    let reopened = Store::with_options(rolled_back, options(dir.path())).expect("reopen");
    assert_eq!(
        store_epoch(&reopened).await.expect("epoch"),
        Some(second_epoch)
    );
    let stats = replay(&reopened, PID, ReplayRange::all(), 4, |_| Ok(()))
        .await
        .expect("replay");
    assert_eq!(stats.events, 6);
}

#[tokio::test]
async fn a_missing_or_damaged_commit_record_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(MemoryEngine::new());
    let store = Store::with_options(Arc::clone(&engine), options(dir.path())).expect("open");
    write_events(&store, 1, 3).await;
    store.close().await.expect("close");

    let record = dir.path().join("courier.commit");
    std::fs::remove_file(&record).expect("remove");
    let missing = Store::with_options(Arc::clone(&engine), options(dir.path()));
    assert!(
        matches!(missing, Err(Error::CommitRecord { ref reason, .. }) if reason.contains("missing")),
        "{:?}",
        missing.err()
    );

    std::fs::write(&record, b"not a commit record").expect("write");
    let damaged = Store::with_options(Arc::clone(&engine), options(dir.path()));
    assert!(
        matches!(damaged, Err(Error::CommitRecord { .. })),
        "{:?}",
        damaged.err()
    );
    Store::with_options(engine, options(dir.path()).accept_loss(true))
        .expect("accepting loss opens")
        .close()
        .await
        .expect("close");
}

#[tokio::test]
async fn a_store_from_before_commit_numbers_is_upgraded_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(MemoryEngine::new());
    let store = Store::with_engine(Arc::clone(&engine)).expect("open");
    write_events(&store, 1, 3).await;
    store.close().await.expect("close");
    // Take the store's own records out: what an older courier left behind.
    let own: Vec<_> = engine
        .raw_entries()
        .into_iter()
        .filter(|(k, _)| {
            k.windows(STORE_NAMESPACE.len())
                .any(|w| w == STORE_NAMESPACE.as_bytes())
        })
        .map(|(k, _)| EngineOp::Delete(k))
        .collect();
    assert_eq!(own.len(), 2, "an epoch and a commit number");
    engine.apply(own).expect("delete");

    let upgraded = Store::with_options(Arc::clone(&engine), options(dir.path())).expect("open");
    assert!(store_epoch(&upgraded).await.expect("epoch").is_some());
    assert_eq!(upgraded.highest_seq_nr(PID).await.expect("highest"), 3);
    write_events(&upgraded, 4, 5).await;
    upgraded.close().await.expect("close");
    assert!(dir.path().join("courier.commit").exists());
    // From now on it is checked like any other store.
    let reopened = Store::with_options(engine, options(dir.path())).expect("reopen");
    reopened.close().await.expect("close");
}

#[tokio::test]
async fn the_store_namespace_is_not_writable_and_every_store_has_an_epoch() {
    let memory = courier_persistence::MemoryStore::memory().expect("store");
    let epoch = store_epoch(&memory).await.expect("epoch").expect("some");
    assert_eq!(epoch.get_version_num(), 7);
    let write = memory
        .write(WriteBatch::new().put(STORE_NAMESPACE, STORE_EPOCH_KEY.to_vec(), vec![0; 16]))
        .await;
    assert!(matches!(write, Err(Error::Invalid { .. })), "{write:?}");
    let delete = memory
        .write(WriteBatch::new().delete(STORE_NAMESPACE, STORE_EPOCH_KEY.to_vec()))
        .await;
    assert!(matches!(delete, Err(Error::Invalid { .. })), "{delete:?}");
    assert_eq!(store_epoch(&memory).await.expect("epoch"), Some(epoch));
}

#[tokio::test]
async fn a_sled_store_keeps_its_epoch_across_reopens_and_replaces_it_on_accepted_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let epoch = store_epoch(&store).await.expect("epoch").expect("some");
    store.close().await.expect("close");
    let store = SledStore::open(dir.path()).expect("reopen");
    assert_eq!(store_epoch(&store).await.expect("epoch"), Some(epoch));
    store.close().await.expect("close");
    let store = SledStore::open_accepting_loss(dir.path()).expect("reopen accepting loss");
    let replaced = store_epoch(&store).await.expect("epoch").expect("some");
    assert_ne!(replaced, epoch);
    store.close().await.expect("close");
}

#[tokio::test]
async fn a_fjall_store_keeps_its_epoch_across_reopens_and_replaces_it_on_accepted_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FjallStore::open(dir.path()).expect("open");
    let epoch = store_epoch(&store).await.expect("epoch").expect("some");
    write_events_to(&store, 1, 3).await;
    store.close().await.expect("close");
    let store = FjallStore::open(dir.path()).expect("reopen");
    assert_eq!(store_epoch(&store).await.expect("epoch"), Some(epoch));
    store.close().await.expect("close");
    // The commit record is gone (a copy of the directory without it): the
    // engine holds commits the store cannot vouch for.
    std::fs::remove_file(dir.path().join(COMMIT_FILE)).expect("remove");
    let refused = FjallStore::open(dir.path());
    assert!(
        matches!(refused, Err(Error::CommitRecord { .. })),
        "{:?}",
        refused.err()
    );
    let store = FjallStore::open_accepting_loss(dir.path()).expect("reopen accepting loss");
    let replaced = store_epoch(&store).await.expect("epoch").expect("some");
    assert_ne!(replaced, epoch);
    assert_eq!(store.highest_seq_nr(PID).await.expect("highest"), 3);
    store.close().await.expect("close");
}

async fn write_events_to(store: &dyn Journal, from: u64, to: u64) {
    for seq in from..=to {
        store
            .write(WriteBatch::new().event(tck::event(PID, seq)))
            .await
            .expect("write");
    }
}
