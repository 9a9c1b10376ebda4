//! The counter actor on ractor 0.16 (default features).
//!
//! ractor has no bounded mailbox: its message port is always an unbounded
//! channel, so the bounded workloads leave it out and [`Target::send`] here
//! is `cast`.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, rpc::CallResult};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::latch::Latch;
use crate::target::{MailboxKind, Peer, Target};

/// The counter's messages.
#[derive(Debug)]
pub enum Msg {
    /// Add to the sum.
    Inc(u64),
    /// Answer with the `Inc`s handled since the last flush.
    Flush(oneshot::Sender<u64>),
    /// Answer with the `Inc`s handled since the last flush (a call).
    Get(RpcReplyPort<u64>),
}

/// The counter's behaviour; its state is [`Counts`].
#[derive(Debug)]
pub struct Counter;

/// The counter's state.
#[derive(Debug, Default)]
pub struct Counts {
    sum: u64,
    count: u64,
}

impl Actor for Counter {
    type Msg = Msg;
    type State = Counts;
    type Arguments = Option<Latch>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Msg>,
        started: Option<Latch>,
    ) -> Result<Counts, ActorProcessingErr> {
        if let Some(latch) = started {
            latch.count_down();
        }
        Ok(Counts::default())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Msg>,
        msg: Msg,
        state: &mut Counts,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Inc(x) => {
                state.sum = state.sum.wrapping_add(x);
                state.count += 1;
            }
            Msg::Flush(tx) => {
                let _ = tx.send(std::mem::take(&mut state.count));
            }
            Msg::Get(reply) => {
                let _ = reply.send(state.count);
            }
        }
        Ok(())
    }
}

/// A ractor reference, with the timeout its calls use.
#[derive(Clone, Debug)]
pub struct RactorRef {
    actor: ActorRef<Msg>,
    call_timeout: Option<Duration>,
}

impl Target for RactorRef {
    fn tell(&self, x: u64) {
        self.actor.cast(Msg::Inc(x)).expect("ractor actor stopped");
    }

    async fn send(&self, x: u64) {
        Target::tell(self, x);
    }

    async fn flush(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        self.actor
            .cast(Msg::Flush(tx))
            .expect("ractor actor stopped");
        rx.await.expect("ractor flush dropped")
    }

    async fn ask(&self) -> u64 {
        match self.actor.call(Msg::Get, self.call_timeout).await {
            Ok(CallResult::Success(n)) => n,
            Ok(_) => panic!("ractor call timed out or was dropped"),
            Err(e) => panic!("ractor call failed: {e}"),
        }
    }
}

/// ractor; `call_timeout` is passed to every `call`.
#[derive(Clone, Debug, Default)]
pub struct RactorPeer {
    /// The timeout of each `call` (`None`: wait forever, as `call!` does).
    pub call_timeout: Option<Duration>,
}

impl Peer for RactorPeer {
    type Ref = RactorRef;
    type Handle = JoinHandle<()>;

    async fn spawn(
        &self,
        mailbox: MailboxKind,
        started: Option<Latch>,
    ) -> (RactorRef, JoinHandle<()>) {
        assert_eq!(
            mailbox,
            MailboxKind::Unbounded,
            "ractor has no bounded mailbox"
        );
        let (actor, task) = Actor::spawn(None, Counter, started)
            .await
            .expect("ractor spawn failed");
        let actor = RactorRef {
            actor,
            call_timeout: self.call_timeout,
        };
        (actor, task)
    }

    async fn stop_all(&self, actors: Vec<(RactorRef, JoinHandle<()>)>) {
        for (actor, _) in &actors {
            actor.actor.stop(None);
        }
        for (_, task) in actors {
            task.await.expect("ractor actor task panicked");
        }
    }
}
