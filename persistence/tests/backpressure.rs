//! The writer's queue is bounded: while the engine cannot take writes (an
//! apply hangs), writers beyond the queue's capacity wait in `write`
//! instead of piling up in memory, and a write abandoned while it waits
//! for room is never written.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use courier_persistence::{
    Engine, EngineOp, Entry, Journal, MemoryEngine, Result, Store, StoreOptions, WriteBatch, tck,
};
use courier_test_support::eventually;

/// The memory engine, whose first apply once armed returns only when its
/// gate opens. (An apply, not a flush: the writer keeps applying the groups
/// that arrive while a flush is in flight, which is not memory it holds.)
struct GatedEngine {
    inner: Arc<MemoryEngine>,
    armed: Arc<AtomicBool>,
    gate: Mutex<Option<mpsc::Receiver<()>>>,
}

impl Engine for GatedEngine {
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
        if self.armed.load(Ordering::SeqCst) {
            let gate = self.gate.lock().expect("gate").take();
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
        }
        self.inner.apply(ops)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn blocking(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_wait_for_room_while_the_engine_is_stuck() {
    const WRITERS: usize = 20;
    let inner = Arc::new(MemoryEngine::new());
    let (open_gate, gate) = mpsc::channel();
    let armed = Arc::new(AtomicBool::new(false));
    let engine = GatedEngine {
        inner: Arc::clone(&inner),
        armed: Arc::clone(&armed),
        gate: Mutex::new(Some(gate)),
    };
    // Groups of one, so the queue holds two requests; the first write's
    // apply (after the store's own, at open) hangs.
    let store = Store::with_options(engine, StoreOptions::new().max_group(1)).expect("store");
    armed.store(true, Ordering::SeqCst);
    let started = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, started) = (store.clone(), Arc::clone(&started));
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                store
                    .write(WriteBatch::new().event(tck::event(&format!("w-{i}"), 1)))
                    .await
            })
        })
        .collect();
    eventually("every writer called write", Duration::from_secs(10), || {
        started.load(Ordering::SeqCst) == WRITERS
    })
    .await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    // Abandon every write, then let the engine go on.
    for writer in &writers {
        writer.abort();
    }
    for writer in writers {
        let _ = writer.await;
    }
    open_gate.send(()).expect("the flush waits for its gate");
    store.close().await.expect("close");
    let events = inner
        .raw_entries()
        .into_iter()
        .filter(|(k, _)| k.first() == Some(&0x01))
        .count();
    // One request taken by the writer (its apply hangs on the I/O thread)
    // and two in the queue: the other writers never got in, so their
    // abandoned writes are not there.
    assert!(
        events <= 3,
        "{events} of {WRITERS} abandoned writes were written: the queue is not bounded"
    );
}
