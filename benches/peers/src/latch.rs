//! [`Latch`]: a count-down latch, so that the spawn benches can wait until
//! every actor of a batch has run its start hook.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Opens once [`count_down`](Self::count_down) has been called `n` times.
#[derive(Clone, Debug)]
pub struct Latch(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    left: AtomicUsize,
    open: Notify,
}

impl Latch {
    /// A latch that opens after `n` count-downs.
    pub fn new(n: usize) -> Self {
        Self(Arc::new(Inner {
            left: AtomicUsize::new(n),
            open: Notify::new(),
        }))
    }

    /// Counts one down; the last one opens the latch.
    pub fn count_down(&self) {
        if self.0.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            // `notify_one` keeps a permit when nobody waits yet, so a waiter
            // that checks `left` just before this still wakes.
            self.0.open.notify_one();
        }
    }

    /// Resolves once the latch is open.
    pub async fn wait(&self) {
        if self.0.left.load(Ordering::Acquire) == 0 {
            return;
        }
        self.0.open.notified().await;
    }
}
