//! TCK cases for the snapshot store: loading by sequence and timestamp
//! bounds, deleting, overwriting and large snapshots.

use super::{Fixture, PID};
use crate::record::{Manifest, SeqNr, Snapshot, SnapshotMetadata};
use crate::snapshot::SnapshotCriteria;

fn snapshot(pid: &str, seq: SeqNr, timestamp: u64, payload: Vec<u8>) -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            persistence_id: pid.to_owned(),
            seq_nr: seq,
            timestamp,
        },
        manifest: Manifest::new("tck.State", 1),
        payload,
    }
}

/// The standard snapshot setup: snapshots at 1..=5, timestamps 100..=500.
async fn setup_snapshots(f: &dyn Fixture) {
    for seq in 1..=5 {
        f.snapshots()
            .save_snapshot(snapshot(PID, seq, seq * 100, vec![seq as u8]))
            .await
            .expect("save");
    }
}

async fn load(f: &dyn Fixture, criteria: SnapshotCriteria) -> Option<SeqNr> {
    f.snapshots()
        .load_snapshot(PID, criteria)
        .await
        .expect("load")
        .map(|s| {
            assert_eq!(
                s.payload,
                vec![s.metadata.seq_nr as u8],
                "payload of the loaded snapshot"
            );
            s.metadata.seq_nr
        })
}

/// No snapshot for an unknown id.
pub async fn snapshot_none_for_unknown_id(f: &dyn Fixture) {
    setup_snapshots(f).await;
    let none = f
        .snapshots()
        .load_snapshot("tck-unknown", SnapshotCriteria::latest())
        .await
        .expect("load");
    assert!(none.is_none());
}

/// No snapshot when none matches the timestamp bound.
pub async fn snapshot_none_for_non_matching_timestamp(f: &dyn Fixture) {
    setup_snapshots(f).await;
    assert_eq!(
        load(f, SnapshotCriteria::latest().max_timestamp(99)).await,
        None
    );
}

/// No snapshot when none matches the sequence bound.
pub async fn snapshot_none_for_non_matching_sequence_number(f: &dyn Fixture) {
    setup_snapshots(f).await;
    assert_eq!(
        load(f, SnapshotCriteria::latest().max_seq_nr(0)).await,
        None
    );
}

/// Loads the latest snapshot.
pub async fn snapshot_latest(f: &dyn Fixture) {
    setup_snapshots(f).await;
    assert_eq!(load(f, SnapshotCriteria::latest()).await, Some(5));
}

/// Loads the latest snapshot under a sequence bound.
pub async fn snapshot_latest_under_sequence_bound(f: &dyn Fixture) {
    setup_snapshots(f).await;
    assert_eq!(
        load(f, SnapshotCriteria::latest().max_seq_nr(3)).await,
        Some(3)
    );
}

/// Loads the latest snapshot under sequence and timestamp bounds.
pub async fn snapshot_latest_under_sequence_and_timestamp_bounds(f: &dyn Fixture) {
    setup_snapshots(f).await;
    let criteria = SnapshotCriteria::latest().max_seq_nr(4).max_timestamp(250);
    assert_eq!(load(f, criteria).await, Some(2));
}

/// Deletes one snapshot.
pub async fn snapshot_delete_one(f: &dyn Fixture) {
    setup_snapshots(f).await;
    f.snapshots().delete_snapshot(PID, 5).await.expect("delete");
    assert_eq!(load(f, SnapshotCriteria::latest()).await, Some(4));
    f.snapshots()
        .delete_snapshot(PID, 99)
        .await
        .expect("deleting a missing one is fine");
}

/// Deletes every matching snapshot.
pub async fn snapshot_delete_matching(f: &dyn Fixture) {
    setup_snapshots(f).await;
    f.snapshots()
        .delete_snapshots(PID, SnapshotCriteria::latest().max_seq_nr(3))
        .await
        .expect("delete");
    assert_eq!(
        load(f, SnapshotCriteria::latest().max_seq_nr(3)).await,
        None
    );
    assert_eq!(load(f, SnapshotCriteria::latest()).await, Some(5));
}

/// Keeps snapshots that do not match a delete.
pub async fn snapshot_keep_non_matching(f: &dyn Fixture) {
    setup_snapshots(f).await;
    f.snapshots()
        .delete_snapshots(
            PID,
            SnapshotCriteria::latest().min_seq_nr(2).max_timestamp(300),
        )
        .await
        .expect("delete");
    // 2 and 3 are gone; 1 (below min) and 4, 5 (after the time bound) stay.
    for (bound, want) in [(5, Some(5)), (4, Some(4)), (3, Some(1)), (1, Some(1))] {
        assert_eq!(
            load(f, SnapshotCriteria::latest().max_seq_nr(bound)).await,
            want
        );
    }
}

/// Saving at the same sequence number replaces the snapshot.
pub async fn snapshot_overwrite_same_sequence_number(f: &dyn Fixture) {
    setup_snapshots(f).await;
    f.snapshots()
        .save_snapshot(snapshot(PID, 5, 999, vec![5]))
        .await
        .expect("save");
    let s = f
        .snapshots()
        .load_snapshot(PID, SnapshotCriteria::latest())
        .await
        .expect("load")
        .expect("a snapshot");
    assert_eq!((s.metadata.seq_nr, s.metadata.timestamp), (5, 999));
}

/// A snapshot larger than 1 MiB round-trips.
pub async fn snapshot_large(f: &dyn Fixture) {
    let payload: Vec<u8> = (0..(1 << 20) + 17).map(|i| (i % 251) as u8).collect();
    f.snapshots()
        .save_snapshot(snapshot("tck-large", 1, 1, payload.clone()))
        .await
        .expect("save");
    let s = f
        .snapshots()
        .load_snapshot("tck-large", SnapshotCriteria::latest())
        .await
        .expect("load")
        .expect("a snapshot");
    assert_eq!(s.payload, payload);
}
