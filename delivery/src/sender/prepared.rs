//! [`Prepared`]: a numbered delivery whose records are not yet durable.

use std::sync::Arc;
use std::time::Duration;

use courier_core::ActorRef;
use courier_persistence::{Journal, WriteBatch};

use super::{Outgoing, Shared};
use crate::envelope::{Delivery, DeliveryId};
use crate::outbox::Dispatch;

/// A numbered delivery whose records are not yet durable.
#[must_use = "a prepared delivery is sent only by `send`"]
pub struct Prepared<M: Outgoing> {
    pub(super) shared: Arc<Shared<M>>,
    pub(super) id: DeliveryId,
    pub(super) destination: Arc<str>,
    pub(super) target: Option<ActorRef<Delivery<M>>>,
    pub(super) message: Option<M>,
    pub(super) writes: WriteBatch,
    pub(super) created: Duration,
}

impl<M: Outgoing> Prepared<M> {
    /// Its id.
    pub fn id(&self) -> DeliveryId {
        self.id
    }

    /// The records to write (the outbox entry).
    pub fn writes(&self) -> WriteBatch {
        self.writes.clone()
    }

    /// The store the sender reads its outbox from, where these records
    /// must go.
    pub(crate) fn journal(&self) -> &Arc<dyn Journal> {
        &self.shared.journal
    }

    /// The records are durable: the delivery joins the outbox and is sent
    /// (now, or after the restored backlog).
    pub fn send(mut self) -> DeliveryId {
        let Some(message) = self.message.take() else {
            return self.id;
        };
        self.shared.metrics.delivered.increment(1);
        let dispatch = {
            let mut state = self.shared.lock();
            let random = state.rng.f64();
            state.outbox.insert(
                self.id,
                Arc::clone(&self.destination),
                (),
                self.created,
                random,
            )
        };
        if dispatch == Dispatch::Now {
            self.shared
                .transmit(self.id, &self.destination, self.target.take(), message, 1);
        }
        self.id
    }
}

impl<M: Outgoing> Prepared<M> {
    /// Gives up a delivery that was never written (its id is given back by
    /// the caller): its drop then changes nothing.
    pub(super) fn disarm(mut self) -> DeliveryId {
        self.message = None;
        self.id
    }
}

impl<M: Outgoing> Drop for Prepared<M> {
    fn drop(&mut self) {
        if self.message.is_some() {
            // Its write failed, was never made, or is still in flight: a
            // later tick finds out whether the entry is durable.
            self.shared.lock().outbox.doubt(self.id);
        }
    }
}
