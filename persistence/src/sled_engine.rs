//! [`SledEngine`]: the embedded durable default (feature `sled`).

use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use crate::engine::{Engine, EngineOp, Entry, Visitor};
use crate::error::{Error, Result};

/// The sled 0.34 engine: one `sled::Db`, its default tree, atomic
/// `apply_batch`, and `flush` for durability.
pub struct SledEngine {
    db: sled::Db,
    path: PathBuf,
}

impl SledEngine {
    /// Opens (or creates) the database in `path`.
    ///
    /// # Errors
    ///
    /// [`Error::EngineCorrupt`](crate::Error::EngineCorrupt) naming the
    /// directory if sled finds its files damaged (or panics recovering
    /// them, which sled 0.34 does on some truncated logs); sled's error if the
    /// directory cannot be opened (locked by another process, unreadable).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), sled::Config::new())
    }

    /// [`open`](Self::open) with a page cache of `bytes` instead of sled's
    /// 1 GiB default (what bounds the memory a long replay takes).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn with_cache_capacity(path: impl AsRef<Path>, bytes: u64) -> Result<Self> {
        Self::open_with(path.as_ref(), sled::Config::new().cache_capacity(bytes))
    }

    fn open_with(path: &Path, config: sled::Config) -> Result<Self> {
        let path = path.to_owned();
        // sled 0.34 indexes out of bounds while recovering some truncated
        // logs: a damaged store must be a typed error, not a crash.
        let opened = std::panic::catch_unwind(AssertUnwindSafe(|| config.path(&path).open()));
        let db = match opened {
            Ok(result) => result.map_err(|e| Error::from_sled(&path, e))?,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                let detail = format!("sled panicked while recovering its log: {why}");
                tracing::error!(path = %path.display(), %detail, "the storage engine reports corruption");
                return Err(Error::EngineCorrupt { path, detail });
            }
        };
        Ok(Self { db, path })
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: sled::Error) -> Error {
        Error::from_sled(&self.path, e)
    }

    /// The underlying database. Writing to it directly bypasses every check
    /// the store makes; tests use it to corrupt records on purpose.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }
}

impl Engine for SledEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>> {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let range = self.db.range::<&[u8], _>((Bound::Included(start), upper));
        let mut out = Vec::new();
        let mut push = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<bool> {
            let (k, v) = item.map_err(|e| self.err(e))?;
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < limit)
        };
        if limit > 0 {
            if reverse {
                for item in range.rev() {
                    if !push(item)? {
                        break;
                    }
                }
            } else {
                for item in range {
                    if !push(item)? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn visit(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        for item in self
            .db
            .range::<&[u8], _>((Bound::Included(start), upper))
            .take(limit)
        {
            let (k, v) = item.map_err(|e| self.err(e))?;
            visit(&k, &v)?;
        }
        Ok(())
    }

    fn apply(&self, ops: Vec<EngineOp>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                EngineOp::Put(k, v) => batch.insert(k, v),
                EngineOp::Delete(k) => batch.remove(k),
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// sled's blocking `flush`, never `flush_async`: called concurrently
    /// from several tasks, sled 0.34.7's `flush_async` can hang for good.
    /// On Linux sled writes its log with `pwrite` and `sync_file_range`, not
    /// `fdatasync` (see docs/persistence.md for what that means on power
    /// loss).
    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    fn blocking(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "sled"
    }

    /// Flushes, drops the database, then waits until sled has let go of
    /// its file lock, so that the directory can be opened again as soon as
    /// this returns. sled 0.34 releases the lock only when the last handle
    /// to its files goes, and some go in its deferred (epoch-based) cleanup
    /// after `Db`'s drop has returned: opening the directory at once failed
    /// now and then with `WouldBlock` before this wait. After an I/O error
    /// sled's drop may never return (its flush can wait for a write that
    /// failed): the store calls this on a thread of its own and gives up
    /// waiting after a while.
    fn close(self) -> Result<()> {
        let flushed = self.db.flush().map(drop).map_err(|e| self.err(e));
        drop(self.db);
        flushed?;
        wait_for_lock_release(&self.path.join("db"), RELEASE_WITHIN)
    }
}

/// How long [`SledEngine::close`] waits for sled to let go of its lock.
const RELEASE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until the exclusive lock on `file` can be taken (and releases it
/// at once): then no handle of sled's holds it any more. A lock is held per
/// open file, so this process's own sled handles block it as another
/// process's would.
fn wait_for_lock_release(file: &Path, within: std::time::Duration) -> Result<()> {
    use fs2::FileExt;
    let Ok(handle) = std::fs::OpenOptions::new().read(true).open(file) else {
        // No lock file (the directory was removed): nothing holds it.
        return Ok(());
    };
    let deadline = std::time::Instant::now() + within;
    let mut pause = std::time::Duration::from_micros(100);
    loop {
        match FileExt::try_lock_exclusive(&handle) {
            Ok(()) => {
                let _ = FileExt::unlock(&handle);
                return Ok(());
            }
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(Error::Storage(Box::new(std::io::Error::other(format!(
                    "sled still holds its lock on {} after {within:?}: {e}",
                    file.display()
                )))));
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(10));
            }
        }
    }
}
