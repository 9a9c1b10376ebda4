//! [`PersistentSettings`] of an event-sourced actor and its
//! [`SnapshotPolicy`]: when to snapshot, how many to keep, whether to
//! delete the events a snapshot covers.

/// When to take snapshots and what to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Take a snapshot after every this many events (`None`: never).
    pub every: Option<u64>,
    /// Keep this many snapshots (at least 1); older ones are deleted.
    pub keep: usize,
    /// Delete the events covered by the oldest kept snapshot.
    pub delete_events: bool,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every: None,
            keep: 2,
            delete_events: false,
        }
    }
}

impl SnapshotPolicy {
    /// A snapshot every `n` events, keeping 2.
    pub fn every(n: u64) -> Self {
        Self {
            every: Some(n.max(1)),
            ..Self::default()
        }
    }

    /// Keep `k` snapshots (at least 1).
    pub fn keep(mut self, k: usize) -> Self {
        self.keep = k.max(1);
        self
    }

    /// Delete events covered by the oldest kept snapshot.
    pub fn delete_events(mut self, delete: bool) -> Self {
        self.delete_events = delete;
        self
    }
}

/// Settings of a [`Persistent`](super::Persistent) actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistentSettings {
    /// Snapshot policy.
    pub snapshots: SnapshotPolicy,
    /// How many events recovery reads per page.
    pub replay_page: usize,
}

impl Default for PersistentSettings {
    fn default() -> Self {
        Self {
            snapshots: SnapshotPolicy::default(),
            replay_page: 1024,
        }
    }
}
