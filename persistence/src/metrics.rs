//! The persistence layer's metrics, through the [`metrics`] facade: courier
//! records, the program chooses an exporter (or none: a no-op call). Names
//! follow Prometheus; the only label of the store's metrics is the engine's
//! name ([`Engine::name`](crate::Engine::name)), a constant per engine type,
//! and recovery has none (persistence ids are unbounded), so the number of
//! series is bounded whatever the data.
//!
//! | name | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `courier_persistence_write_seconds` | histogram | `engine` | one journal write, from its call to its `Ok` (durable) |
//! | `courier_persistence_flush_seconds` | histogram | `engine` | one engine flush plus the commit record's update |
//! | `courier_persistence_commit_record_seconds` | histogram | `engine` | the commit record's update alone (write and `fdatasync`), part of the flush; embedded engines only |
//! | `courier_persistence_apply_seconds` | histogram | `engine` | applying one group's writes to the engine (validation included), before its flush; embedded engines only |
//! | `courier_persistence_group_size` | histogram | `engine` | requests answered by one flush (the group commit) |
//! | `courier_persistence_poisoned_total` | counter | `engine` | stores poisoned by a failed apply or flush |
//! | `courier_persistence_recovery_seconds` | histogram | — | one event-sourced recovery (snapshot, then replay) |
//! | `courier_persistence_replayed_events_total` | counter | — | events replayed by recoveries |
//! | `courier_persistence_recovery_failures_total` | counter | — | recoveries that failed (the actor stopped) |
//!
//! Handles are registered when a store opens or an actor recovers: install
//! the recorder before either.
//!
//! Public for the authors of backends (the PostgreSQL store records the
//! same series with `engine="postgres"`), so that every backend uses one
//! set of names.

use std::time::Duration;

use ::metrics::{Counter, Histogram, counter, histogram};

/// A store's metrics, labelled with its engine's name. Cheap to clone (the
/// handles are shared).
#[derive(Clone)]
pub struct StoreMetrics {
    write: Histogram,
    flush: Histogram,
    record: Histogram,
    apply: Histogram,
    group: Histogram,
    pub(crate) poisoned: Counter,
}

impl std::fmt::Debug for StoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreMetrics").finish_non_exhaustive()
    }
}

impl StoreMetrics {
    /// Registers the handles of a store over the engine named `engine`
    /// (a constant per backend, such as `"postgres"`: it is a label).
    pub fn new(engine: &'static str) -> Self {
        let label = [("engine", engine)];
        Self {
            write: histogram!("courier_persistence_write_seconds", &label),
            flush: histogram!("courier_persistence_flush_seconds", &label),
            record: histogram!("courier_persistence_commit_record_seconds", &label),
            apply: histogram!("courier_persistence_apply_seconds", &label),
            group: histogram!("courier_persistence_group_size", &label),
            poisoned: counter!("courier_persistence_poisoned_total", &label),
        }
    }

    /// One journal write that returned `Ok` (durable) `took` after its call.
    pub fn write(&self, took: Duration) {
        self.write.record(took.as_secs_f64());
    }

    /// One flush (for a networked store: one group's transaction) that
    /// took `took`.
    pub fn flush(&self, took: Duration) {
        self.flush.record(took.as_secs_f64());
    }

    /// The commit record's update, part of a flush, took `took`.
    pub fn commit_record(&self, took: Duration) {
        self.record.record(took.as_secs_f64());
    }

    /// Applying one group's writes to the engine took `took`.
    pub fn apply(&self, took: Duration) {
        self.apply.record(took.as_secs_f64());
    }

    /// One flush answered `requests` requests.
    pub fn group(&self, requests: usize) {
        self.group.record(requests as f64);
    }

    /// The store was poisoned (call once per store).
    pub fn poisoned(&self) {
        self.poisoned.increment(1);
    }
}

/// One recovery's outcome: how long it took and what it replayed.
pub(crate) fn recovered(took: Duration, replayed: u64) {
    histogram!("courier_persistence_recovery_seconds").record(took.as_secs_f64());
    counter!("courier_persistence_replayed_events_total").increment(replayed);
}

/// A recovery that failed after `took`.
pub(crate) fn recovery_failed(took: Duration) {
    histogram!("courier_persistence_recovery_seconds").record(took.as_secs_f64());
    counter!("courier_persistence_recovery_failures_total").increment(1);
}
