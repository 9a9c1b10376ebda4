//! Storage engines: ordered byte-keyed maps with atomic batches and flush.
//!
//! A [`Store`](crate::Store) keeps its whole key space in one engine, so one
//! engine batch can commit events, journal metadata, snapshots and key–value
//! records together. Two engines ship: [`MemoryEngine`] for tests and
//! examples, and [`SledEngine`] (sled 0.34), the embedded durable default.
//! An engine of your own (or one that injects faults, for tests) plugs in
//! through [`Store::with_engine`](crate::Store::with_engine).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use courier_core::sync;

use crate::error::Result;

/// One change in an atomic engine batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineOp {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// What [`Engine::visit`] calls with each key and value.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// An ordered byte-keyed map with atomic batches.
///
/// Every method is synchronous and may block on I/O. A store never calls
/// one on a tokio worker when [`blocking`](Engine::blocking) says it may
/// block: `apply` and `flush` run on the store's own I/O thread (one at a
/// time, in the order the writer issues them), reads on `spawn_blocking`.
/// Durability comes only from [`flush`](Engine::flush).
pub trait Engine: Send + Sync + 'static {
    /// The value at `key`.
    ///
    /// # Errors
    ///
    /// The engine's I/O errors.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` entries with `start <= key < end` (`end = None`: no upper
    /// bound), ascending, or descending from the top when `reverse`.
    ///
    /// # Errors
    ///
    /// The engine's I/O errors.
    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>>;

    /// Calls `visit` with each entry [`scan`](Engine::scan) would return, in
    /// the same order, without collecting them; `visit` returning an error
    /// stops the scan. Engines override it to avoid copying entries.
    ///
    /// # Errors
    ///
    /// The engine's I/O errors, or `visit`'s.
    fn visit(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        for (k, v) in self.scan(start, end, limit, false)? {
            visit(&k, &v)?;
        }
        Ok(())
    }

    /// Applies all of `ops` atomically: after a crash, either all or none are
    /// there (once flushed).
    ///
    /// # Errors
    ///
    /// The engine's I/O errors; the store treats them as fatal.
    fn apply(&self, ops: Vec<EngineOp>) -> Result<()>;

    /// Makes every batch applied before the call durable; blocks until it is.
    ///
    /// # Errors
    ///
    /// The engine's I/O errors; the store treats them as fatal.
    fn flush(&self) -> Result<()>;

    /// Whether the engine's calls may block on disk (and so run off the
    /// runtime: writes and flushes on the store's I/O thread, reads on
    /// `spawn_blocking`).
    fn blocking(&self) -> bool;

    /// The engine's name, the `engine` label of the store's metrics
    /// (`"sled"`, `"fjall"`, `"memory"`): a constant per engine type, so the
    /// label stays bounded. The default is `"custom"`.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Releases the engine: its files, locks and threads. Called once, off
    /// the runtime, by [`Store::close`](crate::Store::close) (which bounds
    /// how long it waits for it); may block. The default drops the engine.
    ///
    /// # Errors
    ///
    /// The engine's errors while letting go.
    fn close(self) -> Result<()>
    where
        Self: Sized,
    {
        drop(self);
        Ok(())
    }
}

/// An in-memory engine: nothing survives the process.
#[derive(Default)]
pub struct MemoryEngine {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overwrites the raw stored bytes at `key`, bypassing all checks. For
    /// tests that corrupt storage on purpose.
    pub fn put_raw(&self, key: &[u8], value: &[u8]) {
        self.lock().insert(key.to_vec(), value.to_vec());
    }

    /// Every raw entry, in key order. For tests.
    pub fn raw_entries(&self) -> Vec<Entry> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        sync::lock(&self.map)
    }
}

/// A shared engine: several stores over time (a process's restarts in a
/// simulation, say) can use one engine and see the same data.
impl<E: Engine> Engine for std::sync::Arc<E> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>> {
        (**self).scan(start, end, limit, reverse)
    }

    fn visit(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        (**self).visit(start, end, limit, visit)
    }

    fn apply(&self, ops: Vec<EngineOp>) -> Result<()> {
        (**self).apply(ops)
    }

    fn flush(&self) -> Result<()> {
        (**self).flush()
    }

    fn blocking(&self) -> bool {
        (**self).blocking()
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

impl Engine for MemoryEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().get(key).cloned())
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>> {
        let map = self.lock();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let range = map.range::<[u8], _>((Bound::Included(start), upper));
        let pick = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(pick).collect()
        } else {
            range.take(limit).map(pick).collect()
        })
    }

    fn visit(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let map = self.lock();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        for (k, v) in map
            .range::<[u8], _>((Bound::Included(start), upper))
            .take(limit)
        {
            visit(k, v)?;
        }
        Ok(())
    }

    fn apply(&self, ops: Vec<EngineOp>) -> Result<()> {
        let mut map = self.lock();
        for op in ops {
            match op {
                EngineOp::Put(k, v) => {
                    map.insert(k, v);
                }
                EngineOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn blocking(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
