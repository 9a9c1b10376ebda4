//! The deliver path of a [`Deliverer`]: numbering, preparing and writing
//! new deliveries (one at a time, in a batch, or prepared for an
//! event-sourced sender's own write), and where each write goes (straight
//! to the store, or through the sender's writer when others are in flight).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use courier_persistence::{Journal, WriteBatch};
use tokio::sync::{Notify, oneshot};

use super::writer::Request;
use super::*;

/// Where a new delivery's write goes (see `Shared::submit`).
enum Route {
    Direct(Arc<dyn Journal>, WriteBatch),
    Writer(oneshot::Receiver<Result<()>>),
    Stopped,
}

/// New deliveries' writes in flight, and whether the sender still takes
/// them. The writer, stopping, refuses new ones and waits for the last of
/// them: one that went straight to the store could otherwise land after a
/// restarted sender of the same name read its outbox, and that sender
/// would hand out its id again (the receiver would drop the new message as
/// a duplicate).
#[derive(Default)]
pub(super) struct Writes {
    count: AtomicUsize,
    stopped: std::sync::atomic::AtomicBool,
    idle: Notify,
}

impl Writes {
    /// Refuses new writes from now on.
    pub(super) fn refuse(&self) {
        // `SeqCst` here and in `Writing::start`: either a caller sees the
        // flag, or `stop` sees its count (and waits for its write).
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Refuses new writes, then waits until none is in flight.
    pub(super) async fn stop(&self) {
        self.refuse();
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One new delivery's write in flight, counted while it is.
struct Writing {
    writes: Arc<Writes>,
    /// No other was in flight when it started.
    alone: bool,
    /// The sender had stopped: nothing may be written.
    refused: bool,
}

impl Writing {
    fn start(writes: &Arc<Writes>) -> Self {
        let before = writes.count.fetch_add(1, Ordering::SeqCst);
        Self {
            writes: Arc::clone(writes),
            alone: before == 0,
            refused: writes.stopped.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if self.writes.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.writes.idle.notify_waiters();
        }
    }
}

impl<M: Outgoing> Deliverer<M> {
    /// Delivers at least once: numbers the message (`make` gets its id),
    /// makes the outbox entry durable, then sends it. Returns once the entry
    /// is flushed.
    ///
    /// Concurrent calls of one sender (from clones of the deliverer, on
    /// several tasks) share their store writes: a call made while another
    /// is in flight goes to the sender's writer, and whatever is waiting
    /// when the writer takes its next group goes to the store as one
    /// write, with the deletes of confirmed deliveries (a call made alone
    /// goes straight to the store). A sender that streams keeps several
    /// calls in flight, or uses [`deliver_all`](Self::deliver_all).
    ///
    /// # Errors
    ///
    /// [`Error::OutboxFull`] when `max_unconfirmed` deliveries are pending
    /// (back-pressure: nothing was accepted); [`Error::InvalidDestination`]
    /// for a path that does not parse, whose scheme no resolver serves, or
    /// whose actor does not take `Delivery<M>` (nothing was accepted);
    /// [`Error::Store`] when the write failed (nothing is sent; should the
    /// write have reached the disk anyway, the delivery is found and sent
    /// on a later tick, never lost and never given to another message);
    /// [`Error::SenderStopped`] when the sender has stopped (nothing was
    /// written).
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns, the delivery's fate is that of its write:
    /// if the write became durable it is sent by a later tick, otherwise
    /// its id is skipped.
    pub async fn deliver(
        &self,
        destination: &str,
        make: impl FnOnce(DeliveryId) -> M,
    ) -> Result<DeliveryId> {
        // One span per delivery: its sender and id name it in every log of
        // the path (send, the receiver's inbox write, the confirm).
        let span = tracing::debug_span!(
            "courier.deliver",
            sender = %self.shared.sender,
            destination,
            id = tracing::field::Empty,
        );
        let mut prepared = self.prepare(destination, make)?;
        span.record("id", tracing::field::display(prepared.id));
        self.shared
            .submit(std::mem::take(&mut prepared.writes))
            .instrument(span.clone())
            .await?;
        let _entered = span.enter();
        Ok(prepared.send())
    }

    /// Delivers every one of `messages` to `destination` at least once, as
    /// [`deliver`](Self::deliver) does one: they get consecutive ids (in
    /// the order given, returned in that order), their outbox entries are
    /// made durable in one write, then they are sent in order. For a sender
    /// that streams: a batch costs one flush, not one per message.
    ///
    /// # Errors
    ///
    /// As [`deliver`](Self::deliver), for the whole batch: nothing is
    /// accepted unless all of it is ([`Error::OutboxFull`] when the batch
    /// does not fit under `max_unconfirmed`, however many are pending), and
    /// a failed write sends none of them.
    ///
    /// # Cancel safety
    ///
    /// As [`deliver`](Self::deliver): dropped before it returns, the
    /// batch's fate is that of its one write, for all of its deliveries
    /// alike.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use courier::prelude::*;
    /// use courier::delivery::{Deliverer, Delivery, OutboxSettings};
    /// use courier::persistence::{Journal, MemoryStore};
    ///
    /// struct Feed {
    ///     journal: Arc<dyn Journal>,
    ///     out: Option<Deliverer<String>>,
    /// }
    ///
    /// impl Actor for Feed {
    ///     type Msg = (Vec<String>, ReplyTo<usize>);
    ///
    ///     async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
    ///         let journal = Arc::clone(&self.journal);
    ///         self.out = Some(Deliverer::start(ctx, "feed", journal, OutboxSettings::default()).await?);
    ///         Ok(())
    ///     }
    ///
    ///     async fn handle(&mut self, (lines, reply): (Vec<String>, ReplyTo<usize>), _ctx: &mut Context<Self>) -> Result<(), BoxError> {
    ///         let out = self.out.as_ref().ok_or("not started")?;
    ///         // One durable write for the whole batch, then each is sent.
    ///         let ids = out.deliver_all("/user/archive", lines).await?;
    ///         reply.reply(ids.len());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// struct Archive;
    ///
    /// impl Actor for Archive {
    ///     type Msg = Delivery<String>;
    ///
    ///     async fn handle(&mut self, d: Delivery<String>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
    ///         d.send_ack();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> anyhow::Result<()> {
    /// let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory()?);
    /// let system = ActorSystem::new("docs");
    /// system.spawn(Props::new(|| Archive).with_name("archive"))?;
    /// let feed = system.spawn(Props::new(move || Feed { journal: journal.clone(), out: None }))?;
    /// let lines = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    /// assert_eq!(feed.ask(|r| (lines, r), Duration::from_secs(1)).await?, 3);
    /// # system.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn deliver_all(
        &self,
        destination: &str,
        messages: impl IntoIterator<Item = M>,
    ) -> Result<Vec<DeliveryId>> {
        let messages: Vec<M> = messages.into_iter().collect();
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let span = tracing::debug_span!(
            "courier.deliver_all",
            sender = %self.shared.sender,
            destination,
            count = messages.len(),
            first = tracing::field::Empty,
        );
        let mut batch = self.prepare_all(destination, messages)?;
        if let Some(first) = batch.first() {
            span.record("first", tracing::field::display(first.id));
        }
        let mut writes = WriteBatch::new();
        for prepared in &mut batch {
            writes.extend(std::mem::take(&mut prepared.writes));
        }
        self.shared.submit(writes).instrument(span.clone()).await?;
        let _entered = span.enter();
        Ok(batch.into_iter().map(Prepared::send).collect())
    }

    /// The first half of [`deliver`](Self::deliver), for a sender whose own
    /// state is event-sourced: numbers the message and returns the records
    /// to write atomically with its events (in the same store as this
    /// deliverer's). Call [`Prepared::send`] once they are durable; drop the
    /// `Prepared` only after the write finished or failed (until a later
    /// tick has checked whether its entry is durable, its id holds the
    /// receivers' dedup watermark below it).
    ///
    /// # Errors
    ///
    /// As [`deliver`](Self::deliver), apart from the write.
    pub fn prepare(
        &self,
        destination: &str,
        make: impl FnOnce(DeliveryId) -> M,
    ) -> Result<Prepared<M>> {
        let target = self.shared.resolve_new(destination)?;
        let mut state = self.shared.lock();
        let id = state
            .outbox
            .reserve()
            .map_err(|full| self.shared.outbox_full(full))?;
        let message = make(id);
        self.numbered(&mut state, destination, target, id, message)
    }

    /// The delivery of `message` under the reserved `id`, its outbox entry
    /// encoded (the message straight into it). On error the id is given
    /// back: nothing was written.
    fn numbered(
        &self,
        state: &mut State,
        destination: &str,
        target: Option<ActorRef<Delivery<M>>>,
        id: DeliveryId,
        message: M,
    ) -> Result<Prepared<M>> {
        let now = self.shared.clock.now();
        match encode_entry(&self.shared.sender.name, destination, millis(now), &message) {
            Ok(entry) => Ok(Prepared {
                shared: Arc::clone(&self.shared),
                id,
                destination: state.intern(destination),
                target,
                message: Some(message),
                writes: WriteBatch::new().put(self.shared.ns.outbox.clone(), id_key(id), entry),
                created: now,
            }),
            Err(e) => {
                state.outbox.cancel(id);
                Err(e)
            }
        }
    }

    /// [`prepare`](Self::prepare) for a batch to one destination: reserves
    /// consecutive ids for all of `messages` or none.
    fn prepare_all(&self, destination: &str, messages: Vec<M>) -> Result<Vec<Prepared<M>>> {
        let target = self.shared.resolve_new(destination)?;
        let mut state = self.shared.lock();
        state
            .outbox
            .check_room(messages.len())
            .map_err(|full| self.shared.outbox_full(full))?;
        let mut batch: Vec<Prepared<M>> = Vec::with_capacity(messages.len());
        for message in messages {
            let prepared = match state.outbox.reserve() {
                Ok(id) => self.numbered(&mut state, destination, target.clone(), id, message),
                Err(full) => Err(self.shared.outbox_full(full)),
            };
            match prepared {
                Ok(prepared) => batch.push(prepared),
                Err(e) => {
                    // Nothing was written: every id goes back, the latest
                    // first, so that ids stay gap-free.
                    for prepared in batch.into_iter().rev() {
                        state.outbox.cancel(prepared.disarm());
                    }
                    return Err(e);
                }
            }
        }
        Ok(batch)
    }
}

impl<M> Shared<M> {
    /// Makes `writes` (new deliveries' records) durable; resolves once they
    /// are. A delivery written while no other of this sender is goes
    /// straight to the store (through the writer it would only wait for a
    /// hop, with nothing to share its write with); one written while others
    /// are in flight goes to the sender's writer, which puts every one
    /// waiting into one write. Such writes hold puts only (and a requeue's
    /// delete of a parked id below the id it puts), never a delete that the
    /// id mark must cover, so their order among the writer's writes does
    /// not matter. Either way the write is on its way before the future is
    /// first polled only through the writer; straight to the store it is
    /// handed over on the first poll.
    pub(super) fn submit(
        &self,
        writes: WriteBatch,
    ) -> impl std::future::Future<Output = Result<()>> + use<M> {
        let writing = Writing::start(&self.writing);
        let owner = self.owner.clone();
        let name = self.sender.name.clone();
        let route = if writing.refused {
            Route::Stopped
        } else if writing.alone {
            Route::Direct(Arc::clone(&self.journal), writes)
        } else {
            let (done, written) = oneshot::channel();
            match self.writes.send(Request::Deliver(writes, done)) {
                Ok(()) => Route::Writer(written),
                Err(_) => Route::Stopped,
            }
        };
        async move {
            let _writing = writing;
            let stopped = || Error::SenderStopped { path: owner };
            match route {
                Route::Direct(journal, writes) => {
                    journal.write(writes).await.map_err(|source| Error::Store {
                        owner: name,
                        source,
                    })
                }
                Route::Writer(written) => match written.await {
                    Ok(result) => result,
                    Err(_) => Err(stopped()),
                },
                Route::Stopped => Err(stopped()),
            }
        }
    }
}
