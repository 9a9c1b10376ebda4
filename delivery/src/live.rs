//! The senders running in an actor system, found by name without knowing
//! their message type: what an admin endpoint needs to show a live sender's
//! outbox and to repair its parked deliveries through the running
//! [`Deliverer`](crate::Deliverer) (never behind its back).
//!
//! Every started deliverer registers itself here; a sender whose owner
//! stopped is no longer found. Repairs through a [`LiveSender`] run one at
//! a time per sender, so concurrent requeues of one parked delivery move
//! it once (the others get [`Error::NotParked`](crate::Error::NotParked)). The registry holds senders weakly: it keeps
//! none of them alive.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use courier_core::ActorSystem;

use crate::envelope::{DeliveryId, SenderId};
use crate::error::Result;
use crate::sender::PendingDelivery;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A running deliverer, whatever its message type.
pub(crate) trait Handle: Send + Sync {
    fn is_live(&self) -> bool;
    fn sender_id(&self) -> Option<SenderId>;
    fn unconfirmed(&self) -> Option<usize>;
    fn redelivered(&self) -> Option<u64>;
    fn pending(&self, after: Option<DeliveryId>, limit: usize) -> Option<Vec<PendingDelivery>>;
    fn requeue(&self, id: DeliveryId) -> BoxFuture<'_, Option<Result<DeliveryId>>>;
    fn purge(&self, id: DeliveryId) -> BoxFuture<'_, Option<Result<()>>>;
}

/// The live senders of one actor system (a system extension).
#[derive(Default)]
struct LiveSenders {
    senders: Mutex<HashMap<String, Arc<dyn Handle>>>,
}

/// Records the sender `name` as running (replacing a stopped one of that
/// name: names are unique among live senders).
pub(crate) fn register(system: &ActorSystem, name: &str, handle: Arc<dyn Handle>) {
    let live = system.extension::<LiveSenders>();
    let mut senders = courier_core::sync::lock(&live.senders);
    senders.retain(|_, h| h.is_live());
    senders.insert(name.to_owned(), handle);
}

/// The running sender called `name` in `system`, if there is one.
pub fn sender(system: &ActorSystem, name: &str) -> Option<LiveSender> {
    let live = system.extension::<LiveSenders>();
    let senders = courier_core::sync::lock(&live.senders);
    senders
        .get(name)
        .filter(|h| h.is_live())
        .map(|h| LiveSender {
            name: name.to_owned(),
            handle: Arc::clone(h),
        })
}

/// The names of the senders running in `system`, sorted.
pub fn names(system: &ActorSystem) -> Vec<String> {
    let live = system.extension::<LiveSenders>();
    let senders = courier_core::sync::lock(&live.senders);
    let mut names: Vec<String> = senders
        .iter()
        .filter(|(_, h)| h.is_live())
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names
}

/// A running sender, as [`sender`] finds it. Cheap to clone. Each call
/// goes to the running deliverer; once it has stopped, the queries answer
/// `None` and the repairs [`Error::NotRunning`](crate::Error::NotRunning).
#[derive(Clone)]
pub struct LiveSender {
    name: String,
    handle: Arc<dyn Handle>,
}

impl std::fmt::Debug for LiveSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveSender({})", self.name)
    }
}

impl LiveSender {
    /// The sender's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it still runs.
    pub fn is_live(&self) -> bool {
        self.handle.is_live()
    }

    /// Its name and incarnation; `None` once it stopped.
    pub fn sender_id(&self) -> Option<SenderId> {
        self.handle.sender_id()
    }

    /// As [`Deliverer::unconfirmed`](crate::Deliverer::unconfirmed); `None`
    /// once it stopped.
    pub fn unconfirmed(&self) -> Option<usize> {
        self.handle.unconfirmed()
    }

    /// As [`Deliverer::redelivered`](crate::Deliverer::redelivered); `None`
    /// once it stopped.
    pub fn redelivered(&self) -> Option<u64> {
        self.handle.redelivered()
    }

    /// As [`Deliverer::pending`](crate::Deliverer::pending) (with attempts
    /// and the last send error); `None` once it stopped.
    pub fn pending(&self, after: Option<DeliveryId>, limit: usize) -> Option<Vec<PendingDelivery>> {
        self.handle.pending(after, limit)
    }

    /// [`Deliverer::requeue`](crate::Deliverer::requeue) on the running
    /// sender: the delivery is sent again at once, under the new id
    /// returned.
    ///
    /// # Errors
    ///
    /// As `Deliverer::requeue`; [`Error::NotRunning`](crate::Error::NotRunning)
    /// when the sender stopped.
    ///
    /// # Cancel safety
    ///
    /// As `Deliverer::requeue`: dropped half-way, the delivery is either
    /// still parked or requeued (its write decides), never both.
    pub async fn requeue(&self, id: DeliveryId) -> Result<DeliveryId> {
        self.handle
            .requeue(id)
            .await
            .unwrap_or_else(|| Err(self.not_running()))
    }

    /// [`Deliverer::purge`](crate::Deliverer::purge) on the running sender.
    ///
    /// # Errors
    ///
    /// As `Deliverer::purge`; [`Error::NotRunning`](crate::Error::NotRunning)
    /// when the sender stopped.
    ///
    /// # Cancel safety
    ///
    /// Dropped half-way, the purge may still happen (the sender's writer
    /// writes it).
    pub async fn purge(&self, id: DeliveryId) -> Result<()> {
        self.handle
            .purge(id)
            .await
            .unwrap_or_else(|| Err(self.not_running()))
    }

    fn not_running(&self) -> crate::Error {
        crate::Error::NotRunning {
            sender: self.name.clone(),
        }
    }
}
