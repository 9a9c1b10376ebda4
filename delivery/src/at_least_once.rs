//! [`AtLeastOnce`]: an actor's durable sender, named once, kept as a plain
//! field of the actor and started in its start hook.
//!
//! ```text
//! struct OrderDesk { payments: AtLeastOnce<Charge>, .. }   // the field
//! AtLeastOnce::new("order-desk", journal, settings)        // the factory
//! self.payments.start(ctx).await?;                         // `started`
//! self.payments.deliver("/user/payments", |id| ..).await?; // any handler
//! ```
//!
//! The name given to [`new`](AtLeastOnce::new) names the outbox, the log
//! fields and (through `courier::config::Config::at_least_once`) the TOML
//! override `[delivery.actor.<name>]`. Clones share the started
//! [`Deliverer`]; a restarted owner starts it again (reloading the outbox),
//! replacing the one its earlier incarnation started.

use std::sync::{Arc, RwLock};

use courier_core::{Actor, Context};
use courier_persistence::{Effect, EventSourced, Journal};

use crate::envelope::DeliveryId;
use crate::error::{Error, Result};
use crate::outbox::OutboxSettings;
use crate::sender::{Deliverer, Outgoing, Prepared};

/// An actor's at-least-once sender of messages of type `M`: name, journal
/// and settings given once, started in the actor's start hook, used from
/// any handler. Cheap to clone; clones share one deliverer.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use courier::prelude::*;
/// use courier::delivery::{AtLeastOnce, Delivery, OutboxSettings};
/// use courier::persistence::{Journal, MemoryStore};
///
/// struct Desk {
///     payments: AtLeastOnce<u64>,
/// }
///
/// impl Actor for Desk {
///     type Msg = (u64, ReplyTo<u64>);
///
///     async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
///         self.payments.start(ctx).await?;
///         Ok(())
///     }
///
///     async fn handle(&mut self, (amount, reply): (u64, ReplyTo<u64>), _ctx: &mut Context<Self>) -> Result<(), BoxError> {
///         let id = self.payments.deliver("/user/payments", |_| amount).await?;
///         reply.reply(id.get());
///         Ok(())
///     }
/// }
///
/// struct Payments;
///
/// impl Actor for Payments {
///     type Msg = Delivery<u64>;
///
///     async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
///         d.send_ack();
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory()?);
/// let system = ActorSystem::new("docs");
/// system.spawn(Props::new(|| Payments).with_name("payments"))?;
/// let payments = AtLeastOnce::new("order-desk", journal, OutboxSettings::default());
/// let desk = system.spawn(Props::new(move || Desk { payments: payments.clone() }))?;
/// assert_eq!(desk.ask(|r| (5, r), Duration::from_secs(1)).await?, 1);
/// # system.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct AtLeastOnce<M> {
    name: Arc<str>,
    journal: Arc<dyn Journal>,
    settings: OutboxSettings,
    started: Arc<RwLock<Option<Deliverer<M>>>>,
}

impl<M> Clone for AtLeastOnce<M> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            journal: Arc::clone(&self.journal),
            settings: self.settings.clone(),
            started: Arc::clone(&self.started),
        }
    }
}

impl<M> std::fmt::Debug for AtLeastOnce<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AtLeastOnce({})", self.name)
    }
}

impl<M: Outgoing> AtLeastOnce<M> {
    /// The sender named `name`, keeping its outbox in `journal`; nothing
    /// is read or started until [`start`](Self::start).
    pub fn new(
        name: impl Into<String>,
        journal: Arc<dyn Journal>,
        settings: OutboxSettings,
    ) -> Self {
        Self {
            name: Arc::from(name.into()),
            journal,
            settings,
            started: Arc::new(RwLock::new(None)),
        }
    }

    /// The sender's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its settings.
    pub fn settings(&self) -> &OutboxSettings {
        &self.settings
    }

    /// Starts the deliverer under the actor owning `ctx` (as
    /// [`Deliverer::start`]): reloads the outbox and redelivers what was
    /// unconfirmed. Call it in `started` (or `recovery_completed`); a
    /// restarted actor calls it again, and the new deliverer replaces the
    /// old.
    ///
    /// # Errors
    ///
    /// As [`Deliverer::start`], including [`Error::SenderNameTaken`] when
    /// another live sender of the system has this name.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns, nothing is started and the name is free
    /// again.
    pub async fn start<A: Actor>(&self, ctx: &mut Context<A>) -> Result<Deliverer<M>> {
        let deliverer = Deliverer::start(
            ctx,
            &self.name,
            Arc::clone(&self.journal),
            self.settings.clone(),
        )
        .await?;
        *courier_core::sync::write(&self.started) = Some(deliverer.clone());
        Ok(deliverer)
    }

    /// The started deliverer (for its `pending`, `parked`, `on_warning`,
    /// ...).
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`] before [`start`](Self::start).
    pub fn deliverer(&self) -> Result<Deliverer<M>> {
        courier_core::sync::read(&self.started)
            .clone()
            .ok_or_else(|| Error::NotStarted {
                sender: self.name.to_string(),
            })
    }

    /// Delivers at least once, as [`Deliverer::deliver`].
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`] before [`start`](Self::start), else as
    /// [`Deliverer::deliver`].
    ///
    /// # Cancel safety
    ///
    /// As [`Deliverer::deliver`].
    pub async fn deliver(
        &self,
        destination: &str,
        make: impl FnOnce(DeliveryId) -> M,
    ) -> Result<DeliveryId> {
        self.deliverer()?.deliver(destination, make).await
    }

    /// Delivers a batch at least once, in one durable write, as
    /// [`Deliverer::deliver_all`].
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`] before [`start`](Self::start), else as
    /// [`Deliverer::deliver_all`].
    ///
    /// # Cancel safety
    ///
    /// As [`Deliverer::deliver_all`].
    pub async fn deliver_all(
        &self,
        destination: &str,
        messages: impl IntoIterator<Item = M>,
    ) -> Result<Vec<DeliveryId>> {
        self.deliverer()?.deliver_all(destination, messages).await
    }

    /// Numbers a delivery whose records go into an event-sourced sender's
    /// own write, as [`Deliverer::prepare`]; see [`DeliverEffect`] to add it
    /// to an [`Effect`].
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`] before [`start`](Self::start), else as
    /// [`Deliverer::prepare`].
    pub fn prepare(
        &self,
        destination: &str,
        make: impl FnOnce(DeliveryId) -> M,
    ) -> Result<Prepared<M>> {
        self.deliverer()?.prepare(destination, make)
    }

    /// How many deliveries await their ack (0 before the start).
    pub fn unconfirmed(&self) -> usize {
        self.deliverer().map_or(0, |d| d.unconfirmed())
    }
}

/// Adds a [`Prepared`] delivery to an event-sourced command's [`Effect`]:
/// its outbox entry commits in the same atomic write as the events, and it
/// is sent once that write is durable (Akka's `persist(evt) { deliver(..) }`).
pub trait DeliverEffect {
    /// The effect with `prepared`'s records in its write and its send
    /// among its follow-ups.
    #[must_use]
    fn and_deliver<M: Outgoing>(self, prepared: Prepared<M>) -> Self;
}

impl<E: EventSourced> DeliverEffect for Effect<E> {
    fn and_deliver<M: Outgoing>(self, prepared: Prepared<M>) -> Self {
        // Bound to the sender's store: its outbox is read back from there
        // (after a restart, to redeliver), so the actor refuses the effect
        // if its journal is another store.
        let journal = Arc::clone(prepared.journal());
        self.with_writes_in(&journal, prepared.writes())
            .then(move |_, _| {
                prepared.send();
            })
    }
}
