//! What the sending actor does by hand (Akka's `confirmDelivery`, and the
//! messages an [`UnconfirmedWarning`] names): confirm or cancel a pending
//! delivery by id, and read a pending delivery's message back.

use super::{Deliverer, Outgoing, UnconfirmedWarning};
use crate::envelope::DeliveryId;
use crate::error::Result;
use crate::outbox::Confirmation;
use crate::records::{StoredEntry, decode};

use super::writer::Request;

impl<M: Outgoing> Deliverer<M> {
    /// Confirms delivery `id` as if its ack had come (Akka's
    /// `confirmDelivery`): it is not sent again, and its outbox entry is
    /// deleted (durably, in order with the other confirmations). Returns
    /// whether `id` was pending; confirming an unknown, confirmed or parked
    /// id changes nothing (use [`purge`](Self::purge) for a parked one). A
    /// delivery confirmed while its park is being written is not parked.
    pub fn confirm(&self, id: DeliveryId) -> bool {
        let confirmed = {
            let mut state = self.shared.lock();
            matches!(state.outbox.confirm(id), Confirmation::Confirmed(_))
        };
        if confirmed {
            // A lost delete means one more redelivery, never a lost entry.
            let _ = self.shared.writes.send(Request::Confirmed(id));
        }
        confirmed
    }

    /// Gives up on delivery `id` without an ack: as
    /// [`confirm`](Self::confirm), logged at WARN, for a delivery the
    /// sender no longer wants delivered (after an [`UnconfirmedWarning`],
    /// say). A receiver that already applied it keeps it applied.
    pub fn cancel(&self, id: DeliveryId) -> bool {
        let cancelled = self.confirm(id);
        if cancelled {
            tracing::warn!(sender = %self.shared.sender, %id, "delivery cancelled by the sender: it is not sent again");
        }
        cancelled
    }

    /// The message of pending delivery `id`, read back from its outbox
    /// entry; `None` once it is confirmed, cancelled or parked.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when it cannot be read,
    /// [`Error::Corrupt`](crate::Error::Corrupt) when it does not decode.
    ///
    /// # Cancel safety
    ///
    /// Only reads: dropping the future changes nothing.
    pub async fn message(&self, id: DeliveryId) -> Result<Option<M>> {
        let name = &self.shared.sender.name;
        let Some(bytes) = self.shared.get(&self.shared.ns.outbox, id).await? else {
            return Ok(None);
        };
        let entry: StoredEntry = decode(name, id, &bytes)?;
        Ok(Some(decode(name, id, &entry.payload)?))
    }

    /// The messages of the deliveries `warning` names that are still
    /// pending, oldest first (so the handler can see what is stuck, and
    /// [`cancel`](Self::cancel) or [`confirm`](Self::confirm) it).
    ///
    /// # Errors
    ///
    /// As [`message`](Self::message).
    ///
    /// # Cancel safety
    ///
    /// Only reads: dropping the future changes nothing.
    pub async fn messages_of(&self, warning: &UnconfirmedWarning) -> Result<Vec<(DeliveryId, M)>> {
        let mut found = Vec::new();
        for (id, _, _) in &warning.deliveries {
            if let Some(message) = self.message(*id).await? {
                found.push((*id, message));
            }
        }
        Ok(found)
    }
}
