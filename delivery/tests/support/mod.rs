//! Helpers shared by this crate's test binaries.
#![allow(dead_code, reason = "each test binary uses part of these helpers")]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use courier::persistence::{EventRecord, Journal, SeqNr, WriteBatch};
use courier_test_support::Rng;

/// A journal that records the size of every write, fails writes on demand
/// (before they reach the inner journal: nothing is written), and, given a
/// seed, delays each write's answer by a random number of scheduler turns
/// after it landed (so writes land in the order they were made, as the
/// store applies them, but their callers learn of it in any order).
pub struct Recording {
    inner: Arc<dyn Journal>,
    /// While set, every write fails.
    pub fail: AtomicBool,
    /// With a seed: the probability, in percent, that a write fails.
    pub fail_percent: AtomicU64,
    rng: Mutex<Option<Rng>>,
    writes: Mutex<Vec<usize>>,
    /// While set, reads of outbox entries wait once read (a resend is held
    /// between reading its message back and sending it).
    pub hold_outbox_reads: AtomicBool,
    /// Reads waiting on `hold_outbox_reads`.
    pub held_reads: AtomicU64,
    /// While set, writes wait before they reach the inner journal (a write
    /// in flight, not yet landed).
    pub hold_writes: AtomicBool,
    /// Writes waiting on `hold_writes`.
    pub held_writes: AtomicU64,
}

impl Recording {
    /// Wraps `inner`; with a seed, writes fail at random (see
    /// `fail_percent`) and answer after random scheduler turns.
    pub fn new(inner: Arc<dyn Journal>, seed: Option<u64>) -> Self {
        Self {
            inner,
            fail: AtomicBool::new(false),
            fail_percent: AtomicU64::new(0),
            rng: Mutex::new(seed.map(Rng::new)),
            writes: Mutex::new(Vec::new()),
            hold_outbox_reads: AtomicBool::new(false),
            held_reads: AtomicU64::new(0),
            hold_writes: AtomicBool::new(false),
            held_writes: AtomicU64::new(0),
        }
    }

    /// The number of records in each write so far, in order.
    pub fn writes(&self) -> Vec<usize> {
        self.writes.lock().expect("lock").clone()
    }

    fn roll(&self, n: u64) -> u64 {
        self.rng
            .lock()
            .expect("lock")
            .as_mut()
            .map_or(0, |rng| rng.below(n))
    }
}

#[async_trait]
impl Journal for Recording {
    async fn write(&self, batch: WriteBatch) -> courier::persistence::Result<()> {
        self.writes
            .lock()
            .expect("lock")
            .push(batch.kv_writes().len());
        if self.hold_writes.load(Ordering::SeqCst) {
            self.held_writes.fetch_add(1, Ordering::SeqCst);
            while self.hold_writes.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let percent = self.fail_percent.load(Ordering::Relaxed);
        if self.fail.load(Ordering::Relaxed) || (percent > 0 && self.roll(100) < percent) {
            // A failure takes a moment too: other writes start meanwhile.
            tokio::task::yield_now().await;
            return Err(courier::persistence::Error::Storage(
                "injected write failure".into(),
            ));
        }
        let result = self.inner.write(batch).await;
        for _ in 0..self.roll(4) {
            tokio::task::yield_now().await;
        }
        result
    }

    fn store_identity(&self) -> Option<usize> {
        self.inner.store_identity()
    }

    async fn read_events(
        &self,
        persistence_id: &str,
        from: SeqNr,
        to: SeqNr,
        limit: usize,
    ) -> courier::persistence::Result<Vec<EventRecord>> {
        self.inner
            .read_events(persistence_id, from, to, limit)
            .await
    }

    async fn highest_seq_nr(&self, persistence_id: &str) -> courier::persistence::Result<SeqNr> {
        self.inner.highest_seq_nr(persistence_id).await
    }

    async fn deleted_to(&self, persistence_id: &str) -> courier::persistence::Result<SeqNr> {
        self.inner.deleted_to(persistence_id).await
    }

    async fn delete_events_to(
        &self,
        persistence_id: &str,
        to: SeqNr,
    ) -> courier::persistence::Result<()> {
        self.inner.delete_events_to(persistence_id, to).await
    }

    async fn kv_get(
        &self,
        namespace: &str,
        key: &[u8],
    ) -> courier::persistence::Result<Option<Vec<u8>>> {
        let read = self.inner.kv_get(namespace, key).await;
        if namespace.starts_with("courier.outbox/") && self.hold_outbox_reads.load(Ordering::SeqCst)
        {
            self.held_reads.fetch_add(1, Ordering::SeqCst);
            while self.hold_outbox_reads.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        read
    }

    async fn kv_scan(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> courier::persistence::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.kv_scan(namespace, after, limit).await
    }
}
