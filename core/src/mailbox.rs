//! Mailboxes: the channel between an actor's references and its task.
//!
//! User messages travel on a bounded or unbounded tokio channel; system
//! messages (stop, watch, terminated, failure notices) travel on a separate
//! channel (`system_channel`) that the actor checks before each user
//! message, so a stop overtakes any backlog. Both channels are FIFO, which
//! is what gives per sender–receiver ordering. The actor parks on the
//! mailbox alone; a system message wakes it through a waker of its own.

use tokio::sync::mpsc;

use crate::adapter::Adapted;
use crate::error::{Error, Result};

/// The kind and capacity of an actor's user mailbox.
///
/// # Examples
///
/// ```
/// use courier::Mailbox;
///
/// let bounded = Mailbox::bounded(1024);
/// assert_eq!(bounded.capacity(), Some(1024));
/// assert_eq!(Mailbox::unbounded().capacity(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mailbox {
    /// No limit: `tell` always enqueues while the actor lives.
    #[default]
    Unbounded,
    /// At most this many queued messages: `tell` on a full mailbox makes a
    /// dead letter, `try_tell` hands the message back, `send` waits.
    Bounded(usize),
}

impl Mailbox {
    /// An unbounded mailbox (the default).
    pub fn unbounded() -> Self {
        Self::Unbounded
    }

    /// A mailbox that holds at most `capacity` messages.
    pub fn bounded(capacity: usize) -> Self {
        Self::Bounded(capacity)
    }

    /// The capacity, or `None` when unbounded.
    pub fn capacity(&self) -> Option<usize> {
        match self {
            Self::Unbounded => None,
            Self::Bounded(c) => Some(*c),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            Self::Bounded(0) => Err(Error::InvalidConfig {
                setting: "mailbox capacity",
                reason: "a bounded mailbox needs a capacity of at least 1".into(),
            }),
            Self::Bounded(c) if *c > MAX_CAPACITY => Err(Error::InvalidConfig {
                setting: "mailbox capacity",
                reason: format!("{c} is above the maximum of {MAX_CAPACITY}"),
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn channel<M>(&self) -> (MailboxSender<M>, MailboxReceiver<M>) {
        match self {
            Self::Unbounded => {
                let (tx, rx) = mpsc::unbounded_channel();
                (MailboxSender::Unbounded(tx), MailboxReceiver::Unbounded(rx))
            }
            Self::Bounded(capacity) => {
                let (tx, rx) = mpsc::channel(*capacity);
                (MailboxSender::Bounded(tx), MailboxReceiver::Bounded(rx))
            }
        }
    }
}

/// tokio's bounded channel refuses capacities above this.
const MAX_CAPACITY: usize = usize::MAX >> 3;

/// What travels in a user mailbox.
pub(crate) enum Envelope<M> {
    User(M),
    /// A message from one of the actor's own timers; dropped on arrival if
    /// the timer was cancelled after it fired.
    Timer {
        key: u64,
        repeat: bool,
        msg: M,
    },
    /// A message sent through a message adapter, mapped into `M` when the
    /// actor takes it (boxed: only adapted messages pay for it).
    Adapted(Box<dyn Adapted<M>>),
}

impl<M> Envelope<M> {
    pub(crate) fn into_msg(self) -> M {
        match self {
            Self::User(m) | Self::Timer { msg: m, .. } => m,
            Self::Adapted(adapted) => adapted.into_msg(),
        }
    }
}

pub(crate) enum MailboxSender<M> {
    Bounded(mpsc::Sender<Envelope<M>>),
    Unbounded(mpsc::UnboundedSender<Envelope<M>>),
}

pub(crate) enum TryEnqueueError<M> {
    Full(M),
    Closed(M),
}

impl<M> MailboxSender<M> {
    pub(crate) fn try_send(&self, env: Envelope<M>) -> Result<(), TryEnqueueError<Envelope<M>>> {
        match self {
            Self::Bounded(tx) => tx.try_send(env).map_err(|e| match e {
                mpsc::error::TrySendError::Full(env) => TryEnqueueError::Full(env),
                mpsc::error::TrySendError::Closed(env) => TryEnqueueError::Closed(env),
            }),
            Self::Unbounded(tx) => tx.send(env).map_err(|e| TryEnqueueError::Closed(e.0)),
        }
    }

    /// Waits for room in a bounded mailbox; `Err` hands the envelope back if
    /// the actor has stopped.
    pub(crate) async fn send(&self, env: Envelope<M>) -> Result<(), Envelope<M>> {
        match self {
            Self::Bounded(tx) => tx.send(env).await.map_err(|e| e.0),
            Self::Unbounded(tx) => tx.send(env).map_err(|e| e.0),
        }
    }
}

pub(crate) enum MailboxReceiver<M> {
    Bounded(mpsc::Receiver<Envelope<M>>),
    Unbounded(mpsc::UnboundedReceiver<Envelope<M>>),
}

/// How many messages an unbounded mailbox hands over per wake-up. A bounded
/// mailbox takes one at a time so that its capacity stays exact.
const UNBOUNDED_BATCH: usize = 64;

impl<M> MailboxReceiver<M> {
    /// Moves the next envelopes into `batch` (which must be empty), in
    /// reverse order so that `batch.pop()` takes them in mailbox order; or
    /// registers the task of `cx` to be woken when one arrives.
    /// `Ready(false)` means closed and empty.
    ///
    /// Like every tokio receive, this spends the task's coop budget, so a
    /// busy actor still yields to the other tasks of its worker.
    #[inline]
    pub(crate) fn poll_recv_into(
        &mut self,
        cx: &mut std::task::Context<'_>,
        batch: &mut Vec<Envelope<M>>,
    ) -> std::task::Poll<bool> {
        use std::task::Poll;
        match self {
            Self::Bounded(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(env)) => {
                    batch.push(env);
                    Poll::Ready(true)
                }
                Poll::Ready(None) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            },
            Self::Unbounded(rx) => match rx.poll_recv_many(cx, batch, UNBOUNDED_BATCH) {
                Poll::Ready(n) => {
                    batch.reverse();
                    Poll::Ready(n > 0)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    /// The next envelope of a [closed](Self::close) mailbox, `None` once
    /// none is left and none can come: a send in flight at the close
    /// (accepted, so answered `Ok`, but not yet in the queue) is waited
    /// for, so that it becomes a dead letter rather than vanish.
    pub(crate) fn poll_recv_closed(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Envelope<M>>> {
        match self {
            Self::Bounded(rx) => {
                debug_assert!(rx.is_closed(), "waits for every sender otherwise");
                rx.poll_recv(cx)
            }
            Self::Unbounded(rx) => {
                debug_assert!(rx.is_closed(), "waits for every sender otherwise");
                rx.poll_recv(cx)
            }
        }
    }

    /// Takes what is queued now, without waiting for sends in flight: only
    /// for an actor torn down with its runtime, where nothing can be
    /// awaited.
    pub(crate) fn try_recv(&mut self) -> Option<Envelope<M>> {
        match self {
            Self::Bounded(rx) => rx.try_recv().ok(),
            Self::Unbounded(rx) => rx.try_recv().ok(),
        }
    }

    pub(crate) fn close(&mut self) {
        match self {
            Self::Bounded(rx) => rx.close(),
            Self::Unbounded(rx) => rx.close(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Envelope, Mailbox};
    use std::future::Future;
    use std::task::{Context, Waker};
    use std::time::Duration;

    /// An actor's final drain (`poll_recv_closed` until `None`) ends when a
    /// `send` that was granted the last free place is dropped before it
    /// claims it: the one way a closed bounded mailbox could be left with
    /// a permit out and no wake-up. tokio wakes the receiver then since
    /// 1.53 (tokio#8260, hence the workspace's minimum); before, this drain
    /// waited forever and so did the actor's stop.
    #[tokio::test]
    async fn the_drain_ends_when_a_granted_send_is_dropped_unclaimed() {
        let (tx, mut rx) = Mailbox::bounded(1).channel::<u32>();
        assert!(tx.try_send(Envelope::User(1)).is_ok());
        let mut cx = Context::from_waker(Waker::noop());
        let mut send = Box::pin(tx.send(Envelope::User(2)));
        // The mailbox is full: the send queues for a place.
        assert!(send.as_mut().poll(&mut cx).is_pending());
        // Taking the first message grants the freed place to that send.
        assert!(matches!(rx.try_recv(), Some(Envelope::User(1))));
        rx.close();
        let mut drain = tokio::spawn(async move {
            std::future::poll_fn(|cx| rx.poll_recv_closed(cx))
                .await
                .map(Envelope::into_msg)
        });
        // Let the drain see the place still out, and park.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !drain.is_finished(),
            "the drain ended with a send still in flight"
        );
        // `tx` stays alive: an actor has other references, and dropping the
        // last sender would wake the receiver for another reason.
        drop(send);
        match tokio::time::timeout(Duration::from_secs(10), &mut drain).await {
            Ok(Ok(next)) => assert_eq!(next, None, "the dropped send delivered nothing"),
            Ok(Err(e)) => panic!("the drain task failed: {e}"),
            Err(_) => panic!("the drain was not woken when the place went back"),
        }
        drop(tx);
    }
}
