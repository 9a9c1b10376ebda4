//! Opening a store for the tool: a copy for reading (opening an engine
//! writes to it, and `verify` promises never to write), the store itself
//! for repairs; either only while no other process holds it. The engine
//! (sled or fjall) is told by the files in the directory.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use courier::persistence::{DurableStore, EngineKind, StoreOptions};
use fs2::FileExt;

/// What went wrong before the store could be read.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The directory holds no store.
    NotAStore(PathBuf),
    /// Another process has the store open.
    InUse(PathBuf),
    /// Copying the store failed.
    Copy(PathBuf, io::Error),
    /// The store itself refused to open.
    Store(courier::persistence::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotAStore(path) => write!(
                f,
                "{} is not a courier store (neither sled's `db` file nor fjall's `lock` and `version` files are in it)",
                path.display()
            ),
            OpenError::InUse(path) => write!(
                f,
                "{} is open in another process: stop the service that uses it first",
                path.display()
            ),
            OpenError::Copy(path, e) => write!(
                f,
                "cannot copy {} to a temporary directory (set TMPDIR to a disk with room): {e}",
                path.display()
            ),
            OpenError::Store(e) => write!(f, "the store does not open: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Copy(_, e) => Some(e),
            OpenError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// A store the tool reads: a copy, removed when this is dropped.
pub(crate) struct ReadCopy {
    pub(crate) store: DurableStore,
    _dir: tempfile::TempDir,
}

/// The engine whose files are in `path`, and the file it locks while open.
fn engine_of(path: &Path) -> Result<(EngineKind, PathBuf), OpenError> {
    if path.join("db").is_file() {
        Ok((EngineKind::Sled, path.join("db")))
    } else if path.join("lock").is_file() && path.join("version").is_file() {
        Ok((EngineKind::Fjall, path.join("lock")))
    } else {
        Err(OpenError::NotAStore(path.to_owned()))
    }
}

/// Holds the engine's lock file shared: fails while a process has the
/// store open (sled and fjall both hold it exclusively, with `flock`), and
/// keeps one from opening it meanwhile.
fn shared_lock(path: &Path) -> Result<(EngineKind, File), OpenError> {
    let (kind, lock) = engine_of(path)?;
    let file = File::open(&lock).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => OpenError::NotAStore(path.to_owned()),
        _ => OpenError::Copy(path.to_owned(), e),
    })?;
    // fs2's, not std's (Rust 1.89): the crates keep Rust 1.85.
    FileExt::try_lock_shared(&file).map_err(|_| OpenError::InUse(path.to_owned()))?;
    Ok((kind, file))
}

fn open(kind: EngineKind, path: &Path) -> Result<DurableStore, OpenError> {
    DurableStore::open_engine(kind, path, None, StoreOptions::new()).map_err(OpenError::Store)
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Copies the store at `path` and opens the copy.
pub(crate) fn for_reading(path: &Path) -> Result<ReadCopy, OpenError> {
    let (kind, lock) = shared_lock(path)?;
    let dir = tempfile::Builder::new()
        .prefix("courier-read-")
        .tempdir()
        .map_err(|e| OpenError::Copy(path.to_owned(), e))?;
    let copy = dir.path().join("store");
    copy_dir(path, &copy).map_err(|e| OpenError::Copy(path.to_owned(), e))?;
    drop(lock);
    // fjall takes its own lock file anew; the copy's must not be locked.
    let store = open(kind, &copy)?;
    Ok(ReadCopy { store, _dir: dir })
}

/// Opens the store at `path` itself, to repair it.
pub(crate) fn for_repair(path: &Path) -> Result<DurableStore, OpenError> {
    let (kind, lock) = shared_lock(path)?;
    drop(lock);
    open(kind, path)
}

/// Where the reading commands read: a copy of an embedded store, or a
/// PostgreSQL store itself (a shared, networked journal that other
/// processes may be writing; the reads are consistent per query).
pub(crate) enum Source {
    Copy(ReadCopy),
    Postgres(courier::persistence::postgres::PostgresStore),
}

/// Whether `store` names a PostgreSQL store rather than a directory.
pub(crate) fn is_postgres(store: &Path) -> bool {
    store
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

impl Source {
    /// `store`: a directory, or `postgres://user@host/db[#schema]` (the
    /// password from `COURIER_POSTGRES_PASSWORD` when set).
    pub(crate) async fn open(store: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        if !is_postgres(store) {
            return Ok(Self::Copy(for_reading(store)?));
        }
        use courier::persistence::postgres::{Password, PostgresSettings, PostgresStore};
        let text = store.to_str().unwrap_or_default();
        let (url, schema) = match text.split_once('#') {
            Some((url, schema)) => (url, Some(schema)),
            None => (text, None),
        };
        let mut settings = PostgresSettings::new(url)?;
        if let Some(schema) = schema {
            settings = settings.with_schema(schema)?;
        }
        if std::env::var_os("COURIER_POSTGRES_PASSWORD").is_some() {
            settings = settings.with_password(Password::from_env("COURIER_POSTGRES_PASSWORD")?);
        }
        // Reading never writes: no schema created or migrated, no epoch
        // recorded, every write refused.
        Ok(Self::Postgres(
            PostgresStore::open_read_only(settings).await?,
        ))
    }

    pub(crate) fn journal(&self) -> std::sync::Arc<dyn courier::persistence::Journal> {
        match self {
            Self::Copy(copy) => std::sync::Arc::new(copy.store.clone()),
            Self::Postgres(store) => std::sync::Arc::new(store.clone()),
        }
    }

    /// Every record checked and the journals listed (`None` when the store
    /// cannot say).
    pub(crate) async fn report(
        &self,
    ) -> Result<Option<courier::persistence::StoreReport>, courier::persistence::Error> {
        match self {
            Self::Copy(copy) => copy.store.verify().await.map(Some),
            Self::Postgres(store) => store.verify().await.map(Some),
        }
    }
}
