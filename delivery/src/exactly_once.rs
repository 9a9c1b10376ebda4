//! Processing a delivery exactly once, in one call: [`DedupInbox::process`]
//! for a plain receiver, [`DedupInbox::effect`] for an event-sourced one,
//! and [`ExactlyOnce`], the receiver's inbox as a plain field of the actor,
//! opened with it.
//!
//! Both calls do the same steps:
//!
//! 1. check the inbox: a duplicate is acked again and not applied;
//! 2. a new delivery's effect records and its inbox record go into one
//!    atomic write;
//! 3. once that write is flushed, the inbox in memory changes and the
//!    delivery is acked.
//!
//! The caller changes its state in memory only once the call says the
//! delivery was new (plain), or in `apply_event` (event-sourced): state
//! moves only after persistence.

use std::sync::Arc;

use courier_persistence::{Effect, EventSourced, Journal, WriteBatch};
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::envelope::Delivery;
use crate::error::Result;
use crate::inbox::Receipt;
use crate::receiver::{DedupInbox, Submitted};

impl DedupInbox {
    /// Processes `delivery` exactly once, for a receiver whose effect is
    /// records in courier's store (or none, its state in memory):
    /// a duplicate is acked again and `effect` is not called
    /// ([`Receipt::Duplicate`]); a new delivery's `effect` records and its
    /// inbox record are written atomically, then it is acked
    /// ([`Receipt::New`]: apply the in-memory effect now). Concurrent calls
    /// (and [`commit`](Self::commit)s) share one write: see
    /// [`DedupInbox`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the write fails (nothing acked, the inbox
    /// unchanged: the redelivery is new again); [`Error::InboxLost`](crate::Error::InboxLost) and
    /// [`Error::InboxBusy`](crate::Error::InboxBusy) as [`prepare`](Self::prepare).
    ///
    /// # Cancel safety
    ///
    /// As [`commit`](Self::commit): once `effect` was called, the delivery
    /// is queued for the inbox's next write, and dropping the future does
    /// not take it back: if that write succeeds, its records are durable
    /// and it is acked all the same, but the in-memory effect, which the
    /// caller never applied, is missing (keep state that matters in the
    /// effect's records); if it fails, nothing is written or acked.
    pub async fn process<M>(
        &self,
        delivery: &Delivery<M>,
        effect: impl FnOnce(&M) -> WriteBatch,
    ) -> Result<Receipt> {
        // The receive step of one delivery's trace: the same sender
        // (name@incarnation) and id as the sender's `courier.deliver`.
        let span = tracing::debug_span!(
            "courier.receive",
            receiver = %self.core.name,
            sender = %delivery.sender,
            id = %delivery.id,
            attempt = delivery.attempt,
        );
        self.process_in(delivery, effect).instrument(span).await
    }

    async fn process_in<M>(
        &self,
        delivery: &Delivery<M>,
        effect: impl FnOnce(&M) -> WriteBatch,
    ) -> Result<Receipt> {
        if self.screen(delivery)? == Receipt::Duplicate {
            delivery.send_ack();
            return Ok(Receipt::Duplicate);
        }
        let effect = effect(&delivery.message);
        self.core
            .commit(delivery, effect, tracing::Span::current())
            .await
    }

    /// Processes `delivery` exactly once in an event-sourced receiver:
    /// returns the command's [`Effect`]. A duplicate is acked again and
    /// gets [`Effect::none`] (`effect` is not called); for a new delivery,
    /// `effect`'s events and the inbox record commit in one atomic write,
    /// and the delivery is acked after it (and after the effect's other
    /// follow-ups).
    ///
    /// # Errors
    ///
    /// [`Error::InboxLost`](crate::Error::InboxLost) and [`Error::InboxBusy`](crate::Error::InboxBusy) as
    /// [`prepare`](Self::prepare): nothing is applied or acked.
    pub fn effect<E: EventSourced, M>(
        &self,
        delivery: &Delivery<M>,
        effect: impl FnOnce(&M) -> Effect<E>,
    ) -> Result<Effect<E>> {
        let _receive = tracing::debug_span!(
            "courier.receive",
            receiver = %self.core.name,
            sender = %delivery.sender,
            id = %delivery.id,
            attempt = delivery.attempt,
        )
        .entered();
        if self.check(delivery) == Receipt::Duplicate {
            delivery.send_ack();
            return Ok(Effect::none());
        }
        let write = self.prepare(delivery)?;
        // Bound to the inbox's store: the actor refuses the effect if its
        // journal is another, where the inbox would never read it back.
        Ok(effect(&delivery.message)
            .with_writes_in(&self.core.journal, write.writes())
            .then(move |_, _| write.ack()))
    }
}

/// A receiver's dedup inbox as a plain field of the actor: named once,
/// opened (loaded from the store) on first use or by
/// [`open`](Self::open), and reopened by each new incarnation of the actor
/// that makes a new one in its factory. Cheap to clone; clones share the
/// inbox.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use courier::prelude::*;
/// use courier::delivery::{Delivery, ExactlyOnce, Receipt};
/// use courier::persistence::{Journal, MemoryStore, WriteBatch};
///
/// struct Payments {
///     inbox: ExactlyOnce,
///     charged: u64,
/// }
///
/// impl Actor for Payments {
///     type Msg = Delivery<u64>;
///
///     async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
///         // The charge record and the inbox record in one write; ack after.
///         let receipt = self
///             .inbox
///             .process(&d, |amount| {
///                 WriteBatch::new().put("charges", d.id.get().to_be_bytes().to_vec(), amount.to_be_bytes().to_vec())
///             })
///             .await?;
///         if receipt == Receipt::New {
///             self.charged += d.message;
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory()?);
/// let system = ActorSystem::new("docs");
/// system.spawn(
///     Props::new(move || Payments { inbox: ExactlyOnce::new("payments", journal.clone()), charged: 0 })
///         .with_name("payments"),
/// )?;
/// # system.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ExactlyOnce {
    name: Arc<str>,
    journal: Arc<dyn Journal>,
    inbox: Arc<OnceCell<DedupInbox>>,
}

impl std::fmt::Debug for ExactlyOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExactlyOnce({})", self.name)
    }
}

impl ExactlyOnce {
    /// The inbox of receiver `name` in `journal`; read on first use.
    pub fn new(name: impl Into<String>, journal: Arc<dyn Journal>) -> Self {
        Self {
            name: Arc::from(name.into()),
            journal,
            inbox: Arc::new(OnceCell::new()),
        }
    }

    /// The receiver's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The inbox, opened ([`DedupInbox::open`]) on the first call.
    ///
    /// # Errors
    ///
    /// As [`DedupInbox::open`]; a later call tries again.
    ///
    /// # Cancel safety
    ///
    /// Dropped half-way, the inbox is not opened; a later call opens it.
    pub async fn open(&self) -> Result<&DedupInbox> {
        self.inbox
            .get_or_try_init(|| DedupInbox::open(Arc::clone(&self.journal), &self.name))
            .await
    }

    /// [`DedupInbox::process`], opening the inbox first if need be.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`DedupInbox::process`].
    ///
    /// # Cancel safety
    ///
    /// As [`DedupInbox::process`].
    pub async fn process<M>(
        &self,
        delivery: &Delivery<M>,
        effect: impl FnOnce(&M) -> WriteBatch,
    ) -> Result<Receipt> {
        self.open().await?.process(delivery, effect).await
    }

    /// [`DedupInbox::submit`], opening the inbox first if need be: queues
    /// a new delivery (with the records `effect` makes of it) for the
    /// inbox's next write and returns without waiting for it, so that a
    /// receiver's deliveries share flushes; the ack is sent once the write
    /// is durable. A duplicate is acked again here and `effect` is not
    /// called; its [`Submitted`] resolves to [`Receipt::Duplicate`].
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); the write's own outcome is the
    /// [`Submitted`]'s.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns, nothing is queued (the inbox may be
    /// open); once it returned, the commit happens whether or not the
    /// [`Submitted`] is awaited.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use courier::persistence::{Journal, WriteBatch};
    /// use courier::prelude::*;
    ///
    /// /// Keeps each order as a record; never waits for a flush.
    /// struct Orders {
    ///     inbox: ExactlyOnce,
    /// }
    ///
    /// impl Actor for Orders {
    ///     type Msg = Delivery<u64>;
    ///
    ///     async fn handle(&mut self, d: Delivery<u64>, _: &mut Context<Self>) -> Result<(), BoxError> {
    ///         let order = |n: &u64| WriteBatch::new().put("orders", n.to_be_bytes().to_vec(), Vec::new());
    ///         // Acked once durable, with whatever else is queued by then.
    ///         drop(self.inbox.submit(&d, order).await?);
    ///         Ok(())
    ///     }
    /// }
    /// # fn main() {}
    /// ```
    pub async fn submit<M>(
        &self,
        delivery: &Delivery<M>,
        effect: impl FnOnce(&M) -> WriteBatch,
    ) -> Result<Submitted> {
        let inbox = self.open().await?;
        match inbox.screen(delivery) {
            Ok(Receipt::Duplicate) => {
                delivery.send_ack();
                Ok(Submitted::ready(&self.name, Receipt::Duplicate))
            }
            Ok(Receipt::New) => Ok(inbox.submit(delivery, effect(&delivery.message))),
            Err(refused) => Ok(Submitted::failed(&self.name, refused)),
        }
    }

    /// [`DedupInbox::effect`], opening the inbox first if need be.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`DedupInbox::effect`].
    ///
    /// # Cancel safety
    ///
    /// Dropped half-way, nothing is applied or acked.
    pub async fn effect<E: EventSourced, M>(
        &self,
        delivery: &Delivery<M>,
        effect: impl FnOnce(&M) -> Effect<E>,
    ) -> Result<Effect<E>> {
        self.open().await?.effect(delivery, effect)
    }
}
