//! Ask timeouts without a tokio timer per ask.
//!
//! Wrapping each ask in `tokio::time::timeout` inserts an entry into tokio's
//! timer wheel under its lock, removes it again under the lock, and wakes the
//! time driver whenever the new deadline is its earliest: about a third of
//! a local round trip (see `docs/benchmarks.md`). Instead, an ask puts its
//! deadline and waker into the system's [`Deadlines`] table, and one reaper
//! task, running only while asks are pending, wakes the asks whose deadline
//! has passed. A timeout therefore fires up to one [`TICK`] late.
//!
//! Deadlines use `tokio::time::Instant`, so paused test time applies.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use crate::sync;

/// How often the reaper looks for expired asks while any are pending.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// The deadline table of one actor system.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    live: usize,
    reaper_running: bool,
}

#[derive(Debug)]
struct Slot {
    deadline: Instant,
    waker: Waker,
    expired: bool,
}

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

impl Deadlines {
    /// Awaits `fut` for at most `timeout` (plus up to one [`TICK`]).
    /// Must run within a tokio runtime.
    pub(crate) async fn timeout<F: Future>(
        self: &Arc<Self>,
        timeout: Duration,
        fut: F,
    ) -> Result<F::Output, Elapsed> {
        let fut = std::pin::pin!(fut);
        Timeout {
            deadlines: self,
            fut,
            // A timeout too far away to represent never fires.
            deadline: Instant::now().checked_add(timeout),
            key: None,
        }
        .await
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        sync::lock(&self.table)
    }

    #[cfg(test)]
    fn live(&self) -> usize {
        self.lock().live
    }
}

/// One pending ask: its entry is removed when it completes or is dropped.
struct Timeout<'a, F> {
    deadlines: &'a Arc<Deadlines>,
    fut: Pin<&'a mut F>,
    deadline: Option<Instant>,
    key: Option<usize>,
}

impl<F: Future> Future for Timeout<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(value) = this.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let mut table = this.deadlines.lock();
        match this.key {
            None => {
                this.key = Some(table.insert(deadline, cx.waker().clone()));
                if !table.reaper_running {
                    table.reaper_running = true;
                    tokio::spawn(reap(Arc::clone(this.deadlines)));
                }
            }
            Some(k) => {
                if let Some(slot) = table.slots.get_mut(k).and_then(Option::as_mut) {
                    if slot.expired {
                        return Poll::Ready(Err(Elapsed));
                    }
                    if !slot.waker.will_wake(cx.waker()) {
                        slot.waker.clone_from(cx.waker());
                    }
                }
            }
        }
        Poll::Pending
    }
}

impl<F> Drop for Timeout<'_, F> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.deadlines.lock().remove(k);
        }
    }
}

impl Table {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> usize {
        let slot = Some(Slot {
            deadline,
            waker,
            expired: false,
        });
        self.live += 1;
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
        if self.slots.get_mut(k).and_then(Option::take).is_some() {
            self.live -= 1;
            self.free.push(k);
        }
    }
}

/// Wakes expired asks every tick (or at the earliest deadline, if sooner)
/// and ends once no ask is pending.
async fn reap(deadlines: Arc<Deadlines>) {
    let mut running = Running {
        deadlines: &deadlines,
        armed: true,
    };
    loop {
        let next = {
            let mut table = deadlines.lock();
            if table.live == 0 {
                table.reaper_running = false;
                running.armed = false;
                table.slots.clear();
                table.free.clear();
                return;
            }
            let now = Instant::now();
            let mut earliest: Option<Instant> = None;
            for slot in table.slots.iter_mut().flatten() {
                if slot.expired {
                    continue;
                }
                if slot.deadline <= now {
                    slot.expired = true;
                    slot.waker.wake_by_ref();
                } else {
                    earliest = Some(earliest.map_or(slot.deadline, |e| e.min(slot.deadline)));
                }
            }
            let tick = now + TICK;
            earliest.map_or(tick, |e| e.min(tick))
        };
        tokio::time::sleep_until(next).await;
    }
}

/// Clears `reaper_running` when the reaper is dropped before it finished:
/// its runtime shut down while asks were pending. A system outlives a
/// runtime, so the next ask (on another runtime) must start a new reaper,
/// or it would never time out.
struct Running<'a> {
    deadlines: &'a Deadlines,
    armed: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.deadlines.lock().reaper_running = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn completes_before_the_deadline() {
        let deadlines = Arc::new(Deadlines::default());
        let out = deadlines.timeout(Duration::from_secs(1), async { 7 }).await;
        assert_eq!(out, Ok(7));
        assert_eq!(deadlines.live(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn expires_after_the_deadline_and_not_before() {
        let deadlines = Arc::new(Deadlines::default());
        let start = Instant::now();
        let out = deadlines
            .timeout(Duration::from_millis(100), std::future::pending::<()>())
            .await;
        assert_eq!(out, Err(Elapsed));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited <= Duration::from_millis(100) + TICK, "{waited:?}");
        assert_eq!(deadlines.live(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn any_timeout_is_accepted_without_overflow() {
        // Unrepresentable, representable but centuries away, and the timer
        // bound: none may panic the asker or the reaper.
        for timeout in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 4),
            crate::MAX_TIMER_DELAY,
        ] {
            let deadlines = Arc::new(Deadlines::default());
            let out = deadlines
                .timeout(timeout, async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    7
                })
                .await;
            assert_eq!(out, Ok(7), "{timeout:?}");
            assert_eq!(deadlines.live(), 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_ask_leaves_no_entry() {
        let deadlines = Arc::new(Deadlines::default());
        let fut = deadlines.timeout(Duration::from_secs(5), std::future::pending::<()>());
        let raced = tokio::time::timeout(Duration::from_millis(10), fut).await;
        assert!(raced.is_err());
        assert_eq!(deadlines.live(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn many_asks_expire_each_at_its_own_deadline() {
        let deadlines = Arc::new(Deadlines::default());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for ms in [50u64, 10, 200, 30] {
            let d = Arc::clone(&deadlines);
            tasks.push(tokio::spawn(async move {
                let r = d
                    .timeout(Duration::from_millis(ms), std::future::pending::<()>())
                    .await;
                (ms, r, start.elapsed())
            }));
        }
        for t in tasks {
            let (ms, r, waited) = t.await.expect("task");
            assert_eq!(r, Err(Elapsed));
            assert!(waited >= Duration::from_millis(ms), "{ms}: {waited:?}");
            assert!(
                waited <= Duration::from_millis(ms) + TICK,
                "{ms}: {waited:?}"
            );
        }
    }
}
