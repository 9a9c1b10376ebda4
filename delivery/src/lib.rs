//! courier-delivery: at-least-once delivery on top of courier's actors and
//! persistence, and a deduplicating inbox for receivers. (The TOML file
//! that configures it is read by the facade, `courier::config`.)
//!
//! The logic is pure and lives in plain structs: [`Outbox`] (what the sender
//! has not had confirmed), [`Redelivery`] (when to send again) and [`Inbox`]
//! (what the receiver has applied). The actor adapters around them add the
//! journal, the timer and the network.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod envelope;
mod error;
mod inbox;
mod outbox;
mod receiver;
mod records;
mod redelivery;
mod sender;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use envelope::{Ack, Delivery, DeliveryId, SenderId};
pub use error::{Error, Result};
pub use inbox::{Inbox, InboxChange, Receipt, Window};
pub use outbox::{
    Confirmation, Dispatch, MAX_EXPIRE_AFTER, Outbox, OutboxFull, OutboxSettings, ParkReason,
    Pending, Tick,
};
pub use receiver::{DedupInbox, InboxWrite};
pub use redelivery::{MAX_REDELIVERY_DELAY, Redelivery};
pub use sender::{
    Deliverer, Outgoing, ParkedDelivery, PendingDelivery, Prepared, UnconfirmedWarning,
};
