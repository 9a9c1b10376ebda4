//! The counter actor on courier.

use std::time::Duration;

use courier::{Actor, ActorRef, ActorSystem, BoxError, Context, Mailbox, Props, ReplyTo};
use tokio::sync::oneshot;

use crate::latch::Latch;
use crate::target::{MailboxKind, Peer, Target};

/// Long enough never to fire in a bench; courier's `ask` always takes one.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The counter's messages.
#[derive(Debug)]
pub enum Msg {
    /// Add to the sum.
    Inc(u64),
    /// Answer with the `Inc`s handled since the last flush.
    Flush(oneshot::Sender<u64>),
    /// Answer with the `Inc`s handled since the last flush (an ask).
    Get(ReplyTo<u64>),
}

/// The counter.
#[derive(Debug, Default)]
pub struct Counter {
    sum: u64,
    count: u64,
    started: Option<Latch>,
}

impl Actor for Counter {
    type Msg = Msg;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if let Some(latch) = &self.started {
            latch.count_down();
        }
        Ok(())
    }

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Msg::Inc(x) => {
                self.sum = self.sum.wrapping_add(x);
                self.count += 1;
            }
            Msg::Flush(tx) => {
                let _ = tx.send(std::mem::take(&mut self.count));
            }
            Msg::Get(reply) => reply.reply(self.count),
        }
        Ok(())
    }
}

impl Target for ActorRef<Msg> {
    fn tell(&self, x: u64) {
        ActorRef::tell(self, Msg::Inc(x));
    }

    async fn send(&self, x: u64) {
        ActorRef::send(self, Msg::Inc(x))
            .await
            .expect("courier actor stopped");
    }

    async fn flush(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        ActorRef::send(self, Msg::Flush(tx))
            .await
            .expect("courier actor stopped");
        rx.await.expect("courier flush dropped")
    }

    async fn ask(&self) -> u64 {
        ActorRef::ask(self, Msg::Get, ASK_TIMEOUT)
            .await
            .expect("courier ask failed")
    }
}

/// courier, with one system for all the actors of a bench.
#[derive(Clone, Debug)]
pub struct CourierPeer {
    system: ActorSystem,
}

impl CourierPeer {
    /// A peer with a fresh system.
    pub fn new() -> Self {
        Self {
            system: ActorSystem::new("bench"),
        }
    }
}

impl Default for CourierPeer {
    fn default() -> Self {
        Self::new()
    }
}

impl Peer for CourierPeer {
    type Ref = ActorRef<Msg>;
    type Handle = ();

    async fn spawn(&self, mailbox: MailboxKind, started: Option<Latch>) -> (ActorRef<Msg>, ()) {
        let mailbox = match mailbox {
            MailboxKind::Unbounded => Mailbox::unbounded(),
            MailboxKind::Bounded(capacity) => Mailbox::bounded(capacity),
        };
        let props = Props::new(move || Counter {
            started: started.clone(),
            ..Counter::default()
        })
        .with_mailbox(mailbox);
        let actor = self.system.spawn(props).expect("courier spawn failed");
        (actor, ())
    }

    async fn stop_all(&self, actors: Vec<(ActorRef<Msg>, ())>) {
        for (actor, ()) in &actors {
            actor.stop();
        }
        for (actor, ()) in actors {
            actor.terminated().await;
        }
    }

    async fn finish(self) {
        self.system.shutdown().await;
    }
}
