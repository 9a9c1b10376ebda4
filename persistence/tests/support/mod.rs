//! Helpers shared by the persistence integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use courier_persistence::{Engine, EngineOp, Entry, Error, MemoryEngine, Result};

/// An engine (the memory engine unless said otherwise) with knobs:
/// applies and flushes can fail, flushes can take a while, and flushes and
/// the largest scan are counted.
pub struct TestEngine<E = MemoryEngine> {
    pub inner: Arc<E>,
    pub fail_flush: Arc<AtomicBool>,
    pub fail_apply: Arc<AtomicBool>,
    /// Fails the next apply only.
    pub fail_next_apply: Arc<AtomicBool>,
    pub flush_delay: Duration,
    pub flushes: Arc<AtomicUsize>,
    /// Flushes that returned (`flushes` counts those begun).
    pub flushes_done: Arc<AtomicUsize>,
    pub largest_scan: Arc<AtomicUsize>,
}

impl<E> Clone for TestEngine<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            fail_flush: Arc::clone(&self.fail_flush),
            fail_apply: Arc::clone(&self.fail_apply),
            fail_next_apply: Arc::clone(&self.fail_next_apply),
            flush_delay: self.flush_delay,
            flushes: Arc::clone(&self.flushes),
            flushes_done: Arc::clone(&self.flushes_done),
            largest_scan: Arc::clone(&self.largest_scan),
        }
    }
}

impl Default for TestEngine {
    fn default() -> Self {
        Self::over(MemoryEngine::new())
    }
}

impl TestEngine {
    pub fn with_flush_delay(delay: Duration) -> Self {
        Self {
            flush_delay: delay,
            ..Self::default()
        }
    }
}

impl<E: Engine> TestEngine<E> {
    /// Knobs around `engine` (a real disk engine, say).
    pub fn over(engine: E) -> Self {
        Self {
            inner: Arc::new(engine),
            fail_flush: Arc::default(),
            fail_apply: Arc::default(),
            fail_next_apply: Arc::default(),
            flush_delay: Duration::ZERO,
            flushes: Arc::default(),
            flushes_done: Arc::default(),
            largest_scan: Arc::default(),
        }
    }
}

impl<E: Engine> Engine for TestEngine<E> {
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
        if self.fail_apply.load(Ordering::SeqCst)
            || self.fail_next_apply.swap(false, Ordering::SeqCst)
        {
            return Err(Error::Storage("the disk refused the batch".into()));
        }
        self.inner.apply(ops)
    }

    fn flush(&self) -> Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        if !self.flush_delay.is_zero() {
            std::thread::sleep(self.flush_delay);
        }
        let flushed = match self.fail_flush.load(Ordering::SeqCst) {
            true => Err(Error::Storage("disk on fire".into())),
            false => self.inner.flush(),
        };
        self.flushes_done.fetch_add(1, Ordering::SeqCst);
        flushed
    }

    /// A slow flush is a disk: it must run off the runtime.
    fn blocking(&self) -> bool {
        self.inner.blocking() || !self.flush_delay.is_zero()
    }
}
