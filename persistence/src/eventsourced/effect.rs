//! [`Effect`]: what a command handler decides (events to persist, records
//! to write with them, follow-ups once they are durable and applied).

use std::sync::Arc;

use courier_core::ReplyTo;

use super::{EventSourced, PersistentContext};
use crate::journal::{Journal, WriteBatch};

pub(super) type Then<E> = Box<dyn FnOnce(&E, &mut PersistentContext<E>) + Send>;

/// What a command does: events to persist, records to write with them, and
/// follow-up effects that run once they are durable and applied.
#[must_use = "an effect does nothing unless returned from handle_command"]
pub struct Effect<E: EventSourced> {
    pub(super) events: Vec<E::Event>,
    pub(super) writes: WriteBatch,
    /// Journals that `writes` must go to (see [`Effect::with_writes_in`]).
    pub(super) bound: Vec<Arc<dyn Journal>>,
    pub(super) then: Vec<Then<E>>,
    pub(super) stop: bool,
}

impl<E: EventSourced> Effect<E> {
    /// Persist nothing.
    pub fn none() -> Self {
        Self {
            events: Vec::new(),
            writes: WriteBatch::new(),
            bound: Vec::new(),
            then: Vec::new(),
            stop: false,
        }
    }

    /// Persist one event.
    pub fn persist(event: E::Event) -> Self {
        Self::persist_all(vec![event])
    }

    /// Persist several events atomically.
    pub fn persist_all(events: Vec<E::Event>) -> Self {
        Self {
            events,
            ..Self::none()
        }
    }

    /// Also write `batch` (key–value records, for example an outbox entry)
    /// in the same atomic write as the events.
    pub fn with_writes(mut self, batch: WriteBatch) -> Self {
        self.writes.extend(batch);
        self
    }

    /// [`with_writes`](Self::with_writes) for records that are read back
    /// from `journal`, such as a dedup inbox's: the actor refuses the
    /// effect (nothing is written; the actor stops with
    /// [`Error::Invalid`](crate::Error::Invalid), logged at ERROR) unless
    /// its own journal is that store ([`same_store`](crate::same_store)).
    /// Written anywhere else, the records would be missing where they are
    /// read, and a dedup inbox would apply a redelivery a second time.
    pub fn with_writes_in(mut self, journal: &Arc<dyn Journal>, batch: WriteBatch) -> Self {
        self.writes.extend(batch);
        self.bound.push(Arc::clone(journal));
        self
    }

    /// After the events are durable and applied, run `f` with the new state.
    pub fn then(mut self, f: impl FnOnce(&E, &mut PersistentContext<E>) + Send + 'static) -> Self {
        self.then.push(Box::new(f));
        self
    }

    /// After the events are durable and applied, reply with `f(&state)`.
    pub fn reply<R: Send + 'static>(
        self,
        reply_to: ReplyTo<R>,
        f: impl FnOnce(&E) -> R + Send + 'static,
    ) -> Self {
        self.then(move |state, _| reply_to.reply(f(state)))
    }

    /// After the events are durable and applied, stop the actor.
    pub fn stop(mut self) -> Self {
        self.stop = true;
        self
    }

    /// The events this effect persists.
    pub fn events(&self) -> &[E::Event] {
        &self.events
    }
}
