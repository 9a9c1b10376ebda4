//! TCK cases for replay: bounds, count limits, empty ranges, unknown ids.

use super::{Fixture, PID, replayed, setup_journal};
use crate::journal::ReplayRange;

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
