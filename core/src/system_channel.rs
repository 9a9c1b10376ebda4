//! The system channel: an actor's stop, watch and failure notices, kept
//! apart from its user mailbox so that they overtake the user backlog.
//!
//! The actor parks on one thing, its mailbox, and checks one flag before
//! each user message; a system message sets the flag and wakes the actor
//! itself. So the per-message cost of the system channel is one atomic
//! load, and parking registers the actor's waker with the mailbox and with
//! one [`AtomicWaker`] here instead of polling a second channel.
//!
//! Invariants (what makes a system message impossible to miss):
//! - a sender pushes the message, *then* sets `pending`, *then* wakes: so
//!   whoever sees `pending` set also sees the message;
//! - the receiver clears `pending` with an atomic swap, *then* takes from
//!   the queue, and sets `pending` again whenever it took something (there
//!   may be more): so a message pushed after the queue was found empty has
//!   its own `pending` set still ahead of it;
//! - a parking receiver registers its waker, *then* reads `pending`: a
//!   sender that set it after that read wakes the registered waker
//!   ([`AtomicWaker`]'s contract), one that set it before is seen by it;
//! - a system message sent before a user message (happens-before, for
//!   example both from one task) is taken before that user message: the
//!   actor received the user message through the mailbox, which orders it
//!   after the sender's store to `pending`.
//!
//! The queue itself is a tokio unbounded channel (FIFO, closable: after
//! [`SystemReceiver::close`] a send fails and hands the message back, as
//! the watch logic needs).

use std::fmt;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

#[cfg(not(all(test, courier_loom)))]
use futures_util::task::AtomicWaker;
#[cfg(not(all(test, courier_loom)))]
use std::sync::Arc;
#[cfg(not(all(test, courier_loom)))]
use std::sync::atomic::{AtomicBool, Ordering};

// Under the loom model (see `loom_tests`) the waker is loom's and the flag a
// loom mutex, so that loom explores every interleaving of the protocol's
// steps; the queue stays tokio's, whose operations loom sees as single
// steps. The flag is a mutex there, not loom's `AtomicBool`: loom 0.7.3's
// atomics can answer a read-modify-write with a value older than a store
// that happens-before it (a two-line model of that fails under loom), and
// so report deadlocks that the memory model rules out. The orderings
// themselves are argued in the module docs above.
#[cfg(all(test, courier_loom))]
use loom::future::AtomicWaker;
#[cfg(all(test, courier_loom))]
use loom::sync::Arc;
#[cfg(all(test, courier_loom))]
use std::sync::atomic::Ordering;

/// The flag under loom: every access one step, in one order.
#[cfg(all(test, courier_loom))]
struct AtomicBool(loom::sync::Mutex<bool>);

#[cfg(all(test, courier_loom))]
impl AtomicBool {
    fn new(value: bool) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    fn flag(&self) -> loom::sync::MutexGuard<'_, bool> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn load(&self, _: Ordering) -> bool {
        *self.flag()
    }

    fn store(&self, value: bool, _: Ordering) {
        *self.flag() = value;
    }

    fn swap(&self, value: bool, _: Ordering) -> bool {
        std::mem::replace(&mut *self.flag(), value)
    }

    fn fetch_or(&self, value: bool, _: Ordering) -> bool {
        let mut flag = self.flag();
        let old = *flag;
        *flag |= value;
        old
    }
}

use crate::watcher::SystemMsg;

/// What a sender tells the receiving actor besides the message.
struct Signal {
    /// Set after each push; cleared by the actor before it takes from the
    /// queue: "there may be a system message".
    pending: AtomicBool,
    /// The actor's task, while it is parked.
    waker: AtomicWaker,
}

/// A new system channel for one actor.
pub(crate) fn system_channel() -> (SystemSender, SystemReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let signal = Arc::new(Signal {
        pending: AtomicBool::new(false),
        waker: AtomicWaker::new(),
    });
    (
        SystemSender {
            tx,
            signal: Arc::clone(&signal),
        },
        SystemReceiver { rx, signal },
    )
}

/// The sending half: cheap to clone, held by the actor's references, its
/// parent, its children and its watchers.
#[derive(Clone)]
pub(crate) struct SystemSender {
    tx: mpsc::UnboundedSender<SystemMsg>,
    signal: Arc<Signal>,
}

impl SystemSender {
    /// Queues `msg` and wakes the actor.
    ///
    /// # Errors
    ///
    /// Hands the message back when the actor has stopped (its receiver is
    /// closed).
    pub(crate) fn send(&self, msg: SystemMsg) -> Result<(), mpsc::error::SendError<SystemMsg>> {
        self.tx.send(msg)?;
        self.signal.pending.store(true, Ordering::Release);
        self.signal.waker.wake();
        Ok(())
    }
}

impl fmt::Debug for SystemSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemSender")
            .field("closed", &self.tx.is_closed())
            .finish_non_exhaustive()
    }
}

/// The actor's half.
pub(crate) struct SystemReceiver {
    rx: mpsc::UnboundedReceiver<SystemMsg>,
    signal: Arc<Signal>,
}

impl SystemReceiver {
    /// The next system message, if one is queued: one atomic load when
    /// none is, which is the check before every user message.
    #[inline]
    pub(crate) fn try_recv(&mut self) -> Option<SystemMsg> {
        if !self.signal.pending.load(Ordering::Acquire) {
            return None;
        }
        self.take()
    }

    #[cold]
    #[inline(never)]
    fn take(&mut self) -> Option<SystemMsg> {
        // A swap, not a store: the queue is read only after the flag is
        // cleared, never before (see the module docs).
        if !self.signal.pending.swap(false, Ordering::AcqRel) {
            return None;
        }
        let msg = self.rx.try_recv().ok()?;
        // There may be more behind it: look again next time.
        self.signal.pending.store(true, Ordering::Relaxed);
        Some(msg)
    }

    /// Whether a system message may be waiting, after registering the
    /// task of `cx` to be woken when one is sent: what a parking actor
    /// calls once its mailbox is empty.
    pub(crate) fn poll_pending(&mut self, cx: &mut Context<'_>) -> bool {
        #[cfg(not(all(test, courier_loom)))]
        self.signal.waker.register(cx.waker());
        #[cfg(all(test, courier_loom))]
        self.signal.waker.register_by_ref(cx.waker());
        // A read-modify-write, not a load: it reads the newest value of the
        // flag, so a parking actor never decides on a stale `false`.
        self.signal.pending.fetch_or(false, Ordering::AcqRel)
    }

    /// Waits for the next system message.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<SystemMsg> {
        loop {
            if let Some(msg) = self.try_recv() {
                return Poll::Ready(msg);
            }
            if !self.poll_pending(cx) {
                return Poll::Pending;
            }
        }
    }

    /// Closes the channel: later sends fail and hand their message back.
    /// Messages already queued stay for [`drain`](Self::drain).
    pub(crate) fn close(&mut self) {
        self.rx.close();
    }

    /// The next message of the [closed](Self::close) channel, whatever
    /// the flag says, `None` once none is left and none can come: a send
    /// in flight at the close (counted by the channel, so answered `Ok`,
    /// but not yet in its queue) is waited for. For the end of the actor's
    /// life.
    pub(crate) fn poll_recv_closed(&mut self, cx: &mut Context<'_>) -> Poll<Option<SystemMsg>> {
        debug_assert!(self.rx.is_closed(), "waits for every sender otherwise");
        self.rx.poll_recv(cx)
    }

    /// Takes what is queued now, without waiting for sends in flight: only
    /// for an actor torn down with its runtime, where nothing can be
    /// awaited (see [`poll_recv_closed`](Self::poll_recv_closed)).
    pub(crate) fn drain_now(&mut self) -> impl Iterator<Item = SystemMsg> + '_ {
        std::iter::from_fn(|| self.rx.try_recv().ok())
    }
}

#[cfg(all(test, not(courier_loom)))]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn stop_n(n: u64) -> SystemMsg {
        SystemMsg::ChildTerminated { uid: n }
    }

    fn uid(msg: SystemMsg) -> u64 {
        match msg {
            SystemMsg::ChildTerminated { uid } => uid,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn messages_come_out_in_order_and_the_flag_clears() {
        let (tx, mut rx) = system_channel();
        assert!(rx.try_recv().is_none());
        for n in 0..3 {
            tx.send(stop_n(n)).expect("open");
        }
        let got: Vec<u64> = std::iter::from_fn(|| rx.try_recv()).map(uid).collect();
        assert_eq!(got, [0, 1, 2]);
        assert!(!rx.signal.pending.load(Ordering::SeqCst));
    }

    #[test]
    fn a_parked_receiver_is_woken_by_a_send() {
        let (tx, mut rx) = system_channel();
        let counting = Arc::new(Counting::default());
        let waker = Waker::from(Arc::clone(&counting));
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.send(stop_n(7)).expect("open");
        assert_eq!(counting.0.load(Ordering::SeqCst), 1);
        let Poll::Ready(msg) = rx.poll_recv(&mut cx) else {
            panic!("the sent message must be ready");
        };
        assert_eq!(uid(msg), 7);
        assert!(rx.poll_recv(&mut cx).is_pending());
    }

    #[test]
    fn a_closed_channel_hands_the_message_back_and_keeps_the_queued() {
        let (tx, mut rx) = system_channel();
        tx.send(stop_n(1)).expect("open");
        rx.close();
        let back = tx.send(stop_n(2)).expect_err("closed");
        assert_eq!(uid(back.0), 2);
        assert_eq!(rx.drain_now().map(uid).collect::<Vec<_>>(), [1]);
    }

    /// Senders on several threads against a receiver that parks whenever
    /// it finds nothing: every message arrives, each sender's in order,
    /// and the receiver is never left parked with a message queued (the
    /// test would hang). Repeated, with the receiver pausing now and then
    /// so that the queue is sometimes long and sometimes empty, so that
    /// the interleavings vary.
    #[test]
    fn concurrent_senders_never_leave_a_message_behind() {
        const SENDERS: u64 = 3;
        const EACH: u64 = 2_000;
        for round in 0..200 {
            let (tx, mut rx) = system_channel();
            let threads: Vec<_> = (0..SENDERS)
                .map(|s| {
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        for n in 0..EACH {
                            tx.send(stop_n(s * EACH + n)).expect("open");
                            if (n + s) % 97 == 0 {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut next = [0u64; SENDERS as usize];
            let mut received = 0;
            let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
            let mut cx = Context::from_waker(&waker);
            while received < SENDERS * EACH {
                match rx.poll_recv(&mut cx) {
                    Poll::Ready(msg) => {
                        let n = uid(msg);
                        let s = (n / EACH) as usize;
                        assert_eq!(n % EACH, next[s], "sender {s} out of order");
                        next[s] += 1;
                        received += 1;
                        if (received + round) % 211 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    // A lost wake-up parks this thread for good: the test
                    // hangs rather than passes.
                    Poll::Pending => std::thread::park(),
                }
            }
            for t in threads {
                t.join().expect("sender panicked");
            }
            assert!(rx.try_recv().is_none());
        }
    }

    /// Senders on several threads keep sending while the receiver closes
    /// and drains: every send that returned `Ok` is taken by the drain (a
    /// send in flight at the close, counted by the channel but not yet in
    /// its queue, must not be left behind), every other send was handed
    /// back. Repeated so that the close lands at varying points.
    #[test]
    fn a_drain_after_close_takes_every_accepted_send() {
        use std::sync::atomic::AtomicU64;
        const SENDERS: usize = 3;
        for round in 0..400u64 {
            let (tx, mut rx) = system_channel();
            let accepted = Arc::new(AtomicU64::new(0));
            let go = Arc::new(std::sync::Barrier::new(SENDERS + 1));
            let threads: Vec<_> = (0..SENDERS)
                .map(|_| {
                    let (tx, accepted, go) = (tx.clone(), Arc::clone(&accepted), Arc::clone(&go));
                    std::thread::spawn(move || {
                        go.wait();
                        while tx.send(stop_n(0)).is_ok() {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            drop(tx);
            go.wait();
            let mut taken = 0u64;
            for _ in 0..(round % 50) {
                if rx.try_recv().is_some() {
                    taken += 1;
                }
            }
            rx.close();
            let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
            let mut cx = Context::from_waker(&waker);
            loop {
                match rx.poll_recv_closed(&mut cx) {
                    Poll::Ready(Some(_)) => taken += 1,
                    Poll::Ready(None) => break,
                    Poll::Pending => std::thread::park(),
                }
            }
            for t in threads {
                t.join().expect("sender panicked");
            }
            assert_eq!(
                taken,
                accepted.load(Ordering::SeqCst),
                "round {round}: an accepted send was left in the closed channel"
            );
        }
    }

    struct Unpark(std::thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
}

/// The protocol under loom: every interleaving of two senders and a
/// receiver that parks when it finds nothing. A lost wake-up is a deadlock
/// to loom, a stranded message a failed assertion.
#[cfg(all(test, courier_loom))]
mod loom_tests {
    use std::future::poll_fn;

    use super::*;

    fn uid(msg: SystemMsg) -> u64 {
        match msg {
            SystemMsg::ChildTerminated { uid } => uid,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn two_senders_and_a_parking_receiver() {
        loom::model(|| {
            let (tx, mut rx) = system_channel();
            let senders: Vec<_> = (1..=2)
                .map(|n| {
                    let tx = tx.clone();
                    loom::thread::spawn(move || {
                        tx.send(SystemMsg::ChildTerminated { uid: n })
                            .expect("open");
                    })
                })
                .collect();
            let mut got: Vec<u64> = (0..2)
                .map(|_| uid(loom::future::block_on(poll_fn(|cx| rx.poll_recv(cx)))))
                .collect();
            for sender in senders {
                sender.join().expect("sender panicked");
            }
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            assert!(rx.try_recv().is_none());
        });
    }

    /// One sender sends twice; the receiver takes with `try_recv` between
    /// parks, as the actor does before each user message.
    #[test]
    fn messages_sent_back_to_back_are_all_taken() {
        loom::model(|| {
            let (tx, mut rx) = system_channel();
            let sender = loom::thread::spawn(move || {
                for n in 1..=2 {
                    tx.send(SystemMsg::ChildTerminated { uid: n })
                        .expect("open");
                }
            });
            let mut got = Vec::new();
            while got.len() < 2 {
                match rx.try_recv() {
                    Some(msg) => got.push(uid(msg)),
                    None => got.push(uid(loom::future::block_on(poll_fn(|cx| rx.poll_recv(cx))))),
                }
            }
            sender.join().expect("sender panicked");
            assert_eq!(got, [1, 2]);
        });
    }
}
