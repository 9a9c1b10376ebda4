//! courier-delivery: at-least-once delivery on top of courier's actors and
//! persistence, a deduplicating inbox for receivers, and TOML configuration.
//!
//! The logic is pure and lives in plain structs: [`Outbox`] (what the sender
//! has not had confirmed), [`Redelivery`] (when to send again) and [`Inbox`]
//! (what the receiver has applied). The actor adapters around them add the
//! journal, the timer and the network.

mod config;
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

pub use config::{
    BackoffKind, BackoffSettings, Config, DeliverySettings, MAX_EXPIRE_AFTER, PersistenceConfig,
    RemoteConfig, SnapshotSettings,
};
pub use envelope::{Ack, Delivery, DeliveryId, SenderId};
pub use error::{Error, Result};
pub use inbox::{Inbox, InboxChange, Receipt, Window};
pub use outbox::{
    Confirmation, Dispatch, Outbox, OutboxFull, OutboxSettings, ParkReason, Pending, Tick,
};
pub use receiver::{DedupInbox, InboxWrite};
pub use redelivery::{MAX_REDELIVERY_DELAY, Redelivery};
pub use sender::{
    Deliverer, Outgoing, ParkedDelivery, PendingDelivery, Prepared, UnconfirmedWarning,
};
