//! [`SnapshotStore`] for [`Store`]: saves and deletions go to the writer
//! task; loading walks back from the newest candidate to the first that
//! matches the criteria.

use async_trait::async_trait;

use super::prepared::encode_snapshot;
use super::reads::{decode_snapshot, snapshots_below};
use super::{Request, Store};
use crate::engine::Engine;
use crate::error::Result;
use crate::keys;
use crate::record::{SeqNr, Snapshot};
use crate::snapshot::{SnapshotCriteria, SnapshotStore};

#[async_trait]
impl<E: Engine> SnapshotStore for Store<E> {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let put = encode_snapshot(&snapshot)?;
        self.submit(Request::SaveSnapshot(put)).await
    }

    async fn load_snapshot(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> Result<Option<Snapshot>> {
        keys::check_id("persistence id", persistence_id)?;
        let pid = persistence_id.to_owned();
        self.read(move |engine| {
            let mut below = criteria.max_seq_nr;
            loop {
                let candidates = snapshots_below(engine, &pid, below, criteria.min_seq_nr, 16)?;
                if candidates.is_empty() {
                    return Ok(None);
                }
                for entry in &candidates {
                    let snapshot = decode_snapshot(&pid, entry)?;
                    if criteria.matches(snapshot.metadata.seq_nr, snapshot.metadata.timestamp) {
                        return Ok(Some(snapshot));
                    }
                }
                let lowest = candidates
                    .last()
                    .and_then(|(k, _)| keys::seq_of(k))
                    .unwrap_or(0);
                match lowest.checked_sub(1) {
                    Some(next) if next >= criteria.min_seq_nr => below = next,
                    _ => return Ok(None),
                }
            }
        })
        .await
    }

    async fn delete_snapshot(&self, persistence_id: &str, seq_nr: SeqNr) -> Result<()> {
        let criteria = SnapshotCriteria::latest()
            .max_seq_nr(seq_nr)
            .min_seq_nr(seq_nr);
        self.delete_snapshots(persistence_id, criteria).await
    }

    async fn delete_snapshots(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> Result<()> {
        keys::check_id("persistence id", persistence_id)?;
        self.submit(Request::DeleteSnapshots {
            persistence_id: persistence_id.to_owned(),
            criteria,
        })
        .await
    }
}
