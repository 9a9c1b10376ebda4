//! The deliverer's entry in the live-sender registry ([`crate::live`]):
//! held weakly, live while its timer actor is.
//!
//! Repairs through it run one at a time: `Deliverer::requeue` reads the
//! parked entry and writes its move in two steps, so two concurrent
//! requeues (or a requeue and a purge) of one id would both succeed, and
//! the delivery would be sent twice under two ids.

use std::sync::{Arc, Weak};

use courier_core::ActorRef;

use super::redeliverer::Signal;
use super::{Deliverer, Outgoing, PendingDelivery, Shared};
use crate::envelope::{DeliveryId, SenderId};
use crate::error::Result;
use crate::live::{self, BoxFuture};

struct Handle<M> {
    shared: Weak<Shared<M>>,
    timer: ActorRef<Signal>,
}

impl<M: Outgoing> Handle<M> {
    fn deliverer(&self) -> Option<Deliverer<M>> {
        if self.timer.is_terminated() {
            return None;
        }
        self.shared.upgrade().map(|shared| Deliverer { shared })
    }
}

/// Registers the deliverer sharing `shared`, whose timer actor is `timer`.
pub(super) fn register<M: Outgoing>(shared: &Arc<Shared<M>>, timer: ActorRef<Signal>) {
    live::register(
        &shared.system,
        &shared.sender.name,
        Arc::new(Handle {
            shared: Arc::downgrade(shared),
            timer,
        }),
    );
}

impl<M: Outgoing> live::Handle for Handle<M> {
    fn is_live(&self) -> bool {
        !self.timer.is_terminated() && self.shared.strong_count() > 0
    }

    fn sender_id(&self) -> Option<SenderId> {
        self.deliverer().map(|d| d.sender_id().clone())
    }

    fn unconfirmed(&self) -> Option<usize> {
        self.deliverer().map(|d| d.unconfirmed())
    }

    fn redelivered(&self) -> Option<u64> {
        self.deliverer().map(|d| d.redelivered())
    }

    fn pending(&self, after: Option<DeliveryId>, limit: usize) -> Option<Vec<PendingDelivery>> {
        self.deliverer().map(|d| d.pending(after, limit))
    }

    fn requeue(&self, id: DeliveryId) -> BoxFuture<'_, Option<Result<DeliveryId>>> {
        Box::pin(async move {
            match self.deliverer() {
                Some(d) => Some(d.requeue(id).await),
                None => None,
            }
        })
    }

    fn purge(&self, id: DeliveryId) -> BoxFuture<'_, Option<Result<()>>> {
        Box::pin(async move {
            match self.deliverer() {
                Some(d) => Some(d.purge(id).await),
                None => None,
            }
        })
    }
}
