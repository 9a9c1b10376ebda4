//! Replay streams in pages: no engine read ever returns more than one page,
//! however long the history, so memory during recovery stays flat.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use courier_persistence::{
    Engine, EngineOp, Entry, EventRecord, Journal, Manifest, MemoryEngine, ReplayRange, Result,
    Store, WriteBatch, replay,
};

/// Remembers the largest scan it served.
#[derive(Default)]
struct Watching {
    inner: MemoryEngine,
    largest_scan: Arc<AtomicUsize>,
}

#[async_trait]
impl Engine for Watching {
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
        let out = self.inner.scan(start, end, limit, reverse)?;
        self.largest_scan.fetch_max(out.len(), Ordering::SeqCst);
        Ok(out)
    }
    fn apply(&self, ops: Vec<EngineOp>) -> Result<()> {
        self.inner.apply(ops)
    }
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn blocking(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn replay_reads_one_page_at_a_time() {
    let largest = Arc::new(AtomicUsize::new(0));
    let store = Store::with_engine(Watching {
        inner: MemoryEngine::new(),
        largest_scan: largest.clone(),
    })
    .expect("store");
    let writer_id = uuid::Uuid::now_v7();
    for chunk in 0..10u64 {
        let events = (1..=1000).map(|i| EventRecord {
            persistence_id: "long".into(),
            seq_nr: chunk * 1000 + i,
            manifest: Manifest::new("e", 1),
            payload: vec![1; 16],
            writer_id,
            timestamp: 0,
        });
        store
            .write(WriteBatch::new().events(events))
            .await
            .expect("write");
    }
    largest.store(0, Ordering::SeqCst);
    let mut seen = 0u64;
    let stats = replay(&store, "long", ReplayRange::all(), 100, |r| {
        seen += 1;
        assert_eq!(r.seq_nr, seen);
        Ok(())
    })
    .await
    .expect("replay");
    assert_eq!(stats.events, 10_000);
    assert!(
        largest.load(Ordering::SeqCst) <= 100,
        "a read returned {} entries for a page of 100",
        largest.load(Ordering::SeqCst)
    );
}
