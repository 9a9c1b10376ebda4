//! What a read may answer: only writes that are durable.
//!
//! The writer applies a group to the engine and then flushes it, and the
//! engine shows the applied writes at once. A read in between could answer
//! a write whose flush then fails, and whoever acted on it (a sender that
//! resends an outbox entry, an actor that recovers an event) acted on
//! something a restart no longer has: a delivery id handed out again, a
//! state that never was. So a read, once it has run, waits until every
//! batch applied before it ended is flushed; on a poisoned store, where
//! that never happens, it fails with [`Error::Poisoned`].
//!
//! Invariant: `applied` is raised before a batch reaches the engine and
//! `durable` only after a flush covered it, so a read that saw a batch
//! finds `applied` at or above its number and returns only once `durable`
//! is too.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use crate::error::{Error, Result};

/// The commit numbers of the last batch applied to the engine and of the
/// last one flushed.
#[derive(Debug)]
pub(super) struct Commits {
    applied: AtomicU64,
    durable: watch::Sender<u64>,
}

impl Commits {
    /// After opening: the engine holds commit `applied`, of which commits
    /// up to `durable` are on disk.
    pub(super) fn new(applied: u64, durable: u64) -> Self {
        Self {
            applied: AtomicU64::new(applied),
            durable: watch::Sender::new(durable),
        }
    }

    /// Before the batch with commit number `commit` goes to the engine.
    pub(super) fn applying(&self, commit: u64) {
        // `SeqCst`, as in `settled`: a read that saw the batch finds this.
        self.applied.fetch_max(commit, Ordering::SeqCst);
    }

    /// After a flush covered every batch up to `commit`.
    pub(super) fn flushed(&self, commit: u64) {
        self.durable.send_if_modified(|durable| {
            let raised = commit > *durable;
            *durable = (*durable).max(commit);
            raised
        });
    }

    /// Wakes the reads that wait, to find the store poisoned.
    pub(super) fn poisoned(&self) {
        self.durable.send_modify(|_| {});
    }

    /// Called after a read: returns once everything the read could have
    /// seen is durable, or fails with [`Error::Poisoned`] when it never
    /// will be.
    pub(super) async fn settled(&self, poison: &Mutex<Option<String>>) -> Result<()> {
        let seen = self.applied.load(Ordering::SeqCst);
        if *self.durable.borrow() >= seen {
            return Ok(());
        }
        let mut durable = self.durable.subscribe();
        loop {
            if *durable.borrow_and_update() >= seen {
                return Ok(());
            }
            if let Some(reason) = courier_core::sync::lock(poison).clone() {
                return Err(Error::Poisoned { reason });
            }
            // The sender lives as long as the store: this only returns
            // once something changed.
            if durable.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_read_waits_for_the_flush_of_what_it_could_see() {
        let commits = Arc::new(Commits::new(3, 3));
        let poison = Arc::new(Mutex::new(None));
        commits.settled(&poison).await.expect("all durable");
        commits.applying(4);
        let read = {
            let (commits, poison) = (Arc::clone(&commits), Arc::clone(&poison));
            tokio::spawn(async move { commits.settled(&poison).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!read.is_finished(), "answered before the flush");
        commits.flushed(4);
        read.await.expect("read").expect("durable now");
    }

    #[tokio::test]
    async fn a_read_on_a_poisoned_store_fails_rather_than_answer_what_may_be_lost() {
        let commits = Arc::new(Commits::new(3, 3));
        let poison = Arc::new(Mutex::new(None));
        commits.applying(4);
        let read = {
            let (commits, poison) = (Arc::clone(&commits), Arc::clone(&poison));
            tokio::spawn(async move { commits.settled(&poison).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        *poison.lock().expect("lock") = Some("flush failed".into());
        commits.poisoned();
        let answered = read.await.expect("read");
        assert!(
            matches!(answered, Err(Error::Poisoned { .. })),
            "{answered:?}"
        );
        // Later reads too.
        let again = commits.settled(&poison).await;
        assert!(matches!(again, Err(Error::Poisoned { .. })), "{again:?}");
    }
}
