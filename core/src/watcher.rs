//! Death watch plumbing: [`Watcher`]s and the system messages that carry them.
//!
//! A watcher is registered with the actor it watches. When that actor stops,
//! it notifies every registered watcher once, and also every watcher whose
//! registration reached it while it was stopping. A registration that arrives
//! after the actor is gone is answered at once by the sender, so a watch of a
//! dead actor still yields exactly one `Terminated`.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use crate::path::ActorPath;
use crate::supervision::ChildFailure;
pub(crate) use crate::system_channel::SystemSender;

/// Identities for actors and watchers, unique within the process.
static NEXT_UID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_uid() -> u64 {
    NEXT_UID.fetch_add(1, Ordering::Relaxed)
}

/// Identifies a [`Watcher`], so that it can be unregistered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WatcherId(pub(crate) u64);

/// Someone to tell once an actor has stopped.
///
/// Transports that implement [`MessageSink`](crate::MessageSink) receive
/// watchers and must call [`notify_terminated`](Watcher::notify_terminated)
/// once the remote actor is gone (or unreachable).
#[derive(Debug)]
pub struct Watcher {
    id: WatcherId,
    kind: WatcherKind,
}

#[derive(Debug)]
enum WatcherKind {
    Actor(SystemSender),
    Signal(oneshot::Sender<()>),
}

impl Watcher {
    pub(crate) fn actor(id: WatcherId, sys: SystemSender) -> Self {
        Self {
            id,
            kind: WatcherKind::Actor(sys),
        }
    }

    pub(crate) fn signal() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let watcher = Self {
            id: WatcherId(next_uid()),
            kind: WatcherKind::Signal(tx),
        };
        (watcher, rx)
    }

    /// This watcher's identity.
    pub fn id(&self) -> WatcherId {
        self.id
    }

    /// Tells the watcher that the actor at `path` (incarnation `uid`, as the
    /// sink reports in [`MessageSink::uid`](crate::MessageSink::uid)) has
    /// stopped. A watcher that is itself gone is ignored.
    pub fn notify_terminated(self, path: &ActorPath, uid: u64) {
        match self.kind {
            WatcherKind::Actor(sys) => {
                let _ = sys.send(SystemMsg::Terminated {
                    path: path.clone(),
                    uid,
                });
            }
            WatcherKind::Signal(tx) => {
                let _ = tx.send(());
            }
        }
    }
}

/// Messages about an actor's life, kept apart from user messages.
#[derive(Debug)]
pub(crate) enum SystemMsg {
    Stop,
    Watch(Watcher),
    Unwatch(WatcherId),
    Terminated { path: ActorPath, uid: u64 },
    ChildFailed(ChildFailure),
    ChildTerminated { uid: u64 },
}
