//! courier-delivery: at-least-once delivery on top of courier's actors and
//! persistence, and a deduplicating inbox for receivers. (The TOML file
//! that configures it is read by the facade, `courier::config`.)
//!
//! Users work with the adapters: [`Deliverer`] (the sender side) and
//! [`DedupInbox`] (the receiver side), most simply as plain fields of an
//! existing actor: [`AtLeastOnce`] (named once, started in `started`,
//! `deliver` from any handler) and [`ExactlyOnce`] (opened with the actor;
//! [`process`](ExactlyOnce::process) or [`effect`](ExactlyOnce::effect)
//! applies a delivery exactly once in one call). A receiver keeps its own
//! message type: register `Delivery<M>` as a message adapter of its props
//! (`Props::with_adapter::<Delivery<M>>()`). The logic under them is pure and
//! lives in plain structs in [`model`]: `Outbox` (what the sender has not had
//! confirmed) and `Inbox` (what the receiver has applied); [`Redelivery`]
//! says when to send again. The adapters add the journal, the timer and the
//! network.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod at_least_once;
mod envelope;
mod error;
mod exactly_once;
mod inbox;
pub mod inspect;
pub mod live;
mod metrics;
mod outbox;
mod receiver;
mod records;
mod redelivery;
mod sender;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use at_least_once::{AtLeastOnce, DeliverEffect};
pub use envelope::{Ack, Delivery, DeliveryId, SenderId};
pub use error::{Error, Result};
pub use exactly_once::ExactlyOnce;
pub use inbox::Receipt;
pub use outbox::{MAX_EXPIRE_AFTER, OutboxSettings};
pub use receiver::{DedupInbox, InboxWrite, Submitted};
pub use redelivery::{MAX_REDELIVERY_DELAY, Redelivery};
pub use sender::{
    Deliverer, Outgoing, ParkedDelivery, PendingDelivery, Prepared, UnconfirmedWarning,
};

/// The pure logic under the adapters, for models, property tests and
/// custom adapters: no runtime, no clock, no I/O. Most programs need none
/// of it.
pub mod model {
    pub use crate::inbox::{Inbox, InboxChange, Window};
    pub use crate::outbox::{
        Confirmation, Dispatch, Outbox, OutboxFull, ParkReason, Pending, Tick,
    };
}
