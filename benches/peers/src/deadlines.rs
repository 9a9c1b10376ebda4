//! [`Deadlines`]: ask timeouts without a tokio timer per ask.
//!
//! A model of a change suggested for courier's `ask` (see
//! `docs/benchmarks.md`): instead of wrapping each ask in
//! `tokio::time::timeout`, which inserts an entry into tokio's timer wheel
//! under its lock, removes it again under the lock, and wakes the time
//! driver whenever the new deadline is its earliest, an ask puts its
//! deadline and waker into one shared table. A single reaper task ticks every
//! [`TICK`] while the table lives and wakes the asks whose deadline has
//! passed, so timeouts fire up to one tick late.
//!
//! Kept deliberately small: a `Mutex<Vec>` with a free list, and a reaper
//! that scans the whole table each tick (fine while few asks are in flight;
//! a real one would bucket by tick).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How often the reaper looks for expired asks: a timeout fires up to this
/// late.
pub const TICK: Duration = Duration::from_millis(10);

/// The shared deadline table of one system.
#[derive(Debug, Default)]
pub struct Deadlines {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
}

#[derive(Debug)]
struct Slot {
    deadline: Instant,
    waker: Waker,
    expired: bool,
}

/// The ask ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl Deadlines {
    /// A table with its reaper task, which ends once the table is dropped.
    /// Must be called within a tokio runtime.
    pub fn start() -> Arc<Self> {
        let deadlines = Arc::new(Self::default());
        tokio::spawn(reap(Arc::downgrade(&deadlines)));
        deadlines
    }

    /// Awaits `reply` for at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Elapsed`] once the deadline has passed (up to one [`TICK`] late).
    pub async fn timeout<F: Future + Unpin>(
        &self,
        timeout: Duration,
        mut reply: F,
    ) -> Result<F::Output, Elapsed> {
        let deadline = Instant::now() + timeout;
        let mut key = None;
        let outcome = poll_fn(|cx| {
            if let Poll::Ready(value) = Pin::new(&mut reply).poll(cx) {
                return Poll::Ready(Ok(value));
            }
            let mut table = self.lock();
            match key {
                None => key = Some(table.insert(deadline, cx.waker().clone())),
                Some(k) => {
                    if let Some(slot) = table.slots[k].as_mut() {
                        if slot.expired {
                            return Poll::Ready(Err(Elapsed));
                        }
                        slot.waker.clone_from(cx.waker());
                    }
                }
            }
            Poll::Pending
        })
        .await;
        if let Some(k) = key {
            self.lock().remove(k);
        }
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Table {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> usize {
        let slot = Some(Slot {
            deadline,
            waker,
            expired: false,
        });
        match self.free.pop() {
            Some(k) => {
                self.slots[k] = slot;
                k
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, k: usize) {
        if self.slots[k].take().is_some() {
            self.free.push(k);
        }
    }
}

async fn reap(deadlines: Weak<Deadlines>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(deadlines) = deadlines.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut table = deadlines.lock();
        for slot in table.slots.iter_mut().flatten() {
            if !slot.expired && slot.deadline <= now {
                slot.expired = true;
                slot.waker.wake_by_ref();
            }
        }
    }
}
