//! TCK cases for journal writes: the highest sequence number across
//! deletions, atomic and rejected batches, sequence conflicts, paged replay,
//! key–value records and record round trips.

use uuid::Uuid;

use super::{Fixture, PID, event, replayed, setup_journal, write_events};
use crate::error::Error;
use crate::journal::{ReplayRange, WriteBatch, replay};
use crate::record::{EventRecord, Manifest};

/// Returns the highest sequence number without a replay.
pub async fn highest_without_replay(f: &dyn Fixture) {
    setup_journal(f).await;
    assert_eq!(f.journal().highest_seq_nr(PID).await.expect("highest"), 5);
}

/// Does not replay deleted events.
pub async fn no_replay_of_deleted_events(f: &dyn Fixture) {
    setup_journal(f).await;
    f.journal().delete_events_to(PID, 3).await.expect("delete");
    assert_eq!(replayed(f, PID, ReplayRange::all()).await, vec![4, 5]);
    assert_eq!(f.journal().deleted_to(PID).await.expect("deleted_to"), 3);
}

/// Keeps the highest sequence number after a deletion.
pub async fn highest_kept_after_deletion(f: &dyn Fixture) {
    setup_journal(f).await;
    f.journal().delete_events_to(PID, 3).await.expect("delete");
    assert_eq!(f.journal().highest_seq_nr(PID).await.expect("highest"), 5);
}

/// Keeps the highest sequence number after deleting everything (and beyond),
/// and the next write continues after it.
pub async fn highest_kept_after_deleting_everything(f: &dyn Fixture) {
    setup_journal(f).await;
    f.journal()
        .delete_events_to(PID, 100)
        .await
        .expect("delete");
    assert_eq!(f.journal().highest_seq_nr(PID).await.expect("highest"), 5);
    assert!(replayed(f, PID, ReplayRange::all()).await.is_empty());
    let restart = f
        .journal()
        .write(WriteBatch::new().event(event(PID, 1)))
        .await;
    assert!(
        matches!(
            restart,
            Err(Error::SequenceConflict {
                expected: 6,
                got: 1,
                ..
            })
        ),
        "a deleted journal must not restart at 1: {restart:?}"
    );
    write_events(f, PID, 6..=6).await;
    assert_eq!(replayed(f, PID, ReplayRange::all()).await, vec![6]);
}

/// A batch that does not continue a journal writes nothing at all.
pub async fn a_rejected_batch_writes_nothing(f: &dyn Fixture) {
    setup_journal(f).await;
    let batch = WriteBatch::new()
        .event(event("tck-other", 1))
        .event(event(PID, 6))
        .event(event(PID, 8))
        .put("tck-ns", b"k".to_vec(), b"v".to_vec());
    let result = f.journal().write(batch).await;
    assert!(
        matches!(result, Err(Error::SequenceConflict { ref persistence_id, expected: 7, got: 8 }) if persistence_id == PID),
        "{result:?}"
    );
    assert_eq!(f.journal().highest_seq_nr(PID).await.expect("highest"), 5);
    assert_eq!(
        f.journal()
            .highest_seq_nr("tck-other")
            .await
            .expect("highest"),
        0
    );
    assert_eq!(f.journal().kv_get("tck-ns", b"k").await.expect("kv"), None);
}

/// One batch writes events for several ids and key–value records together.
pub async fn one_batch_spans_ids_and_records(f: &dyn Fixture) {
    let batch = WriteBatch::new()
        .events([event("tck-a", 1), event("tck-a", 2)])
        .event(event("tck-b", 1))
        .put("tck-ns", b"k1".to_vec(), b"v1".to_vec());
    f.journal().write(batch).await.expect("write");
    assert_eq!(replayed(f, "tck-a", ReplayRange::all()).await, vec![1, 2]);
    assert_eq!(replayed(f, "tck-b", ReplayRange::all()).await, vec![1]);
    assert_eq!(
        f.journal().kv_get("tck-ns", b"k1").await.expect("kv"),
        Some(b"v1".to_vec())
    );
}

/// Two writers claiming the same sequence number: the second loses.
pub async fn the_same_sequence_number_twice_conflicts(f: &dyn Fixture) {
    setup_journal(f).await;
    write_events(f, PID, 6..=6).await;
    let again = f
        .journal()
        .write(WriteBatch::new().event(event(PID, 6)))
        .await;
    assert!(
        matches!(
            again,
            Err(Error::SequenceConflict {
                expected: 7,
                got: 6,
                ..
            })
        ),
        "{again:?}"
    );
    let first = f
        .journal()
        .write(WriteBatch::new().event(event("tck-new", 2)))
        .await;
    assert!(
        matches!(
            first,
            Err(Error::SequenceConflict {
                expected: 1,
                got: 2,
                ..
            })
        ),
        "a journal starts at 1: {first:?}"
    );
}

/// Replay streams in pages and still delivers every event in order.
pub async fn paged_replay_delivers_everything_in_order(f: &dyn Fixture) {
    write_events(f, PID, 1..=10).await;
    let mut seen = Vec::new();
    let stats = replay(f.journal(), PID, ReplayRange::all(), 3, |r| {
        seen.push(r.seq_nr);
        Ok(())
    })
    .await
    .expect("replay");
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    assert_eq!(stats.events, 10);
    assert_eq!(stats.last_seq_nr, 10);
    let page = f.journal().read_events(PID, 4, 100, 3).await.expect("page");
    assert_eq!(
        page.iter().map(|r| r.seq_nr).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
}

/// Key–value records: put, get, overwrite, delete, and scan with pagination.
pub async fn key_value_records(f: &dyn Fixture) {
    let j = f.journal();
    let mut batch = WriteBatch::new();
    for i in 0u8..10 {
        batch = batch.put("tck-kv", vec![i], vec![i, i]);
    }
    batch = batch.put("tck-kv-other", vec![0], vec![42]);
    j.write(batch).await.expect("write");
    assert_eq!(
        j.kv_get("tck-kv", &[3]).await.expect("get"),
        Some(vec![3, 3])
    );
    j.write(
        WriteBatch::new()
            .put("tck-kv", vec![3], vec![9])
            .delete("tck-kv", vec![4]),
    )
    .await
    .expect("write");
    assert_eq!(j.kv_get("tck-kv", &[3]).await.expect("get"), Some(vec![9]));
    assert_eq!(j.kv_get("tck-kv", &[4]).await.expect("get"), None);
    assert_eq!(
        j.kv_get_many("tck-kv", &[vec![5], vec![4], vec![3], vec![0]])
            .await
            .expect("get many"),
        vec![Some(vec![5, 5]), None, Some(vec![9]), Some(vec![0, 0])],
        "in the order asked, None where there is none"
    );
    let first = j.kv_scan("tck-kv", None, 4).await.expect("scan");
    let keys: Vec<_> = first.iter().map(|(k, _)| k[0]).collect();
    assert_eq!(keys, vec![0, 1, 2, 3]);
    let rest = j.kv_scan("tck-kv", Some(&[3]), 100).await.expect("scan");
    let keys: Vec<_> = rest.iter().map(|(k, _)| k[0]).collect();
    assert_eq!(
        keys,
        vec![5, 6, 7, 8, 9],
        "scan continues after the key, skipping the deleted one"
    );
    assert_eq!(
        j.kv_scan("tck-kv-other", None, 10).await.expect("scan"),
        vec![(vec![0], vec![42])],
        "namespaces do not mix"
    );
}

/// Every field of a record survives the round trip.
pub async fn records_round_trip(f: &dyn Fixture) {
    let record = EventRecord {
        persistence_id: PID.to_owned(),
        seq_nr: 1,
        manifest: Manifest::new("tck.Special", 7),
        payload: (0..=255u8).collect(),
        writer_id: Uuid::now_v7(),
        timestamp: 1_700_000_000_123,
    };
    f.journal()
        .write(WriteBatch::new().event(record.clone()))
        .await
        .expect("write");
    let back = f.journal().read_events(PID, 1, 1, 10).await.expect("read");
    assert_eq!(back, vec![record]);
}
