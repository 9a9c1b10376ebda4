//! What travels between a sender and a receiver: [`Delivery`] one way,
//! [`Ack`] the other, both naming the sender by [`SenderId`].

use std::fmt;

use courier_core::ActorRef;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A delivery's number: gap-free per sender, starting at 1, never reused
/// within one incarnation of the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeliveryId(pub u64);

impl DeliveryId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id after this one.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Who sent a delivery: the sender's stable name and the incarnation of its
/// journal.
///
/// The incarnation is a UUIDv7 created together with the sender's durable
/// state. If that state is lost, the sender starts a new incarnation and
/// counts from 1 again; receivers keep the two apart, so new messages are
/// never mistaken for duplicates of old ones.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SenderId {
    /// The sender's name, stable across restarts.
    pub name: String,
    /// The incarnation of the sender's durable state.
    pub incarnation: Uuid,
}

impl fmt::Display for SenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.incarnation)
    }
}

/// The receiver's business-level acknowledgement: the effect of delivery
/// `id` from `sender` is durable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ack {
    /// The sender being acknowledged.
    pub sender: SenderId,
    /// The delivery being acknowledged.
    pub id: DeliveryId,
    /// The identity of the inbox that applied it, when the ack comes from
    /// an application ([`InboxWrite::ack`](crate::InboxWrite::ack)); `None`
    /// for the ack of a duplicate. The sender remembers it per destination
    /// and sends it back with later deliveries, so that a receiver that
    /// lost its inbox notices (see [`Delivery::expected_inbox`]).
    pub inbox: Option<Uuid>,
}

/// A message sent at least once: the payload with the sender's name,
/// incarnation and delivery id, and where to send the [`Ack`].
///
/// Serializable when `M` is, so that it can cross nodes: `ack_to` travels
/// as a path a transport resolves again on the receiving node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "M: Serialize", deserialize = "M: Deserialize<'de>"))]
pub struct Delivery<M> {
    /// Who sent it.
    pub sender: SenderId,
    /// Its number at the sender.
    pub id: DeliveryId,
    /// How many times it has been sent, this one included (1 on the first
    /// send). Restarts of the sender count from 1 again.
    pub attempt: u32,
    /// Every id below this one is settled at the sender (confirmed or
    /// parked) and will never be sent again; receivers use it to keep their
    /// dedup state small.
    pub settled_below: DeliveryId,
    /// The identity of the inbox that, as far as the sender knows, applied
    /// its earlier deliveries to this destination (`None` before the first
    /// ack). A [`DedupInbox`](crate::DedupInbox) with another identity has
    /// lost that history and refuses the delivery rather than risk
    /// applying it twice.
    pub expected_inbox: Option<Uuid>,
    /// The message.
    pub message: M,
    /// Where the receiver sends its [`Ack`]. It takes acks and nothing
    /// else: whoever holds a delivery can confirm it, but cannot steer the
    /// sender otherwise (redelivery and parking are the sender's own).
    pub ack_to: ActorRef<Ack>,
}

impl<M> Delivery<M> {
    /// The acknowledgement for this delivery.
    pub fn ack(&self) -> Ack {
        Ack {
            sender: self.sender.clone(),
            id: self.id,
            inbox: None,
        }
    }

    /// Sends the acknowledgement for this delivery (at most once; a lost ack
    /// makes the sender redeliver, and the receiver acks again).
    pub fn send_ack(&self) {
        self.ack_to.tell(self.ack());
    }
}

impl<M: Clone> Clone for Delivery<M> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            id: self.id,
            attempt: self.attempt,
            settled_below: self.settled_below,
            expected_inbox: self.expected_inbox,
            message: self.message.clone(),
            ack_to: self.ack_to.clone(),
        }
    }
}
