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
