//! Closing a store: the engine (and sled's or fjall's file lock) is
//! released, so the same directory opens again in this process, also after the disk filled
//! up and poisoned the store; an engine that will not let go makes `close`
//! fail in bounded time instead of hanging; dropping a store never drops a
//! blocking engine on a runtime worker.

#![cfg(all(feature = "sled", feature = "fjall"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;

use courier_persistence::{
    DurableStore, Engine, EngineKind, EngineOp, Entry, Error, Journal, MemoryEngine, Result, Store,
    StoreOptions, WriteBatch, tck,
};
use courier_test_support::eventually;
use support::TestEngine;

fn open(kind: EngineKind, dir: &Path) -> DurableStore {
    DurableStore::open_engine(kind, dir, None, StoreOptions::new()).expect("open")
}

#[tokio::test]
async fn a_closed_store_opens_again_at_once_and_its_clones_are_closed() {
    for kind in EngineKind::compiled() {
        closed_store_opens_again(kind).await;
    }
}

async fn closed_store_opens_again(kind: EngineKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(kind, dir.path());
    let clone = store.clone();
    store
        .write(WriteBatch::new().event(tck::event("p", 1)))
        .await
        .expect("write");
    store.close().await.expect("close");
    store.close().await.expect("closing twice does nothing");
    let write = clone
        .write(WriteBatch::new().event(tck::event("p", 2)))
        .await;
    assert!(matches!(write, Err(Error::Closed)), "{write:?}");
    let read = clone.highest_seq_nr("p").await;
    assert!(matches!(read, Err(Error::Closed)), "{read:?}");

    // No retry: the lock is free when close returns.
    let reopened = open(kind, dir.path());
    assert_eq!(reopened.highest_seq_nr("p").await.expect("highest"), 1);
    reopened.close().await.expect("close");
}

#[tokio::test]
async fn writes_sent_before_close_are_flushed_and_answered() {
    for kind in EngineKind::compiled() {
        writes_before_close_are_answered(kind).await;
    }
}

async fn writes_before_close_are_answered(kind: EngineKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(kind, dir.path());
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(WriteBatch::new().event(tck::event(&format!("w-{i}"), 1)))
                    .await
            })
        })
        .collect();
    // Let every write reach the writer's queue before the close does.
    tokio::task::yield_now().await;
    let mut outcomes = Vec::new();
    store.close().await.expect("close");
    for write in writes {
        outcomes.push(write.await.expect("task"));
    }
    let acknowledged: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(()) | Err(Error::Closed)),
            "{outcome:?}"
        );
    }
    let reopened = open(kind, dir.path());
    for i in acknowledged {
        let highest = reopened
            .highest_seq_nr(&format!("w-{i}"))
            .await
            .expect("highest");
        assert_eq!(highest, 1, "acknowledged write w-{i} is missing");
    }
    reopened.close().await.expect("close");
}

#[tokio::test]
async fn a_poisoned_store_closes_and_the_engine_opens_again() {
    let engine = TestEngine::default();
    let fail = engine.fail_flush.clone();
    let store = Store::with_engine(engine.clone()).expect("store");
    store
        .write(WriteBatch::new().event(tck::event("p", 1)))
        .await
        .expect("write");
    fail.store(true, Ordering::SeqCst);
    let failed = store
        .write(WriteBatch::new().event(tck::event("p", 2)))
        .await;
    assert!(matches!(failed, Err(Error::Poisoned { .. })), "{failed:?}");
    store.close().await.expect("a poisoned store closes");

    fail.store(false, Ordering::SeqCst);
    let reopened = Store::with_engine(engine).expect("reopen");
    assert!(reopened.poisoned().is_none());
    reopened
        .write(WriteBatch::new().event(tck::event("q", 1)))
        .await
        .expect("writes work again");
    reopened.close().await.expect("close");
}

/// An engine whose `close` (sled's drop, after an I/O error) or flush never
/// returns until the test lets it.
#[derive(Default)]
struct StuckEngine {
    inner: Arc<MemoryEngine>,
    stuck_flush: bool,
    gate: Arc<Mutex<Option<std::sync::mpsc::Receiver<()>>>>,
    /// With `stuck_flush`: a flush returns once this gate opens (or never,
    /// without one).
    flush_gate: Arc<Mutex<Option<std::sync::mpsc::Receiver<()>>>>,
    _dropped_on: DropProbe,
}

/// Notes the name of the thread it is dropped on.
#[derive(Default)]
struct DropProbe(Arc<Mutex<Option<String>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        *self.0.lock().expect("lock") = Some(name);
    }
}

impl Engine for StuckEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>> {
        self.inner.scan(start, end, limit, reverse)
    }

    fn apply(&self, ops: Vec<EngineOp>) -> Result<()> {
        self.inner.apply(ops)
    }

    fn flush(&self) -> Result<()> {
        if self.stuck_flush {
            let gate = self.flush_gate.lock().expect("gate").take();
            match gate {
                Some(gate) => {
                    let _ = gate.recv();
                }
                // Never returns, as sled's flush after an I/O error.
                None => loop {
                    std::thread::park();
                },
            }
        }
        Ok(())
    }

    fn blocking(&self) -> bool {
        true
    }

    fn close(self) -> Result<()> {
        let gate = self.gate.lock().expect("gate").take();
        if let Some(gate) = gate {
            let _ = gate.recv();
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_engine_that_does_not_let_go_fails_close_in_bounded_time() {
    let (release, gate) = std::sync::mpsc::channel();
    let engine = StuckEngine {
        gate: Arc::new(Mutex::new(Some(gate))),
        ..StuckEngine::default()
    };
    let store = Store::with_engine(engine).expect("store");
    let closed = store.close_within(Duration::from_millis(200)).await;
    assert!(
        matches!(closed, Err(Error::CloseFailed { ref reason, .. }) if reason.contains("let go")),
        "{closed:?}"
    );
    let message = closed.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("restart the process"), "{message}");
    let _ = release.send(());
}

#[tokio::test]
async fn a_flush_that_never_returns_fails_close_in_bounded_time() {
    let engine = StuckEngine {
        stuck_flush: true,
        ..StuckEngine::default()
    };
    let store = Store::with_engine(engine).expect("store");
    let writer = store.clone();
    let write = tokio::spawn(async move {
        writer
            .write(WriteBatch::new().event(tck::event("p", 1)))
            .await
    });
    tokio::task::yield_now().await;
    let closed = store.close_within(Duration::from_millis(200)).await;
    assert!(
        matches!(closed, Err(Error::CloseFailed { ref reason, .. }) if reason.contains("writer")),
        "{closed:?}"
    );
    write.abort();
}

#[tokio::test]
async fn dropping_a_store_releases_a_blocking_engine_off_the_runtime() {
    let dropped_on = Arc::new(Mutex::new(None));
    let engine = StuckEngine {
        _dropped_on: DropProbe(Arc::clone(&dropped_on)),
        ..StuckEngine::default()
    };
    let store = Store::with_engine(engine).expect("store");
    store
        .write(WriteBatch::new().event(tck::event("p", 1)))
        .await
        .expect("write");
    drop(store);
    // The store's clones of the engine are dropped by the writer task and
    // by the last handle; the last one takes the engine with it.
    eventually("the engine is dropped", TEN_SECONDS, || {
        dropped_on.lock().expect("lock").is_some()
    })
    .await;
    let name = dropped_on.lock().expect("lock").clone().expect("dropped");
    assert_eq!(name, "courier-store-release");
}

const TEN_SECONDS: Duration = Duration::from_secs(10);

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> std::result::Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount exited with {status}"));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_poisoned_by_a_full_disk_reopens_after_the_disk_is_fixed() {
    for kind in EngineKind::compiled() {
        poisoned_by_a_full_disk(kind).await;
    }
}

async fn poisoned_by_a_full_disk(kind: EngineKind) {
    let tmpfs = match Tmpfs::mount("2m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            println!(
                "skipped: cannot mount a tmpfs ({reason}); the injected-failure tests cover close"
            );
            return;
        }
    };
    let dir: PathBuf = tmpfs.path().join("store");
    let filler = tmpfs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1_200_000]).expect("filler");
    let store = open(kind, &dir);
    let mut acknowledged = 0;
    let poisoned = loop {
        let mut event = tck::event("p", acknowledged + 1);
        event.payload = vec![7; 1000];
        match store.write(WriteBatch::new().event(event)).await {
            Ok(()) => acknowledged += 1,
            Err(e) => break e,
        }
        assert!(
            acknowledged < 10_000,
            "{kind}: the 2 MiB disk never filled up"
        );
    };
    assert!(
        matches!(poisoned, Error::Poisoned { .. }),
        "{kind}: {poisoned:?}"
    );
    let closed = store.close().await;
    std::fs::remove_file(&filler).expect("free the disk");
    match closed {
        Ok(()) => {
            let reopened = open(kind, &dir);
            assert_eq!(
                reopened.highest_seq_nr("p").await.expect("highest"),
                acknowledged
            );
            reopened
                .write(WriteBatch::new().event(tck::event("p", acknowledged + 1)))
                .await
                .expect("writes work again");
            reopened.close().await.expect("close");
        }
        // sled may not let go after an I/O error: then close must say so.
        Err(Error::CloseFailed { reason, .. }) => {
            println!("{kind}: close failed as documented: {reason}")
        }
        Err(e) => panic!("{kind}: close: {e}"),
    }
}

#[test]
fn runtime_shutdown_with_a_stuck_flush_releases_the_engine_off_the_runtime() {
    let dropped_on = Arc::new(Mutex::new(None));
    let (unstick, flush_gate) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let engine = StuckEngine {
            stuck_flush: true,
            flush_gate: Arc::new(Mutex::new(Some(flush_gate))),
            _dropped_on: DropProbe(Arc::clone(&dropped_on)),
            ..StuckEngine::default()
        };
        // The store's first flush (of its new epoch) never returns.
        let store = Store::with_engine(engine).expect("store");
        let weak = Arc::downgrade(&store.engine().expect("open"));
        // The store and the writer's commit (lent to the I/O thread, stuck
        // in its flush) hold the engine ...
        eventually("two handles left", TEN_SECONDS, || weak.strong_count() == 2).await;
        drop(store);
        // ... and then only the commit.
        eventually("one handle left", TEN_SECONDS, || weak.strong_count() == 1).await;
    });
    // Shutting the runtime down does not wait for the stuck flush (it runs
    // on the store's I/O thread, not on `spawn_blocking`) and drops the
    // writer task mid-commit; when the flush finally returns, the last
    // handle goes with the commit's result, which nobody awaits any more:
    // it must be released neither here nor on the I/O thread.
    drop(runtime);
    assert!(
        dropped_on.lock().expect("lock").is_none(),
        "the flush still holds the engine"
    );
    unstick.send(()).expect("the flush waits for its gate");
    let name = {
        let mut name = None;
        for _ in 0..2000 {
            name = dropped_on.lock().expect("lock").clone();
            if name.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        name.expect("the engine was dropped")
    };
    assert_eq!(name, "courier-store-release");
}
