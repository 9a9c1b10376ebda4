//! The counter actor on kameo 0.22 (default features).
//!
//! kameo takes one Rust type per message (`Message<T>`), so the counter's
//! three messages are three types here rather than one enum.

use std::time::Duration;

use kameo::actor::{ActorRef, Spawn};
use kameo::error::Infallible;
use kameo::mailbox;
use kameo::message::{Context, Message};
use tokio::sync::oneshot;

use crate::latch::Latch;
use crate::target::{MailboxKind, Peer, Target};

/// Add to the sum.
#[derive(Debug)]
pub struct Inc(pub u64);

/// Answer with the `Inc`s handled since the last flush.
#[derive(Debug)]
pub struct Flush(pub oneshot::Sender<u64>);

/// Answer with the `Inc`s handled since the last flush (an ask).
#[derive(Debug)]
pub struct Get;

/// The counter.
#[derive(Debug, Default)]
pub struct Counter {
    sum: u64,
    count: u64,
}

impl kameo::Actor for Counter {
    type Args = Option<Latch>;
    type Error = Infallible;

    async fn on_start(started: Option<Latch>, _: ActorRef<Self>) -> Result<Self, Infallible> {
        if let Some(latch) = started {
            latch.count_down();
        }
        Ok(Self::default())
    }
}

impl Message<Inc> for Counter {
    type Reply = ();

    async fn handle(&mut self, Inc(x): Inc, _ctx: &mut Context<Self, ()>) {
        self.sum = self.sum.wrapping_add(x);
        self.count += 1;
    }
}

impl Message<Flush> for Counter {
    type Reply = ();

    async fn handle(&mut self, Flush(tx): Flush, _ctx: &mut Context<Self, ()>) {
        let _ = tx.send(std::mem::take(&mut self.count));
    }
}

impl Message<Get> for Counter {
    type Reply = u64;

    async fn handle(&mut self, _: Get, _ctx: &mut Context<Self, u64>) -> u64 {
        self.count
    }
}

/// A kameo reference, with the reply timeout its asks use.
#[derive(Clone, Debug)]
pub struct KameoRef {
    actor: ActorRef<Counter>,
    reply_timeout: Option<Duration>,
}

impl Target for KameoRef {
    fn tell(&self, x: u64) {
        self.actor
            .tell(Inc(x))
            .try_send()
            .expect("kameo mailbox full or actor stopped");
    }

    async fn send(&self, x: u64) {
        // `.send()` rather than `.await`: the `IntoFuture` of a tell request
        // boxes the future, which a caller need not pay for.
        self.actor
            .tell(Inc(x))
            .send()
            .await
            .expect("kameo actor stopped");
    }

    async fn flush(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        self.actor
            .tell(Flush(tx))
            .send()
            .await
            .expect("kameo actor stopped");
        rx.await.expect("kameo flush dropped")
    }

    async fn ask(&self) -> u64 {
        let request = self.actor.ask(Get);
        let reply = match self.reply_timeout {
            None => request.send().await,
            Some(timeout) => request.reply_timeout(timeout).send().await,
        };
        reply.expect("kameo ask failed")
    }
}

/// kameo; `reply_timeout` is set on every ask.
#[derive(Clone, Debug, Default)]
pub struct KameoPeer {
    /// The reply timeout of each ask (`None`: kameo's default, no timeout).
    pub reply_timeout: Option<Duration>,
}

impl Peer for KameoPeer {
    type Ref = KameoRef;
    type Handle = ();

    async fn spawn(&self, mailbox: MailboxKind, started: Option<Latch>) -> (KameoRef, ()) {
        let mailbox = match mailbox {
            MailboxKind::Unbounded => mailbox::unbounded(),
            MailboxKind::Bounded(capacity) => mailbox::bounded(capacity),
        };
        let actor = Counter::spawn_with_mailbox(started, mailbox);
        let actor = KameoRef {
            actor,
            reply_timeout: self.reply_timeout,
        };
        (actor, ())
    }

    async fn stop_all(&self, actors: Vec<(KameoRef, ())>) {
        for (actor, ()) in &actors {
            actor
                .actor
                .stop_gracefully()
                .await
                .expect("kameo actor already stopped");
        }
        for (actor, ()) in actors {
            actor.actor.wait_for_shutdown().await;
        }
    }
}
