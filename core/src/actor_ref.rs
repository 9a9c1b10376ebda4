//! [`ActorRef`]: the handle through which everything talks to an actor.
//!
//! A reference sends either into a local mailbox or into a
//! [`MessageSink`] that another crate supplies (a remote transport), so code
//! written against `ActorRef<M>` works unchanged for both. Every local send
//! either enqueues the message or turns it into a dead letter; nothing is
//! dropped silently.

use std::any::type_name;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetters};
use crate::deadlines::Deadlines;
use crate::error::{Error, Result, SendError, TryTellError};
use crate::mailbox::{Envelope, MailboxSender, TryEnqueueError};
use crate::path::ActorPath;
use crate::watcher::{SystemMsg, SystemSender, Watcher, WatcherId};

/// A boxed future, as returned by [`MessageSink::send`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A destination for messages that is not a local mailbox: the extension
/// point for transports.
///
/// Implementors own delivery from here on, and report what they cannot
/// deliver through their return values (`ActorRef` turns a failed `tell`
/// into a dead letter) or through
/// [`ActorSystem::publish_dead_letter`](crate::ActorSystem::publish_dead_letter).
pub trait MessageSink<M>: Send + Sync + 'static {
    /// The path this sink delivers to.
    fn path(&self) -> &ActorPath;

    /// The incarnation of the actor behind the sink, used to match
    /// `Terminated` notices to watches (0 if unknown).
    fn uid(&self) -> u64 {
        0
    }

    /// Enqueues without waiting.
    ///
    /// # Errors
    ///
    /// Hands the message back when it cannot be enqueued.
    fn try_tell(&self, msg: M) -> Result<(), TryTellError<M>>;

    /// Enqueues, waiting for room if the sink applies back-pressure.
    ///
    /// # Errors
    ///
    /// Hands the message back when the destination is gone.
    fn send(&self, msg: M) -> BoxFuture<'_, Result<(), SendError<M>>>;

    /// Asks the actor behind the sink to stop.
    fn stop(&self);

    /// Registers `watcher`, to be notified once when the actor stops or
    /// becomes unreachable.
    fn watch(&self, watcher: Watcher);

    /// Unregisters a watcher.
    fn unwatch(&self, watcher: WatcherId);
}

/// The local half of a reference: the actor's mailbox and system channel.
pub(crate) struct LocalCell<M> {
    pub(crate) path: ActorPath,
    pub(crate) uid: u64,
    pub(crate) mailbox: MailboxSender<M>,
    pub(crate) sys: SystemSender,
    pub(crate) dead_letters: Arc<DeadLetters>,
    pub(crate) deadlines: Arc<Deadlines>,
    pub(crate) terminated: watch::Sender<bool>,
}

impl<M> LocalCell<M> {
    pub(crate) fn dead_letter(&self, reason: DeadLetterReason) {
        self.dead_letters.publish(DeadLetter {
            recipient: self.path.clone(),
            message_type: type_name::<M>(),
            reason,
        });
    }
}

impl<M: Send + 'static> LocalCell<M> {
    /// A dead letter that still has its message.
    pub(crate) fn dead_message(
        &self,
        reason: DeadLetterReason,
        sender: Option<ActorPath>,
        message: M,
    ) {
        let letter = DeadLetter {
            recipient: self.path.clone(),
            message_type: type_name::<M>(),
            reason,
        };
        self.dead_letters.publish_message(letter, sender, message);
    }
}

struct SinkRef<M> {
    sink: Arc<dyn MessageSink<M>>,
    dead_letters: Arc<DeadLetters>,
    deadlines: Arc<Deadlines>,
}

enum Inner<M> {
    Local(Arc<LocalCell<M>>),
    Sink(Arc<SinkRef<M>>),
}

/// A handle to an actor that takes messages of type `M`. Cheap to clone.
///
/// - [`tell`](Self::tell): fire and forget, never waits; an undeliverable
///   message becomes a dead letter.
/// - [`try_tell`](Self::try_tell): like `tell`, but hands the message back.
/// - [`send`](Self::send): waits for room in a bounded mailbox.
/// - [`ask`](Self::ask): request and reply, with a timeout.
///
/// Messages sent from one sender to one actor arrive in send order.
pub struct ActorRef<M> {
    inner: Inner<M>,
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Inner::Local(cell) => Inner::Local(Arc::clone(cell)),
            Inner::Sink(sink) => Inner::Sink(Arc::clone(sink)),
        };
        Self { inner }
    }
}

impl<M: 'static> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({})", self.path())
    }
}

impl<M: 'static> PartialEq for ActorRef<M> {
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path() && self.uid() == other.uid()
    }
}

impl<M: 'static> Eq for ActorRef<M> {}

impl<M: 'static> ActorRef<M> {
    /// The actor's path.
    pub fn path(&self) -> &ActorPath {
        match &self.inner {
            Inner::Local(cell) => &cell.path,
            Inner::Sink(s) => s.sink.path(),
        }
    }

    fn deadlines(&self) -> &Arc<Deadlines> {
        match &self.inner {
            Inner::Local(cell) => &cell.deadlines,
            Inner::Sink(s) => &s.deadlines,
        }
    }

    pub(crate) fn uid(&self) -> u64 {
        match &self.inner {
            Inner::Local(cell) => cell.uid,
            Inner::Sink(s) => s.sink.uid(),
        }
    }
}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn local(cell: Arc<LocalCell<M>>) -> Self {
        Self {
            inner: Inner::Local(cell),
        }
    }

    /// A reference that delivers through `sink`, reporting undeliverable
    /// messages on `system`'s dead letters.
    pub fn from_sink(system: &crate::ActorSystem, sink: Arc<dyn MessageSink<M>>) -> Self {
        Self {
            inner: Inner::Sink(Arc::new(SinkRef {
                sink,
                dead_letters: system.dead_letters(),
                deadlines: system.deadlines(),
            })),
        }
    }

    /// A reference through `sink`, from its parts (adapters use this).
    pub(crate) fn from_sink_parts(
        sink: Arc<dyn MessageSink<M>>,
        dead_letters: Arc<DeadLetters>,
        deadlines: Arc<Deadlines>,
    ) -> Self {
        Self {
            inner: Inner::Sink(Arc::new(SinkRef {
                sink,
                dead_letters,
                deadlines,
            })),
        }
    }

    /// Sends `msg` without waiting (at-most-once). If the mailbox is full or
    /// the actor has stopped, the message becomes a [`DeadLetter`] (and,
    /// for subscribers, a [`DeadMessage`](crate::DeadMessage) with it).
    pub fn tell(&self, msg: M) {
        self.tell_inner(msg, None);
    }

    /// [`tell`](Self::tell), naming the sender: a dead letter of this
    /// message says who sent it ([`DeadMessage::sender`](crate::DeadMessage::sender)).
    pub fn tell_from(&self, msg: M, sender: &ActorPath) {
        self.tell_inner(msg, Some(sender));
    }

    fn tell_inner(&self, msg: M, sender: Option<&ActorPath>) {
        if let Err(e) = self.try_tell(msg) {
            let (reason, msg) = match e {
                TryTellError::Full(m) => (DeadLetterReason::MailboxFull, m),
                TryTellError::Stopped(m) => (DeadLetterReason::ActorStopped, m),
            };
            let letter = DeadLetter {
                recipient: self.path().clone(),
                message_type: type_name::<M>(),
                reason,
            };
            let dead_letters = match &self.inner {
                Inner::Local(cell) => &cell.dead_letters,
                Inner::Sink(s) => &s.dead_letters,
            };
            dead_letters.publish_message(letter, sender.cloned(), msg);
        }
    }

    /// Sends `msg` without waiting.
    ///
    /// # Errors
    ///
    /// Hands the message back in [`TryTellError::Full`] when a bounded
    /// mailbox is full and in [`TryTellError::Stopped`] when the actor has
    /// stopped. No dead letter is made: the caller has the message.
    pub fn try_tell(&self, msg: M) -> Result<(), TryTellError<M>> {
        match &self.inner {
            Inner::Local(cell) => cell
                .mailbox
                .try_send(Envelope::User(msg))
                .map_err(|e| match e {
                    TryEnqueueError::Full(env) => TryTellError::Full(env.into_msg()),
                    TryEnqueueError::Closed(env) => TryTellError::Stopped(env.into_msg()),
                }),
            Inner::Sink(s) => s.sink.try_tell(msg),
        }
    }

    /// Sends `msg`, waiting for room in a bounded mailbox (back-pressure).
    ///
    /// # Errors
    ///
    /// Hands the message back if the actor has stopped.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the message was not
    /// enqueued and is dropped with it.
    pub async fn send(&self, msg: M) -> Result<(), SendError<M>> {
        match &self.inner {
            // tokio's own send, awaited right here rather than through
            // `MailboxSender::send`: one future fewer on the per-message path.
            Inner::Local(cell) => match &cell.mailbox {
                MailboxSender::Bounded(tx) => tx
                    .send(Envelope::User(msg))
                    .await
                    .map_err(|e| SendError(e.0.into_msg())),
                MailboxSender::Unbounded(tx) => tx
                    .send(Envelope::User(msg))
                    .map_err(|e| SendError(e.0.into_msg())),
            },
            Inner::Sink(s) => s.sink.send(msg).await,
        }
    }

    /// Sends a request built by `make` around a fresh [`ReplyTo`] and waits
    /// up to `timeout` for the reply. The request waits for room in a bounded
    /// mailbox, within the same timeout.
    ///
    /// # Errors
    ///
    /// - [`Error::RecipientStopped`] at once if the actor has stopped;
    /// - [`Error::NoReply`] if the request was dropped unanswered (the actor
    ///   stopped with it queued, or dropped the `ReplyTo`);
    /// - [`Error::Refused`] at once if a transport refused the request on
    ///   its way (a remote node has no such actor, or the peer is
    ///   unreachable), with the reason;
    /// - [`Error::AskTimeout`] if no reply came in time.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the request; a reply sent later is
    /// discarded.
    pub async fn ask<R, F>(&self, make: F, timeout: Duration) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> M,
    {
        let (tx, rx) = oneshot::channel();
        let request = make(ReplyTo::local(tx));
        let exchange = async {
            if self.send(request).await.is_err() {
                return Err(Error::RecipientStopped {
                    path: self.path().clone(),
                });
            }
            match rx.await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(reason)) => Err(Error::Refused {
                    path: self.path().clone(),
                    reason,
                }),
                Err(_) => Err(Error::NoReply {
                    path: self.path().clone(),
                }),
            }
        };
        match self.deadlines().timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::AskTimeout {
                path: self.path().clone(),
                timeout,
            }),
        }
    }

    /// Asks the actor to stop. It finishes the message it is handling, stops
    /// its children, runs its `stopped` hook and turns the messages still in
    /// its mailbox into dead letters. Overtakes queued user messages.
    pub fn stop(&self) {
        match &self.inner {
            Inner::Local(cell) => {
                let _ = cell.sys.send(SystemMsg::Stop);
            }
            Inner::Sink(s) => s.sink.stop(),
        }
    }

    /// Resolves once the actor has stopped completely (children stopped,
    /// hooks run, mailbox drained). Resolves at once for a stopped actor.
    pub async fn terminated(&self) {
        match &self.inner {
            Inner::Local(cell) => {
                let mut rx = cell.terminated.subscribe();
                // The sender lives in the cell we hold, so this cannot fail.
                let _ = rx.wait_for(|stopped| *stopped).await;
            }
            Inner::Sink(s) => {
                let (watcher, rx) = Watcher::signal();
                s.sink.watch(watcher);
                let _ = rx.await;
            }
        }
    }

    /// Whether the actor is known to have stopped. Always `false` for a sink
    /// reference, whose liveness is only known through watch.
    pub fn is_terminated(&self) -> bool {
        match &self.inner {
            Inner::Local(cell) => *cell.terminated.borrow(),
            Inner::Sink(_) => false,
        }
    }

    /// Registers `watcher` with the target; a target that is already gone
    /// notifies it at once.
    pub(crate) fn add_watcher(&self, watcher: Watcher) {
        match &self.inner {
            Inner::Local(cell) => {
                if let Err(e) = cell.sys.send(SystemMsg::Watch(watcher)) {
                    if let SystemMsg::Watch(watcher) = e.0 {
                        watcher.notify_terminated(&cell.path, cell.uid);
                    }
                }
            }
            Inner::Sink(s) => s.sink.watch(watcher),
        }
    }

    pub(crate) fn remove_watcher(&self, id: WatcherId) {
        match &self.inner {
            Inner::Local(cell) => {
                let _ = cell.sys.send(SystemMsg::Unwatch(id));
            }
            Inner::Sink(s) => s.sink.unwatch(id),
        }
    }
}

/// The reply half of an [`ask`](ActorRef::ask): put it in the request
/// message; the handler answers with [`reply`](Self::reply).
///
/// It can cross nodes inside a message (see [`RefCodec`](crate::RefCodec)):
/// it is then written as the path of a short-lived actor on the asking
/// node, and the reply travels back to it as a message, so the reply type
/// must be registered with the transport on both nodes. A reply that takes
/// longer than five minutes is dropped.
pub struct ReplyTo<R> {
    // A `Cell`, so that encoding (which sees `&self`) can move the sender
    // into the forwarding actor; `ReplyTo` is `Send`, not `Sync`.
    pub(crate) inner: Cell<Option<ReplyInner<R>>>,
}

/// Where a local asker waits: the reply, or why the request was refused on
/// its way (a transport's [`Abandon`](crate::Abandon)).
pub(crate) type Answer<R> = oneshot::Sender<Result<R, String>>;

pub(crate) enum ReplyInner<R> {
    /// The asker is in this process.
    Local(Answer<R>),
    /// The asker is on another node: reply by message.
    Remote(ActorRef<R>),
}

impl<R> ReplyTo<R> {
    pub(crate) fn local(tx: Answer<R>) -> Self {
        Self {
            inner: Cell::new(Some(ReplyInner::Local(tx))),
        }
    }

    /// Answers the request. If the asker has given up (timed out or dropped
    /// its future), the reply is discarded.
    pub fn reply(self, value: R)
    where
        R: Send + 'static,
    {
        match self.inner.into_inner() {
            Some(ReplyInner::Local(tx)) => {
                if tx.send(Ok(value)).is_err() {
                    tracing::debug!(
                        reply_type = type_name::<R>(),
                        "reply discarded: the asker is gone"
                    );
                }
            }
            Some(ReplyInner::Remote(asker)) => asker.tell(value),
            None => tracing::debug!(
                reply_type = type_name::<R>(),
                "reply discarded: this request was sent on to another node"
            ),
        }
    }

    /// Whether the asker has given up waiting (always `false` for an asker
    /// on another node, which times out on its own).
    pub fn is_closed(&self) -> bool {
        let inner = self.inner.take();
        let closed = match &inner {
            Some(ReplyInner::Local(tx)) => tx.is_closed(),
            Some(ReplyInner::Remote(_)) => false,
            None => true,
        };
        self.inner.set(inner);
        closed
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplyTo<{}>", type_name::<R>())
    }
}
