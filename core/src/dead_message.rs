//! [`DeadMessage`]: a dead letter with the undelivered message itself (and
//! the sender's path, when the send named one), as Akka's
//! `DeadLetter(message, sender, recipient)`.
//!
//! Published on the event stream next to each [`DeadLetter`] that still had
//! its message, but only while someone subscribes to `DeadMessage`: a
//! system nobody asks pays nothing for it. The message is type-erased;
//! one subscriber can [`take`](DeadMessage::take) it back as its type.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::dead_letter::DeadLetter;
use crate::path::ActorPath;
use crate::sync;

type Slot = Arc<Mutex<Option<Box<dyn Any + Send>>>>;

/// A message that could not be delivered, with the message.
#[derive(Clone)]
pub struct DeadMessage {
    /// The dead letter (recipient, message type, reason).
    pub letter: DeadLetter,
    /// Who sent it, when the send said (see
    /// [`ActorRef::tell_from`](crate::ActorRef::tell_from)).
    pub sender: Option<ActorPath>,
    message: Slot,
}

impl fmt::Debug for DeadMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadMessage")
            .field("letter", &self.letter)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl DeadMessage {
    pub(crate) fn new<M: Send + 'static>(
        letter: DeadLetter,
        sender: Option<ActorPath>,
        message: M,
    ) -> Self {
        Self {
            letter,
            sender,
            message: Arc::new(Mutex::new(Some(Box::new(message)))),
        }
    }

    /// Whether the message is still here and of type `M`.
    pub fn is<M: 'static>(&self) -> bool {
        sync::lock(&self.message)
            .as_ref()
            .is_some_and(|m| m.is::<M>())
    }

    /// Takes the message out as an `M`: `None` when it is of another type
    /// (it stays, for another subscriber) or was taken already (by any
    /// clone of this event).
    pub fn take<M: 'static>(&self) -> Option<M> {
        let mut slot = sync::lock(&self.message);
        if !slot.as_ref().is_some_and(|m| m.is::<M>()) {
            return None;
        }
        slot.take()?.downcast::<M>().ok().map(|m| *m)
    }
}
