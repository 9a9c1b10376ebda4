//! Opening the embedded durable stores: sled, fjall, or either chosen at
//! run time. Each keeps its engine's files and its commit record
//! (`courier.commit`) in one directory.

use std::path::Path;

use super::{Store, StoreOptions};
use crate::commit_file::COMMIT_FILE;
use crate::durable::{DurableEngine, EngineKind};
use crate::engine::Engine;
use crate::error::Result;
#[cfg(feature = "fjall")]
use crate::fjall_engine::FjallEngine;
#[cfg(feature = "sled")]
use crate::sled_engine::SledEngine;

/// A store over `engine`, opened in `dir`, its commit record beside it.
fn in_dir<E: Engine>(engine: E, dir: &Path, options: StoreOptions) -> Result<Store<E>> {
    Store::with_options(engine, options.commit_file(dir.join(COMMIT_FILE)))
}

#[cfg(feature = "sled")]
impl Store<SledEngine> {
    /// Opens (or creates) a sled store in directory `path`, with its commit
    /// record in `path/courier.commit`. Must be called within a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`Error::RolledBack`](crate::Error::RolledBack) if sled came back
    /// with fewer commits than the store acknowledged;
    /// [`Error::CommitRecord`](crate::Error::CommitRecord) if the commit
    /// record is missing while the database has commits, or unreadable;
    /// [`Error::EngineCorrupt`](crate::Error::EngineCorrupt) if sled finds
    /// its files damaged; sled's error if the directory cannot be opened;
    /// [`Error::Invalid`](crate::Error::Invalid) outside a tokio runtime.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_sled(path.as_ref(), StoreOptions::new())
    }

    /// [`open`](Self::open) with `max_group` as the most writes that share
    /// one flush (default 4096; values below 1 count as 1).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_max_group(path: impl AsRef<Path>, max_group: usize) -> Result<Self> {
        Self::open_sled(path.as_ref(), StoreOptions::new().max_group(max_group))
    }

    /// Opens the sled store in `path` even if its engine lost acknowledged
    /// writes or its commit record is gone: logs at ERROR what was lost,
    /// rewrites the commit record from what the engine holds, and starts a
    /// new store epoch (see [`store_epoch`](crate::store_epoch)), so that
    /// layers above can tell the history before the loss from the history
    /// after it. Use it after [`Error::RolledBack`](crate::Error::RolledBack)
    /// or [`Error::CommitRecord`](crate::Error::CommitRecord) once you
    /// decided not to restore a backup, and after restoring a backup (which
    /// is a rollback the store cannot see).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), except the two it accepts.
    pub fn open_accepting_loss(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_sled(path.as_ref(), StoreOptions::new().accept_loss(true))
    }

    fn open_sled(path: &Path, options: StoreOptions) -> Result<Self> {
        in_dir(SledEngine::open(path)?, path, options)
    }
}

#[cfg(feature = "fjall")]
impl Store<FjallEngine> {
    /// Opens (or creates) a fjall store in directory `path`, with its
    /// commit record in `path/courier.commit`. Must be called within a
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use courier::persistence::{FjallStore, Journal, WriteBatch};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), courier::persistence::Error> {
    /// let dir = tempfile::tempdir().expect("tempdir");
    /// let store = FjallStore::open(dir.path())?;
    /// // Ok: the journal was written and fdatasync'ed.
    /// store.write(WriteBatch::new().put("settings", "mode", "fast")).await?;
    /// store.close().await?;
    /// let store = FjallStore::open(dir.path())?;
    /// assert_eq!(store.kv_get("settings", b"mode").await?, Some(b"fast".to_vec()));
    /// store.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SledStore::open`](crate::SledStore), with fjall's errors in
    /// place of sled's.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_fjall(path.as_ref(), StoreOptions::new())
    }

    /// [`open`](Self::open) with `max_group` as the most writes that share
    /// one flush.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_max_group(path: impl AsRef<Path>, max_group: usize) -> Result<Self> {
        Self::open_fjall(path.as_ref(), StoreOptions::new().max_group(max_group))
    }

    /// Opens the fjall store in `path` accepting lost acknowledged writes or
    /// a missing commit record, as `SledStore::open_accepting_loss` does.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), except the two it accepts.
    pub fn open_accepting_loss(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_fjall(path.as_ref(), StoreOptions::new().accept_loss(true))
    }

    fn open_fjall(path: &Path, options: StoreOptions) -> Result<Self> {
        in_dir(FjallEngine::open(path)?, path, options)
    }
}

impl Store<DurableEngine> {
    /// Opens (or creates) a store over a `kind` engine in directory
    /// `path`, with its commit record in `path/courier.commit`, a block
    /// cache of `cache_capacity` bytes (`None`: the engine's default) and
    /// `options` (its `commit_file` is replaced). Must be called within a
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use courier::persistence::{DurableStore, EngineKind, StoreOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), courier::persistence::Error> {
    /// let dir = tempfile::tempdir().expect("tempdir");
    /// let kind: EngineKind = "sled".parse()?;
    /// let store = DurableStore::open_engine(kind, dir.path(), Some(64 << 20), StoreOptions::new())?;
    /// assert_eq!(store.engine().map(|e| e.kind()), Some(EngineKind::Sled));
    /// store.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](crate::Error::Invalid) if this build lacks the
    /// engine; otherwise as [`SledStore::open`](crate::SledStore).
    pub fn open_engine(
        kind: EngineKind,
        path: impl AsRef<Path>,
        cache_capacity: Option<u64>,
        options: StoreOptions,
    ) -> Result<Self> {
        let path = path.as_ref();
        in_dir(
            DurableEngine::open(kind, path, cache_capacity)?,
            path,
            options,
        )
    }
}
