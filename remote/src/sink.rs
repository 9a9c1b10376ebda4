//! [`RemoteSink`]: the sending half of a reference to an actor on another
//! node. It encodes each message with its manifest and queues it for the
//! peer's connection task; it never waits on the network.
//!
//! A message that cannot be encoded, or would not fit in a frame, is a dead
//! letter here, before it is queued, so that one bad message never costs
//! the stream or the messages behind it.

use std::any::type_name;
use std::marker::PhantomData;
use std::sync::Weak;

use courier_core::{
    ActorPath, BoxFuture, MessageSink, SendError, TryTellError, Watcher, WatcherId,
};
use serde::Serialize;

use tokio::sync::mpsc;

use crate::node::Shared;
use crate::node::peer::{Outbound, PeerHandle};

/// Abandons one ask whose request was refused or never sent. (In a
/// mutex only so that it can sit in the peer task's state across awaits.)
pub(crate) struct Abandon(std::sync::Mutex<Option<courier_core::Abandon>>);

thread_local! {
    /// What encoding the current message produced to abandon its asks.
    static ABANDON: std::cell::RefCell<Vec<Abandon>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps `abandon` for the message being encoded on this thread.
pub(crate) fn keep_abandon(abandon: courier_core::Abandon) {
    ABANDON.with(|a| {
        a.borrow_mut()
            .push(Abandon(std::sync::Mutex::new(Some(abandon))));
    });
}

/// Encodes with the node's codec, returning what abandons the asks whose
/// `ReplyTo`s the message carries.
fn encode_with_asks<M: Serialize>(
    codec: &std::sync::Arc<dyn courier_core::RefCodec>,
    msg: &M,
    limit: usize,
) -> (Result<Vec<u8>, courier_codec::Error>, Vec<Abandon>) {
    let outer = ABANDON.with(|a| std::mem::take(&mut *a.borrow_mut()));
    let encoded = courier_core::with_ref_codec(codec, || courier_codec::encode(msg, limit));
    let asks = ABANDON.with(|a| std::mem::replace(&mut *a.borrow_mut(), outer));
    (encoded, asks)
}

/// Abandons every ask in `asks`: each ends with `reason`.
pub(crate) fn abandon(asks: Vec<Abandon>, reason: &str) {
    for Abandon(abandon) in asks {
        let abandon = abandon
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(abandon) = abandon {
            abandon(reason);
        }
    }
}

/// Where a remote reference sends.
pub(crate) struct RemoteTarget {
    pub(crate) path: ActorPath,
    pub(crate) recipient: String,
    pub(crate) peer: PeerHandle,
    pub(crate) shared: Weak<Shared>,
}

/// The sending half of a remote reference: encodes and queues for the peer.
pub(crate) struct RemoteSink<M> {
    target: RemoteTarget,
    manifest: String,
    message: PhantomData<fn(M)>,
}

impl<M> RemoteSink<M> {
    /// A sink that sends `M`, under `manifest`, to `target`.
    pub(crate) fn new(target: RemoteTarget, manifest: String) -> Self {
        Self {
            target,
            manifest,
            message: PhantomData,
        }
    }
}

impl<M: Serialize + Send + 'static> RemoteSink<M> {
    /// Encodes `msg` for the peer; `None` (after a dead letter) when it
    /// cannot be encoded or would not fit in a frame.
    fn prepare(&self, shared: &Shared, msg: &M) -> Option<Outbound> {
        let type_name = type_name::<M>();
        let limit = shared.settings.max_frame;
        let (encoded, asks) = encode_with_asks(&shared.codec, msg, limit);
        let payload = match encoded {
            Ok(payload) => payload,
            Err(e) => {
                let reason = match e {
                    courier_codec::Error::TooLarge { .. } => format!("oversized: {e}"),
                    e => format!("cannot encode: {e}"),
                };
                abandon(asks, &reason);
                shared.dead_letter(&self.target.path, type_name, reason);
                return None;
            }
        };
        if payload.len() + self.target.recipient.len() + self.manifest.len() > limit {
            // Refused here, so that one big message never costs the stream.
            let reason = format!("oversized: {} bytes, limit {limit}", payload.len());
            abandon(asks, &reason);
            shared.dead_letter(&self.target.path, type_name, reason);
            return None;
        }
        Some(Outbound {
            path: self.target.path.clone(),
            recipient: self.target.recipient.clone(),
            manifest: self.manifest.clone(),
            payload: payload.into(),
            type_name,
            stop: false,
            asks,
        })
    }
}

impl<M: Serialize + Send + 'static> MessageSink<M> for RemoteSink<M> {
    fn path(&self) -> &ActorPath {
        &self.target.path
    }

    /// Queues for the peer, or reports [`TryTellError::Full`] when the
    /// peer's queue (`queue_capacity`) is full: the peer is slower than
    /// this node's senders, or its in-flight window is full.
    fn try_tell(&self, msg: M) -> Result<(), TryTellError<M>> {
        let Some(shared) = self.target.shared.upgrade() else {
            return Err(TryTellError::Stopped(msg));
        };
        // Room first, so that a message that cannot be queued is handed
        // back whole, before encoding has spent its `ReplyTo`s.
        let permit = match self.target.peer.queue.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => return Err(TryTellError::Full(msg)),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(TryTellError::Stopped(msg)),
        };
        if let Some(out) = self.prepare(&shared, &msg) {
            permit.send(out);
        }
        Ok(())
    }

    /// Waits for room in the peer's queue, then queues.
    fn send(&self, msg: M) -> BoxFuture<'_, Result<(), SendError<M>>> {
        Box::pin(async move {
            let Ok(permit) = self.target.peer.queue.reserve().await else {
                return Err(SendError(msg));
            };
            let Some(shared) = self.target.shared.upgrade() else {
                return Err(SendError(msg));
            };
            if let Some(out) = self.prepare(&shared, &msg) {
                permit.send(out);
            }
            Ok(())
        })
    }

    /// Sends a stop request to the peer, in order after the messages
    /// already sent to it; there it acts as a local stop (overtaking what
    /// is still in the actor's mailbox). If the peer cannot be reached or
    /// has no such actor, the request becomes a dead letter at the sender,
    /// as a message would.
    fn stop(&self) {
        let out = Outbound {
            path: self.target.path.clone(),
            recipient: self.target.recipient.clone(),
            manifest: self.manifest.clone(),
            payload: bytes::Bytes::new(),
            type_name: "stop",
            stop: true,
            asks: Vec::new(),
        };
        // A stop is never refused for want of room: it waits its turn on
        // its own task if the queue is full.
        match self.target.peer.queue.try_send(out) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(out)) => {
                let queue = self.target.peer.queue.clone();
                tokio::spawn(async move {
                    let _ = queue.send(out).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                if let Some(shared) = self.target.shared.upgrade() {
                    shared.dead_letter(&self.target.path, "stop", "the node has shut down".into());
                }
            }
        }
    }

    /// Remote watch: `Terminated` arrives when the connection to the peer is
    /// lost (the actor is then unreachable), as Akka's remote death watch.
    fn watch(&self, watcher: Watcher) {
        self.target.peer.watch(self.target.path.clone(), watcher);
    }

    fn unwatch(&self, watcher: WatcherId) {
        self.target.peer.unwatch(watcher);
    }
}
