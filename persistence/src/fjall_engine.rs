//! [`FjallEngine`]: the second embedded engine (feature `fjall`).
//!
//! fjall 3 is an LSM tree with a write-ahead journal. Every engine batch is
//! one fjall batch (atomic: fjall's recovery replays a batch whole or drops
//! it); the journal is written with `manual_journal_persist`, so a batch
//! reaches the journal file only when the store flushes, and
//! [`flush`](Engine::flush) is `persist(PersistMode::SyncData)`: the
//! journal's buffer written out, then `fdatasync`. That is a real flush to
//! stable storage, unlike sled 0.34's `sync_file_range` (see
//! docs/persistence.md).

use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::engine::{Engine, EngineOp, Entry, Visitor};
use crate::error::{Error, Result};

/// The name of the one keyspace courier keeps everything in.
const KEYSPACE: &str = "courier";

/// The fjall 3 engine: one `fjall::Database`, one keyspace, atomic batches,
/// and `persist(SyncData)` (`fdatasync` of the journal) for durability.
pub struct FjallEngine {
    db: Database,
    keyspace: Keyspace,
    path: PathBuf,
}

impl FjallEngine {
    /// Opens (or creates) the database in `path`, with fjall's default
    /// block cache (32 MiB).
    ///
    /// # Errors
    ///
    /// [`Error::EngineCorrupt`] naming the directory if fjall finds its files
    /// damaged (a journal batch that fails its checksum, a table that fails
    /// its own) or panics recovering them; fjall's error if the directory
    /// cannot be opened (locked by another process, unreadable).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_cache(path.as_ref(), None)
    }

    /// [`open`](Self::open) with a block cache of `bytes` (what bounds the
    /// memory a long replay takes).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn with_cache_capacity(path: impl AsRef<Path>, bytes: u64) -> Result<Self> {
        Self::open_with_cache(path.as_ref(), Some(bytes))
    }

    fn open_with_cache(path: &Path, cache: Option<u64>) -> Result<Self> {
        let path = path.to_owned();
        let opened = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut builder = Database::builder(&path).manual_journal_persist(true);
            if let Some(bytes) = cache {
                builder = builder.cache_size(bytes);
            }
            let db = builder.open()?;
            let keyspace = db.keyspace(KEYSPACE, KeyspaceCreateOptions::default)?;
            Ok::<_, fjall::Error>((db, keyspace))
        }));
        let (db, keyspace) = match opened {
            Ok(result) => result.map_err(|e| Error::from_fjall(&path, e))?,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                let detail = format!("fjall panicked while recovering: {why}");
                tracing::error!(path = %path.display(), %detail, "the storage engine reports corruption");
                return Err(Error::EngineCorrupt { path, detail });
            }
        };
        Ok(Self { db, keyspace, path })
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keyspace that holds every record. Writing to it directly
    /// bypasses every check the store makes; tests use it to corrupt
    /// records on purpose.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    fn err(&self, e: fjall::Error) -> Error {
        Error::from_fjall(&self.path, e)
    }

    fn range<'a>(&self, start: &'a [u8], end: Option<&'a [u8]>) -> fjall::Iter {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.keyspace
            .range::<&[u8], _>((Bound::Included(start), upper))
    }
}

impl Engine for FjallEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .keyspace
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
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let range = self.range(start, end);
        let mut push = |guard: fjall::Guard| -> Result<bool> {
            let (k, v) = guard.into_inner().map_err(|e| self.err(e))?;
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < limit)
        };
        if reverse {
            for guard in range.rev() {
                if !push(guard)? {
                    break;
                }
            }
        } else {
            for guard in range {
                if !push(guard)? {
                    break;
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
        for guard in self.range(start, end).take(limit) {
            let (k, v) = guard.into_inner().map_err(|e| self.err(e))?;
            visit(&k, &v)?;
        }
        Ok(())
    }

    fn apply(&self, ops: Vec<EngineOp>) -> Result<()> {
        let mut batch = self.db.batch();
        for op in ops {
            match op {
                EngineOp::Put(k, v) => batch.insert(&self.keyspace, k, v),
                EngineOp::Delete(k) => batch.remove(&self.keyspace, k),
            }
        }
        batch.commit().map_err(|e| self.err(e))
    }

    /// `persist(PersistMode::SyncData)`: the journal's buffer is written to
    /// the file and `fdatasync`ed. fjall poisons itself when that fails, as
    /// the store does.
    fn flush(&self) -> Result<()> {
        self.db
            .persist(PersistMode::SyncData)
            .map_err(|e| self.err(e))
    }

    fn blocking(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "fjall"
    }

    /// Persists with `SyncAll`, then drops the database, which stops
    /// fjall's background threads and releases its lock file.
    fn close(self) -> Result<()> {
        let persisted = self
            .db
            .persist(PersistMode::SyncAll)
            .map_err(|e| Error::from_fjall(&self.path, e));
        drop(self.keyspace);
        drop(self.db);
        persisted
    }
}
