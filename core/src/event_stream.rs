//! The system event stream: a typed publish/subscribe bus.
//!
//! Any `Clone + Send + 'static` type can be published; each subscriber gets
//! every event of the type it subscribed to that is published after it
//! subscribed. Dead letters travel here as [`DeadLetter`](crate::DeadLetter);
//! other crates publish their own events (parked deliveries, for example).
//!
//! Each event type has its own bounded broadcast channel. A subscriber that
//! falls more than the configured capacity behind loses the oldest events and
//! is told how many it missed (`RecvError::Lagged`), so a slow subscriber can
//! never slow down or block a publisher.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::sync;

/// A typed publish/subscribe bus shared by the whole actor system.
///
/// # Examples
///
/// ```
/// use courier::ActorSystem;
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Deployed(u32);
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let system = ActorSystem::new("docs");
/// let mut events = system.event_stream().subscribe::<Deployed>();
/// system.event_stream().publish(Deployed(7));
/// assert_eq!(events.recv().await.ok(), Some(Deployed(7)));
/// # }
/// ```
#[derive(Clone)]
pub struct EventStream {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    channels: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl EventStream {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                channels: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Subscribes to every event of type `E` published from now on.
    pub fn subscribe<E: Clone + Send + 'static>(&self) -> broadcast::Receiver<E> {
        let mut channels = sync::lock(&self.inner.channels);
        let entry = channels
            .entry(TypeId::of::<E>())
            .or_insert_with(|| Box::new(broadcast::channel::<E>(self.inner.capacity).0));
        match entry.downcast_ref::<broadcast::Sender<E>>() {
            Some(sender) => sender.subscribe(),
            // The map is keyed by the TypeId of the value's own type, so the
            // downcast cannot fail; fall back to a detached channel anyway
            // rather than panic.
            None => broadcast::channel::<E>(1).1,
        }
    }

    /// Publishes `event` to the current subscribers of its type and returns
    /// how many there were. Never blocks.
    pub fn publish<E: Clone + Send + 'static>(&self, event: E) -> usize {
        let channels = sync::lock(&self.inner.channels);
        channels
            .get(&TypeId::of::<E>())
            .and_then(|c| c.downcast_ref::<broadcast::Sender<E>>())
            .and_then(|sender| sender.send(event).ok())
            .unwrap_or(0)
    }

    /// Whether anyone is subscribed to events of type `E`.
    pub fn has_subscribers<E: Clone + Send + 'static>(&self) -> bool {
        let channels = sync::lock(&self.inner.channels);
        channels
            .get(&TypeId::of::<E>())
            .and_then(|c| c.downcast_ref::<broadcast::Sender<E>>())
            .is_some_and(|s| s.receiver_count() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct A(u8);
    #[derive(Clone, Debug, PartialEq)]
    struct B(u8);

    #[tokio::test]
    async fn events_reach_only_subscribers_of_their_type() {
        let stream = EventStream::new(16);
        assert_eq!(stream.publish(A(0)), 0, "no subscriber yet");
        let mut a = stream.subscribe::<A>();
        let mut b = stream.subscribe::<B>();
        assert_eq!(stream.publish(A(1)), 1);
        assert_eq!(stream.publish(B(2)), 1);
        assert_eq!(a.recv().await.ok(), Some(A(1)));
        assert_eq!(b.recv().await.ok(), Some(B(2)));
        assert!(a.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_instead_of_blocking() {
        let stream = EventStream::new(2);
        let mut a = stream.subscribe::<A>();
        for i in 0..5 {
            stream.publish(A(i));
        }
        assert!(matches!(
            a.recv().await,
            Err(broadcast::error::RecvError::Lagged(3))
        ));
        assert_eq!(a.recv().await.ok(), Some(A(3)));
    }
}
