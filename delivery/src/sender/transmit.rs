//! Sending one attempt: resolving the destination's path now, refusing
//! what can never take the delivery, and keeping why an attempt could not
//! be sent as the delivery's last error.

use std::collections::HashMap;
use std::sync::Arc;

use courier_core::{ActorRef, TryTellError};

use super::redeliverer::Signal;
use super::{Outgoing, Shared};
use crate::envelope::{Delivery, DeliveryId};
use crate::error::{Error, Result};

/// An error and its causes on one line, for a delivery's last error.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// How many resolved destinations a sender keeps.
const ROUTES: usize = 1024;

/// Destinations resolved to references, so that a send does not parse its
/// path and look it up each time. Only local actors are kept (a reference
/// through a resolver, to another node, is resolved again each time: the
/// resolver decides what it reaches). A reference is dropped once its
/// actor has terminated (checked on each use: a new actor at the same path
/// is then looked up), when a send finds it stopped, and all at once when
/// [`ROUTES`] destinations are kept and none of them has terminated.
pub(super) struct Routes<M> {
    refs: HashMap<Arc<str>, ActorRef<Delivery<M>>>,
}

impl<M> Default for Routes<M> {
    fn default() -> Self {
        Self {
            refs: HashMap::new(),
        }
    }
}

impl<M: Send + 'static> Routes<M> {
    /// The live reference kept for `destination`.
    fn get(&mut self, destination: &str) -> Option<ActorRef<Delivery<M>>> {
        let target = self.refs.get(destination)?;
        if target.is_terminated() {
            self.refs.remove(destination);
            return None;
        }
        Some(target.clone())
    }

    fn keep(&mut self, destination: &str, target: &ActorRef<Delivery<M>>) {
        if target.path().scheme().is_some() || self.refs.contains_key(destination) {
            return;
        }
        if self.refs.len() >= ROUTES {
            self.refs.retain(|_, r| !r.is_terminated());
            if self.refs.len() >= ROUTES {
                self.refs.clear();
            }
        }
        self.refs.insert(Arc::from(destination), target.clone());
    }

    fn forget(&mut self, destination: &str) {
        self.refs.remove(destination);
    }
}

/// Where an attempt goes, as the actor system resolves its path now.
enum Route<M> {
    /// An actor that takes `Delivery<M>`.
    Ready(ActorRef<Delivery<M>>),
    /// Not reachable now (no such actor yet, no connection, no node): the
    /// timer tries again.
    Unreachable(String),
    /// The path can never take `Delivery<M>` (another message type, a bad
    /// path): the delivery is parked.
    Refused(String),
}

impl<M: Outgoing> Shared<M> {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes<M>> {
        courier_core::sync::lock(&self.routes)
    }

    /// `destination` resolved: the kept reference, or a lookup (whose
    /// result is kept).
    fn lookup(&self, destination: &str) -> courier_core::Result<ActorRef<Delivery<M>>> {
        if let Some(target) = self.routes().get(destination) {
            return Ok(target);
        }
        let target = self.system.lookup::<Delivery<M>>(destination)?;
        self.routes().keep(destination, &target);
        Ok(target)
    }

    fn route(&self, destination: &str) -> Route<M> {
        match self.lookup(destination) {
            Ok(target) => Route::Ready(target),
            Err(
                e @ (courier_core::Error::WrongMessageType { .. }
                | courier_core::Error::InvalidPath { .. }),
            ) => Route::Refused(chain(&e)),
            Err(e) => Route::Unreachable(chain(&e)),
        }
    }

    /// Checks a new delivery's destination: refused when it can be known
    /// now that it will never take `Delivery<M>`.
    pub(super) fn resolve_new(&self, destination: &str) -> Result<Option<ActorRef<Delivery<M>>>> {
        let refuse = |reason: String| Error::InvalidDestination {
            destination: destination.to_owned(),
            reason,
        };
        match self.lookup(destination) {
            Ok(target) => Ok(Some(target)),
            Err(
                e @ (courier_core::Error::WrongMessageType { .. }
                | courier_core::Error::InvalidPath { .. }
                | courier_core::Error::UnknownScheme { .. }),
            ) => Err(refuse(chain(&e))),
            // Not there yet: the actor may be started later, the node may
            // connect later. The timer keeps trying, and says so.
            Err(_) => Ok(None),
        }
    }

    /// Sends one attempt, at most once. Why an attempt could not be sent is
    /// kept as the delivery's last error; a destination that can never take
    /// the delivery gets it parked.
    pub(super) fn transmit(
        &self,
        id: DeliveryId,
        destination: &str,
        target: Option<ActorRef<Delivery<M>>>,
        message: M,
        attempt: u32,
    ) {
        let (Some(ack_to), Some(signals)) = (self.acks.get(), self.signals.get()) else {
            return;
        };
        let route = target.map_or_else(|| self.route(destination), Route::Ready);
        let error = match route {
            Route::Ready(target) => {
                let (settled_below, expected_inbox) = {
                    let mut state = self.lock();
                    // Confirmed or cancelled since it was taken to be sent
                    // (a resend reads its message back first): it is not
                    // sent again. Sent anyway, it would carry a
                    // `settled_below` above its own id, over ids that were
                    // never written and that a restart hands out again.
                    if state.outbox.get(id).is_none() {
                        return;
                    }
                    let settled_below = state.outbox.settled_below();
                    state.sent_settled_below = state.sent_settled_below.max(settled_below);
                    (settled_below, state.inboxes.get(destination).copied())
                };
                let delivery = Delivery {
                    sender: self.sender.clone(),
                    id,
                    attempt,
                    settled_below,
                    expected_inbox,
                    message,
                    ack_to: ack_to.clone(),
                };
                let sent = match target.try_tell(delivery) {
                    // A kept reference whose actor stopped: another may live
                    // at the path now.
                    Err(TryTellError::Stopped(delivery)) => {
                        self.routes().forget(destination);
                        match self.system.lookup::<Delivery<M>>(destination) {
                            Ok(fresh) if !fresh.is_terminated() => {
                                self.routes().keep(destination, &fresh);
                                fresh.try_tell(delivery)
                            }
                            _ => Err(TryTellError::Stopped(delivery)),
                        }
                    }
                    sent => sent,
                };
                match sent {
                    Ok(()) => {
                        tracing::trace!(sender = %self.sender, %id, attempt, destination, "delivery sent");
                        None
                    }
                    Err(TryTellError::Full(_)) => Some("the destination's mailbox is full".into()),
                    Err(TryTellError::Stopped(_)) => Some("the destination has stopped".into()),
                }
            }
            Route::Unreachable(reason) => Some(reason),
            Route::Refused(reason) => {
                signals.tell(Signal::Park {
                    id,
                    reason: format!("destination {destination} refused: {reason}"),
                });
                Some(reason)
            }
        };
        if let Some(reason) = &error {
            tracing::debug!(sender = %self.sender, %id, destination, error = %reason, "attempt not sent; will redeliver");
        }
        self.lock().outbox.note_error(id, error.map(Arc::from));
    }
}
