//! The conformance suite ("TCK") every journal and snapshot store must pass.
//!
//! Each case is a public async function taking a [`Fixture`]; the
//! [`journal_tck!`](crate::journal_tck) macro turns the whole list into one
//! `#[tokio::test]` per case for a backend, so a new backend runs the suite
//! with one line:
//!
//! ```text
//! courier_persistence::journal_tck!(memory, courier_persistence::MemoryStore::memory().expect("store"));
//! ```
//!
//! The cases follow Akka's persistence TCK (journal and snapshot store specs)
//! and add what courier promises on top: atomic multi-id batches with
//! key–value records, sequence conflicts, paged replay and record round trips.
//! They panic with a message naming what went wrong.

use uuid::Uuid;

use crate::error::Error;
use crate::journal::{Journal, ReplayRange, WriteBatch, replay};
use crate::record::{EventRecord, Manifest, SeqNr, Snapshot, SnapshotMetadata};
use crate::snapshot::{SnapshotCriteria, SnapshotStore};

/// What the suite runs against: a journal and a snapshot store (usually the
/// same store), alive for the whole case.
pub trait Fixture {
    /// The journal under test.
    fn journal(&self) -> &dyn Journal;
    /// The snapshot store under test.
    fn snapshots(&self) -> &dyn SnapshotStore;
}

impl<E: crate::engine::Engine> Fixture for crate::store::Store<E> {
    fn journal(&self) -> &dyn Journal {
        self
    }
    fn snapshots(&self) -> &dyn SnapshotStore {
        self
    }
}

/// A store together with whatever must outlive it (a temporary directory).
impl<F: Fixture, Guard> Fixture for (F, Guard) {
    fn journal(&self) -> &dyn Journal {
        self.0.journal()
    }
    fn snapshots(&self) -> &dyn SnapshotStore {
        self.0.snapshots()
    }
}

const PID: &str = "tck-p-1";

/// An event record of `pid` at `seq` whose payload names both.
pub fn event(pid: &str, seq: SeqNr) -> EventRecord {
    EventRecord {
        persistence_id: pid.to_owned(),
        seq_nr: seq,
        manifest: Manifest::new("tck.Event", 1),
        payload: format!("{pid}-{seq}").into_bytes(),
        writer_id: Uuid::nil(),
        timestamp: seq * 10,
    }
}

async fn write_events(f: &dyn Fixture, pid: &str, seqs: std::ops::RangeInclusive<SeqNr>) {
    f.journal()
        .write(WriteBatch::new().events(seqs.map(|s| event(pid, s))))
        .await
        .expect("writing events");
}

/// The standard setup: events 1..=5 of the test id.
async fn setup_journal(f: &dyn Fixture) {
    write_events(f, PID, 1..=5).await;
}

async fn replayed(f: &dyn Fixture, pid: &str, range: ReplayRange) -> Vec<SeqNr> {
    let mut seen = Vec::new();
    replay(f.journal(), pid, range, 2, |r| {
        assert_eq!(
            r,
            event(pid, r.seq_nr),
            "replayed record differs from the written one"
        );
        seen.push(r.seq_nr);
        Ok(())
    })
    .await
    .expect("replay");
    seen
}

/// Replays every event.
pub async fn replay_all(f: &dyn Fixture) {
    setup_journal(f).await;
    assert_eq!(
        replayed(f, PID, ReplayRange::all()).await,
        vec![1, 2, 3, 4, 5]
    );
}

/// Replays from a lower bound.
pub async fn replay_lower_bound(f: &dyn Fixture) {
    setup_journal(f).await;
    assert_eq!(
        replayed(f, PID, ReplayRange::all().from(3)).await,
        vec![3, 4, 5]
    );
}

/// Replays up to an upper bound.
pub async fn replay_upper_bound(f: &dyn Fixture) {
    setup_journal(f).await;
    assert_eq!(
        replayed(f, PID, ReplayRange::all().to(3)).await,
        vec![1, 2, 3]
    );
}

/// Replays at most a count.
pub async fn replay_count_limit(f: &dyn Fixture) {
    setup_journal(f).await;
    assert_eq!(
        replayed(f, PID, ReplayRange::all().max(3)).await,
        vec![1, 2, 3]
    );
}

/// Replays between a lower and an upper bound.
pub async fn replay_lower_and_upper(f: &dyn Fixture) {
    setup_journal(f).await;
    assert_eq!(
        replayed(f, PID, ReplayRange::all().from(2).to(3)).await,
        vec![2, 3]
    );
}

/// Replays between bounds with a count limit.
pub async fn replay_lower_upper_and_count(f: &dyn Fixture) {
    setup_journal(f).await;
    let range = ReplayRange::all().from(2).to(5).max(2);
    assert_eq!(replayed(f, PID, range).await, vec![2, 3]);
}

/// Replays one event when lower == upper.
pub async fn replay_single_when_lower_equals_upper(f: &dyn Fixture) {
    setup_journal(f).await;
    assert_eq!(
        replayed(f, PID, ReplayRange::all().from(2).to(2)).await,
        vec![2]
    );
}

/// Replays one event when max == 1.
pub async fn replay_single_when_max_is_one(f: &dyn Fixture) {
    setup_journal(f).await;
    let range = ReplayRange::all().from(2).to(5).max(1);
    assert_eq!(replayed(f, PID, range).await, vec![2]);
}

/// Replays nothing when max == 0.
pub async fn replay_none_when_max_is_zero(f: &dyn Fixture) {
    setup_journal(f).await;
    assert!(replayed(f, PID, ReplayRange::all().max(0)).await.is_empty());
}

/// Replays nothing when lower > upper.
pub async fn replay_none_when_lower_above_upper(f: &dyn Fixture) {
    setup_journal(f).await;
    assert!(
        replayed(f, PID, ReplayRange::all().from(3).to(2))
            .await
            .is_empty()
    );
}

/// Replays nothing for an unknown id, whose highest is 0.
pub async fn replay_none_for_unknown_id(f: &dyn Fixture) {
    setup_journal(f).await;
    assert!(
        replayed(f, "tck-unknown", ReplayRange::all())
            .await
            .is_empty()
    );
    assert_eq!(
        f.journal()
            .highest_seq_nr("tck-unknown")
            .await
            .expect("highest"),
        0
    );
}

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

/// Expands to one `#[tokio::test]` per conformance case, in a module named
/// `$module`, each with a fresh fixture from `$fixture` (an expression that
/// evaluates to a [`Fixture`](crate::tck::Fixture) inside a tokio runtime).
///
/// ```text
/// courier_persistence::journal_tck!(memory, courier_persistence::MemoryStore::memory().expect("store"));
/// ```
#[macro_export]
macro_rules! journal_tck {
    ($module:ident, $fixture:expr) => {
        $crate::journal_tck!(@cases $module, $fixture;
            replay_all,
            replay_lower_bound,
            replay_upper_bound,
            replay_count_limit,
            replay_lower_and_upper,
            replay_lower_upper_and_count,
            replay_single_when_lower_equals_upper,
            replay_single_when_max_is_one,
            replay_none_when_max_is_zero,
            replay_none_when_lower_above_upper,
            replay_none_for_unknown_id,
            highest_without_replay,
            no_replay_of_deleted_events,
            highest_kept_after_deletion,
            highest_kept_after_deleting_everything,
            a_rejected_batch_writes_nothing,
            one_batch_spans_ids_and_records,
            the_same_sequence_number_twice_conflicts,
            paged_replay_delivers_everything_in_order,
            key_value_records,
            records_round_trip,
            snapshot_none_for_unknown_id,
            snapshot_none_for_non_matching_timestamp,
            snapshot_none_for_non_matching_sequence_number,
            snapshot_latest,
            snapshot_latest_under_sequence_bound,
            snapshot_latest_under_sequence_and_timestamp_bounds,
            snapshot_delete_one,
            snapshot_delete_matching,
            snapshot_keep_non_matching,
            snapshot_overwrite_same_sequence_number,
            snapshot_large,
        );
    };
    (@cases $module:ident, $fixture:expr; $($case:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let fixture = $fixture;
                    $crate::tck::$case(&fixture).await;
                }
            )*
        }
    };
}
