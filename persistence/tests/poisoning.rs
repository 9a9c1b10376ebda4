//! Durability bookkeeping: a failed flush poisons the store (writes and
//! reads), a read answers only what is durable, and concurrent
//! writes are committed in groups (fewer flushes than writes): on the
//! memory engine, and on each durable engine (sled and fjall) under the
//! same knobs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

mod support;

use courier_persistence::{
    DurableEngine, Engine, EngineKind, Error, Journal, Manifest, ReplayRange, Snapshot,
    SnapshotCriteria, SnapshotMetadata, SnapshotStore, Store, WriteBatch, replay, tck,
};
use support::TestEngine;

fn snapshot(seq: u64) -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            persistence_id: "p".into(),
            seq_nr: seq,
            timestamp: 0,
        },
        manifest: Manifest::new("s", 1),
        payload: vec![],
    }
}

#[tokio::test]
async fn a_failed_flush_poisons_every_later_write_and_read() {
    poisons(TestEngine::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_poisons_a_durable_store() {
    for kind in EngineKind::compiled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = DurableEngine::open(kind, dir.path(), None).expect("open");
        poisons(TestEngine::over(engine)).await;
    }
}

/// A failed apply poisons the store like a failed flush, and its group is
/// never flushed: nothing of it is acknowledged, and the engine is not
/// asked to flush again (sled's flush may hang after an I/O error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_poisons_and_is_not_flushed() {
    let engine = TestEngine::with_flush_delay(Duration::from_millis(1));
    let (fail, flushes) = (engine.fail_apply.clone(), engine.flushes.clone());
    let same_engine = engine.clone();
    let store = Store::with_engine(engine).expect("store");
    store
        .write(WriteBatch::new().event(tck::event("p", 1)))
        .await
        .expect("a healthy write");
    let flushed_before = flushes.load(Ordering::SeqCst);

    fail.store(true, Ordering::SeqCst);
    // Several writers, so that the failed group holds more than one.
    let writes: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(WriteBatch::new().event(tck::event(&format!("w-{i}"), 1)))
                    .await
            })
        })
        .collect();
    for write in writes {
        let written = write.await.expect("writer");
        assert!(
            matches!(written, Err(Error::Poisoned { .. })),
            "{written:?}"
        );
    }
    let reason = store.poisoned().expect("poisoned");
    assert!(reason.contains("refused the batch"), "{reason}");
    assert_eq!(
        flushes.load(Ordering::SeqCst),
        flushed_before,
        "a poisoned group was flushed"
    );

    // The disk recovers; the store still refuses, and still never flushes.
    fail.store(false, Ordering::SeqCst);
    let write = store
        .write(WriteBatch::new().event(tck::event("q", 1)))
        .await;
    assert!(matches!(write, Err(Error::Poisoned { .. })), "{write:?}");
    assert_eq!(flushes.load(Ordering::SeqCst), flushed_before);
    let read = store.highest_seq_nr("w-0").await;
    assert!(matches!(read, Err(Error::Poisoned { .. })), "{read:?}");
    // What a restart finds: nothing of the failed group.
    let reopened = Store::with_engine(same_engine).expect("reopen");
    assert_eq!(reopened.highest_seq_nr("w-0").await.expect("read"), 0);
}

/// A deletion behind a write whose apply failed, in one group, deletes
/// nothing: the store is poisoned from that failure on. Applied anyway, the
/// deletion could reach the disk (sled flushes in the background) while the
/// write before it, a snapshot say, never did: the events gone and nothing
/// in their place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_behind_a_failed_apply_deletes_nothing() {
    let engine = TestEngine::with_flush_delay(Duration::from_millis(300));
    let fail_next = engine.fail_next_apply.clone();
    let same_engine = engine.clone();
    let store = Store::with_engine(engine).expect("store");
    let events: Vec<_> = (1..=3).map(|seq| tck::event("p", seq)).collect();
    store
        .write(WriteBatch::new().events(events))
        .await
        .expect("a healthy write");

    // A write that keeps the writer busy in its slow flush, so that the two
    // requests after it are taken as one group, in order.
    let flushes = store.engine().expect("engine").flushes.clone();
    let flushed = flushes.load(Ordering::SeqCst);
    let busy = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(WriteBatch::new().event(tck::event("busy", 1)))
                .await
        })
    };
    while flushes.load(Ordering::SeqCst) == flushed {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    fail_next.store(true, Ordering::SeqCst);
    // Each is queued by its first poll, so the write is ahead of the delete.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut failing = store.write(WriteBatch::new().event(tck::event("q", 1)));
    assert!(failing.as_mut().poll(&mut cx).is_pending());
    let mut delete = store.delete_events_to("p", 3);
    assert!(delete.as_mut().poll(&mut cx).is_pending());
    busy.await
        .expect("busy")
        .expect("the write before the failure");
    let failed = failing.await;
    assert!(matches!(failed, Err(Error::Poisoned { .. })), "{failed:?}");
    let deleted = delete.await;
    assert!(
        matches!(deleted, Err(Error::Poisoned { .. })),
        "{deleted:?}"
    );

    // What a restart finds (the poisoned store itself no longer answers
    // reads).
    let reopened = Store::with_engine(same_engine).expect("reopen");
    let mut kept = Vec::new();
    replay(&reopened, "p", ReplayRange::all(), 8, |r| {
        kept.push(r.seq_nr);
        Ok(())
    })
    .await
    .expect("replay");
    assert_eq!(kept, vec![1, 2, 3], "a poisoned store deleted events");
}

async fn poisons<E: Engine>(engine: TestEngine<E>) {
    let fail = engine.fail_flush.clone();
    let store = Store::with_engine(engine).expect("store");
    store
        .write(WriteBatch::new().event(tck::event("p", 1)))
        .await
        .expect("a healthy write");
    assert!(store.poisoned().is_none());

    fail.store(true, Ordering::SeqCst);
    let failed = store
        .write(WriteBatch::new().event(tck::event("p", 2)))
        .await;
    assert!(matches!(failed, Err(Error::Poisoned { .. })), "{failed:?}");
    let reason = store.poisoned().expect("poisoned");
    assert!(reason.contains("disk on fire"), "{reason}");

    // The disk recovers, but the store must not pretend it did.
    fail.store(false, Ordering::SeqCst);
    let write = store
        .write(WriteBatch::new().event(tck::event("q", 1)))
        .await;
    assert!(matches!(write, Err(Error::Poisoned { .. })), "{write:?}");
    let delete = store.delete_events_to("p", 1).await;
    assert!(matches!(delete, Err(Error::Poisoned { .. })), "{delete:?}");
    let save = store.save_snapshot(snapshot(1)).await;
    assert!(matches!(save, Err(Error::Poisoned { .. })), "{save:?}");
    let delete_snapshots = store
        .delete_snapshots("p", SnapshotCriteria::latest())
        .await;
    assert!(
        matches!(delete_snapshots, Err(Error::Poisoned { .. })),
        "{delete_snapshots:?}"
    );

    // Reads fail too: the engine shows event 2, whose flush failed. A read
    // that answered it would hand out something a restart may not have.
    let highest = store.highest_seq_nr("p").await;
    assert!(
        matches!(highest, Err(Error::Poisoned { .. })),
        "{highest:?}"
    );
    let events = store.read_events("p", 1, 10, 10).await;
    assert!(matches!(events, Err(Error::Poisoned { .. })), "{events:?}");
}

/// A read that runs while a group is being flushed answers only once that
/// flush is done: it may have seen the group, and a failed flush would
/// take it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_during_a_flush_answers_once_it_is_durable() {
    let engine = TestEngine::with_flush_delay(Duration::from_millis(200));
    let (started, finished) = (engine.flushes.clone(), engine.flushes_done.clone());
    let store = Store::with_engine(engine).expect("store");
    store
        .write(WriteBatch::new().event(tck::event("q", 1)))
        .await
        .expect("a first write: the store is idle after it");
    let before = started.load(Ordering::SeqCst);
    let write = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(WriteBatch::new().event(tck::event("p", 1)))
                .await
        })
    };
    // The group is applied (the engine shows it) and its flush has begun.
    while started.load(Ordering::SeqCst) == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let highest = store.highest_seq_nr("p").await.expect("read");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        started.load(Ordering::SeqCst),
        "the read answered before the flush of what it saw ended"
    );
    assert_eq!(highest, 1);
    write.await.expect("writer").expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_to_many_ids_all_land() {
    let store = Arc::new(Store::with_engine(TestEngine::default()).expect("store"));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let pid = format!("id-{i}");
            for seq in 1..=20 {
                store
                    .write(WriteBatch::new().event(tck::event(&pid, seq)))
                    .await
                    .expect("write");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    for i in 0..50 {
        let pid = format!("id-{i}");
        let mut n = 0;
        replay(&*store, &pid, ReplayRange::all(), 7, |r| {
            n += 1;
            assert_eq!(r, tck::event(&pid, n));
            Ok(())
        })
        .await
        .expect("replay");
        assert_eq!(n, 20, "{pid}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_flushes() {
    shares_flushes(TestEngine::with_flush_delay(Duration::from_millis(20))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_flushes_on_durable_engines() {
    for kind in EngineKind::compiled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = DurableEngine::open(kind, dir.path(), None).expect("open");
        let mut engine = TestEngine::over(engine);
        // A real flush, made slow enough that the writes pile up behind it.
        engine.flush_delay = Duration::from_millis(20);
        shares_flushes(engine).await;
    }
}

async fn shares_flushes<E: Engine>(engine: TestEngine<E>) {
    let flushes = engine.flushes.clone();
    let store = Arc::new(Store::with_engine(engine).expect("store"));
    let writes = 200;
    let tasks: Vec<_> = (0..writes)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(WriteBatch::new().event(tck::event(&format!("g-{i}"), 1)))
                    .await
                    .expect("write");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let n = flushes.load(Ordering::SeqCst);
    assert!(
        n * 10 <= writes,
        "{writes} concurrent writes took {n} flushes: group commit is not grouping"
    );
}
