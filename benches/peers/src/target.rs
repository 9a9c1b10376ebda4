//! The two traits every implementation is driven through.
//!
//! All four implementations run the same actor: it adds up `Inc(x)` messages,
//! answers `Flush` with how many `Inc`s it handled since the last flush (so a
//! driver knows the last message of a burst has been *handled*, not just
//! enqueued), and answers `Get` (an ask) with that count.

use std::future::Future;

use crate::latch::Latch;

/// The mailbox an actor is spawned with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxKind {
    /// Unbounded: a send never waits.
    Unbounded,
    /// Bounded to this capacity: a waiting send applies back-pressure.
    Bounded(usize),
}

/// A reference to one running counter actor.
pub trait Target: Clone + Send + Sync + 'static {
    /// Enqueues `Inc(x)` without waiting (courier `tell`, ractor `cast`,
    /// kameo `tell(..).try_send()`, mpsc `send` on an unbounded channel).
    fn tell(&self, x: u64);

    /// Enqueues `Inc(x)`, waiting for room in a bounded mailbox (courier
    /// `send`, kameo `tell(..).send()`, mpsc `Sender::send`).
    fn send(&self, x: u64) -> impl Future<Output = ()> + Send;

    /// Resolves once every message this sender enqueued before has been
    /// handled, with the number of `Inc`s handled since the last flush.
    fn flush(&self) -> impl Future<Output = u64> + Send;

    /// One request–reply round trip (courier `ask`, ractor `call`, kameo
    /// `ask`, mpsc + oneshot).
    fn ask(&self) -> impl Future<Output = u64> + Send;
}

/// An implementation: spawns and stops counter actors.
pub trait Peer: Clone + Send + Sync + 'static {
    /// The reference that messages go through.
    type Ref: Target;
    /// What is needed, besides the reference, to wait for the actor's end.
    type Handle: Send + 'static;

    /// Spawns one counter actor, which counts `started` down (if any) from
    /// its start hook.
    fn spawn(
        &self,
        mailbox: MailboxKind,
        started: Option<Latch>,
    ) -> impl Future<Output = (Self::Ref, Self::Handle)> + Send;

    /// Stops all these actors and waits until each has stopped completely
    /// (stop requests first, then the waits, so the actors stop in
    /// parallel).
    fn stop_all(&self, actors: Vec<(Self::Ref, Self::Handle)>) -> impl Future<Output = ()> + Send;

    /// Releases whatever the implementation keeps besides its actors.
    fn finish(self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
