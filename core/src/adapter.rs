//! Message adapters: an [`ActorRef<T>`] for an actor that takes another
//! message type, `M`, mapping each `T` into an `M` (Akka Typed's
//! `messageAdapter`).
//!
//! An adapter is registered under its actor's own path, so
//! [`ActorSystem::lookup::<T>`](crate::ActorSystem::lookup) finds the actor
//! by path as if it took `T`: that is how an actor with its own enum becomes
//! a destination for a layer that sends another type (a `Delivery<M>`, say),
//! without changing its message type. Register adapters with
//! [`Props::with_adapter`](crate::Props::with_adapter) (present from the
//! spawn on, across restarts) or
//! [`Context::message_adapter`](crate::Context::message_adapter).
//!
//! Invariants:
//! - adapted messages share the actor's mailbox, so they keep the per
//!   sender–receiver order with its other messages;
//! - the mapping runs on the actor's task, as the message is taken, so a
//!   message that cannot be enqueued is handed back as the `T` it was;
//! - an actor without adapters pays nothing: only an adapted message is
//!   boxed.

use std::any::{Any, TypeId, type_name};
use std::sync::Arc;

use crate::actor_ref::{ActorRef, BoxFuture, LocalCell, MessageSink};
use crate::error::{SendError, TryTellError};
use crate::mailbox::{Envelope, TryEnqueueError};
use crate::path::ActorPath;
use crate::watcher::{SystemMsg, Watcher, WatcherId};

/// Maps an adapted message into the actor's own.
pub(crate) type MapFn<T, M> = Arc<dyn Fn(T) -> M + Send + Sync>;

/// An adapted message waiting in a mailbox: mapped when the actor takes it.
pub(crate) trait Adapted<M>: Send {
    /// The actor's message.
    fn into_msg(self: Box<Self>) -> M;
    /// The message as it was sent (a `Box<T>`), to hand it back.
    fn into_sent(self: Box<Self>) -> Box<dyn Any + Send>;
}

struct Pending<T, M> {
    msg: T,
    map: MapFn<T, M>,
}

impl<T: Send + 'static, M: 'static> Adapted<M> for Pending<T, M> {
    fn into_msg(self: Box<Self>) -> M {
        (self.map)(self.msg)
    }

    fn into_sent(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.msg)
    }
}

/// The `T` inside an envelope an [`AdapterSink<T, _>`] made.
fn take_back<T: 'static, M>(env: Envelope<M>) -> Option<T> {
    match env {
        Envelope::Adapted(adapted) => adapted.into_sent().downcast::<T>().ok().map(|t| *t),
        _ => None,
    }
}

/// The sink behind an adapter reference: the actor's own mailbox.
struct AdapterSink<T, M> {
    cell: Arc<LocalCell<M>>,
    map: MapFn<T, M>,
}

impl<T: Send + 'static, M: Send + 'static> AdapterSink<T, M> {
    fn envelope(&self, msg: T) -> Envelope<M> {
        Envelope::Adapted(Box::new(Pending {
            msg,
            map: Arc::clone(&self.map),
        }))
    }
}

/// Only this module builds adapted envelopes, each from a `T`, so the
/// envelope a failed send hands back always holds one.
const HANDED_BACK: &str = "an adapter's envelope holds the message it was sent";

impl<T: Send + 'static, M: Send + 'static> MessageSink<T> for AdapterSink<T, M> {
    fn path(&self) -> &ActorPath {
        &self.cell.path
    }

    fn uid(&self) -> u64 {
        self.cell.uid
    }

    fn try_tell(&self, msg: T) -> Result<(), TryTellError<T>> {
        self.cell
            .mailbox
            .try_send(self.envelope(msg))
            .map_err(|e| match e {
                TryEnqueueError::Full(env) => {
                    TryTellError::Full(take_back(env).expect(HANDED_BACK))
                }
                TryEnqueueError::Closed(env) => {
                    TryTellError::Stopped(take_back(env).expect(HANDED_BACK))
                }
            })
    }

    fn send(&self, msg: T) -> BoxFuture<'_, Result<(), SendError<T>>> {
        let env = self.envelope(msg);
        Box::pin(async move {
            self.cell
                .mailbox
                .send(env)
                .await
                .map_err(|env| SendError(take_back(env).expect(HANDED_BACK)))
        })
    }

    fn stop(&self) {
        let _ = self.cell.sys.send(SystemMsg::Stop);
    }

    fn watch(&self, watcher: Watcher) {
        if let Err(e) = self.cell.sys.send(SystemMsg::Watch(watcher)) {
            if let SystemMsg::Watch(watcher) = e.0 {
                watcher.notify_terminated(&self.cell.path, self.cell.uid);
            }
        }
    }

    fn unwatch(&self, watcher: WatcherId) {
        let _ = self.cell.sys.send(SystemMsg::Unwatch(watcher));
    }
}

/// An adapter reference for the actor of `cell`.
pub(crate) fn adapter<T, M>(cell: &Arc<LocalCell<M>>, map: MapFn<T, M>) -> ActorRef<T>
where
    T: Send + 'static,
    M: Send + 'static,
{
    let sink = AdapterSink {
        cell: Arc::clone(cell),
        map,
    };
    ActorRef::from_sink_parts(
        Arc::new(sink),
        Arc::clone(&cell.dead_letters),
        Arc::clone(&cell.deadlines),
    )
}

/// An adapter as the registry keeps it: a boxed `ActorRef<T>`.
pub(crate) struct Registration {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) actor_ref: Box<dyn Any + Send + Sync>,
}

impl Registration {
    pub(crate) fn new<T: Send + 'static>(actor_ref: ActorRef<T>) -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
            actor_ref: Box::new(actor_ref),
        }
    }
}

/// Makes a [`Registration`] for a cell at spawn (kept in `Props`).
pub(crate) type AdapterFactory<M> = Arc<dyn Fn(&Arc<LocalCell<M>>) -> Registration + Send + Sync>;
