//! Opening a store: the rollback check against the commit record, the store
//! epoch, and the upgrade of stores written before either existed.

use std::path::PathBuf;
use std::sync::Arc;

use uuid::Uuid;

use super::MAX_GROUP;
use crate::commit_file::CommitFile;
use crate::engine::Engine;
use crate::epoch;
use crate::error::{Error, Result};

/// How a [`Store`](crate::Store) is opened over its engine.
///
/// # Examples
///
/// ```
/// use courier::persistence::engine::MemoryEngine;
/// use courier::persistence::{Store, StoreOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), courier::persistence::Error> {
/// let dir = tempfile::tempdir().expect("tempdir");
/// let options = StoreOptions::new()
///     .max_group(256)
///     .commit_file(dir.path().join("courier.commit"));
/// let store = Store::with_options(MemoryEngine::new(), options)?;
/// store.close().await?;
/// # Ok(())
/// # }
/// ```
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The most writes that share one flush (values below 1 count as 1).
    pub max_group: usize,
    /// Where the store records the highest commit it acknowledged, outside
    /// the engine. `None`: no record and no rollback check (right for an
    /// engine that cannot come back shorter, such as the memory engine).
    pub commit_file: Option<PathBuf>,
    /// Open even if the engine lost acknowledged writes or the commit
    /// record is missing or unreadable: log the loss at ERROR, rewrite the
    /// record from the engine, start a new store epoch.
    pub accept_loss: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_group: MAX_GROUP,
            commit_file: None,
            accept_loss: false,
        }
    }
}

impl StoreOptions {
    /// The defaults: groups of up to 4096 writes, no commit record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`max_group`](Self::max_group).
    pub fn max_group(mut self, max_group: usize) -> Self {
        self.max_group = max_group;
        self
    }

    /// Sets [`commit_file`](Self::commit_file).
    pub fn commit_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.commit_file = Some(path.into());
        self
    }

    /// Sets [`accept_loss`](Self::accept_loss).
    pub fn accept_loss(mut self, accept: bool) -> Self {
        self.accept_loss = accept;
        self
    }
}

/// What opening found and did.
pub(super) struct Opened {
    /// The engine's commit number after opening.
    pub(super) commit: u64,
    pub(super) commit_file: Option<Arc<CommitFile>>,
    /// Whether opening applied a batch that still needs a flush.
    pub(super) unflushed: bool,
}

/// Checks `engine` against the commit record and writes what a store needs
/// (epoch, commit number, record). Stores from before commit numbers (no
/// commit in the engine, no record) are upgraded: the record is created at
/// commit 0 and the epoch written.
pub(super) fn prepare<E: Engine>(engine: &E, options: &StoreOptions) -> Result<Opened> {
    let found = epoch::read_commit(engine)?;
    let mut new_epoch = options.accept_loss;
    let commit_file = match &options.commit_file {
        None => None,
        Some(path) => {
            let recorded = match CommitFile::read(path) {
                Ok(recorded) => recorded,
                Err(e) if options.accept_loss => {
                    tracing::error!(
                        error = %e,
                        "opening accepting loss: the commit record is unusable, so whatever \
                         the engine lost since the last backup goes unnoticed"
                    );
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, "refusing to open the store");
                    return Err(e);
                }
            };
            check(path, recorded, found, options.accept_loss)?;
            // The record exists before any write can be acknowledged, so a
            // record that goes missing later is noticed.
            Some(Arc::new(CommitFile::create(path, found)?))
        }
    };
    let current = epoch::read_epoch(engine);
    let current = match current {
        Ok(epoch) => epoch,
        Err(e) if options.accept_loss => {
            tracing::error!(error = %e, "opening accepting loss: replacing a damaged store epoch");
            None
        }
        Err(e) => return Err(e),
    };
    new_epoch |= current.is_none();
    let mut commit = found;
    if new_epoch {
        let epoch = Uuid::now_v7();
        match current {
            Some(old) => tracing::warn!(%old, new = %epoch, "the store starts a new epoch"),
            None => tracing::info!(%epoch, "the store starts its first epoch"),
        }
        commit = commit.saturating_add(1);
        engine.apply(vec![epoch::epoch_op(epoch), epoch::commit_op(commit)])?;
    }
    Ok(Opened {
        commit,
        commit_file,
        unflushed: new_epoch,
    })
}

/// Compares what the record says was acknowledged with what the engine
/// holds.
fn check(
    path: &std::path::Path,
    recorded: Option<u64>,
    found: u64,
    accept_loss: bool,
) -> Result<()> {
    match recorded {
        Some(acknowledged) if acknowledged > found => {
            let error = Error::RolledBack {
                path: path.to_owned(),
                acknowledged,
                found,
            };
            if accept_loss {
                tracing::error!(
                    acknowledged,
                    found,
                    lost = acknowledged - found,
                    path = %path.display(),
                    "opening accepting loss: the engine lost the writes of commits {} to \
                     {acknowledged}, which were acknowledged; a new store epoch starts",
                    found + 1,
                );
                return Ok(());
            }
            tracing::error!(%error, "refusing to open the store");
            Err(error)
        }
        None if found > 0 && !accept_loss => {
            let error = Error::CommitRecord {
                path: path.to_owned(),
                reason: format!("it is missing, but the engine holds commit {found}"),
            };
            tracing::error!(%error, "refusing to open the store");
            Err(error)
        }
        _ => Ok(()),
    }
}
