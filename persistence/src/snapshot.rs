//! The [`SnapshotStore`] trait: saved states that shorten recovery.

use async_trait::async_trait;

use crate::error::Result;
use crate::record::{SeqNr, Snapshot};

/// Which snapshots a load or delete considers: those with sequence number
/// and timestamp within the bounds (all inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotCriteria {
    /// Highest sequence number.
    pub max_seq_nr: SeqNr,
    /// Latest timestamp (ms since the Unix epoch).
    pub max_timestamp: u64,
    /// Lowest sequence number.
    pub min_seq_nr: SeqNr,
    /// Earliest timestamp.
    pub min_timestamp: u64,
}

impl SnapshotCriteria {
    /// Every snapshot.
    pub fn latest() -> Self {
        Self {
            max_seq_nr: SeqNr::MAX,
            max_timestamp: u64::MAX,
            min_seq_nr: 0,
            min_timestamp: 0,
        }
    }

    /// Only snapshots at or below `seq_nr`.
    pub fn max_seq_nr(mut self, seq_nr: SeqNr) -> Self {
        self.max_seq_nr = seq_nr;
        self
    }

    /// Only snapshots taken at or before `timestamp`.
    pub fn max_timestamp(mut self, timestamp: u64) -> Self {
        self.max_timestamp = timestamp;
        self
    }

    /// Only snapshots at or above `seq_nr`.
    pub fn min_seq_nr(mut self, seq_nr: SeqNr) -> Self {
        self.min_seq_nr = seq_nr;
        self
    }

    /// Only snapshots taken at or after `timestamp`.
    pub fn min_timestamp(mut self, timestamp: u64) -> Self {
        self.min_timestamp = timestamp;
        self
    }

    /// Whether a snapshot at (`seq_nr`, `timestamp`) matches.
    pub fn matches(&self, seq_nr: SeqNr, timestamp: u64) -> bool {
        (self.min_seq_nr..=self.max_seq_nr).contains(&seq_nr)
            && (self.min_timestamp..=self.max_timestamp).contains(&timestamp)
    }
}

impl Default for SnapshotCriteria {
    fn default() -> Self {
        Self::latest()
    }
}

/// Stores snapshots per persistence id. Object safe: use it as
/// `Arc<dyn SnapshotStore>`.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Saves `snapshot`, replacing one at the same sequence number. Durable
    /// when it returns.
    ///
    /// # Errors
    ///
    /// Storage errors, [`Error::Poisoned`](crate::Error::Poisoned).
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()>;

    /// The matching snapshot with the highest sequence number.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`](crate::Error::Corrupt) /
    /// [`Error::Decode`](crate::Error::Decode) naming the newest matching
    /// snapshot if it cannot be read: the caller decides whether to fall back
    /// to an older one (load again with `max_seq_nr` below it).
    async fn load_snapshot(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> Result<Option<Snapshot>>;

    /// Deletes the snapshot at `seq_nr`, if any.
    ///
    /// # Errors
    ///
    /// As [`save_snapshot`](Self::save_snapshot).
    async fn delete_snapshot(&self, persistence_id: &str, seq_nr: SeqNr) -> Result<()>;

    /// Deletes every matching snapshot.
    ///
    /// # Errors
    ///
    /// As [`save_snapshot`](Self::save_snapshot).
    async fn delete_snapshots(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> Result<()>;
}
