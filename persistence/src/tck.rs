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

use crate::journal::{Journal, ReplayRange, WriteBatch, replay};
use crate::record::{EventRecord, Manifest, SeqNr};
use crate::snapshot::SnapshotStore;

mod journal;
mod replay;
mod snapshots;

pub use journal::{
    a_rejected_batch_writes_nothing, highest_kept_after_deleting_everything,
    highest_kept_after_deletion, highest_without_replay, key_value_records,
    no_replay_of_deleted_events, one_batch_spans_ids_and_records,
    paged_replay_delivers_everything_in_order, records_round_trip,
    the_same_sequence_number_twice_conflicts,
};
pub use replay::{
    replay_all, replay_count_limit, replay_lower_and_upper, replay_lower_bound,
    replay_lower_upper_and_count, replay_none_for_unknown_id, replay_none_when_lower_above_upper,
    replay_none_when_max_is_zero, replay_single_when_lower_equals_upper,
    replay_single_when_max_is_one, replay_upper_bound,
};
pub use snapshots::{
    snapshot_delete_matching, snapshot_delete_one, snapshot_keep_non_matching, snapshot_large,
    snapshot_latest, snapshot_latest_under_sequence_and_timestamp_bounds,
    snapshot_latest_under_sequence_bound, snapshot_none_for_non_matching_sequence_number,
    snapshot_none_for_non_matching_timestamp, snapshot_none_for_unknown_id,
    snapshot_overwrite_same_sequence_number,
};

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
