//! The limit: a tokio mpsc channel and a consumer task doing
//! `while let Some(msg) = rx.recv().await`, with a oneshot for replies.
//!
//! No supervision, no system messages, no dead letters, no names: what is
//! left is the cost of the channel and of waking the consumer task.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
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
    /// Answer with the `Inc`s handled since the last flush (an ask).
    Get(oneshot::Sender<u64>),
}

#[derive(Default)]
struct Counter {
    sum: u64,
    count: u64,
}

impl Counter {
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Inc(x) => {
                self.sum = self.sum.wrapping_add(x);
                self.count += 1;
            }
            Msg::Flush(tx) => {
                let _ = tx.send(std::mem::take(&mut self.count));
            }
            Msg::Get(tx) => {
                let _ = tx.send(self.count);
            }
        }
    }
}

/// How a raw ask waits for its reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AskTimeout {
    /// No timeout: the limit.
    #[default]
    None,
    /// `tokio::time::timeout` around each ask, as courier's `ask` does:
    /// isolates what a tokio timer per ask costs.
    Tokio(Duration),
}

/// The sending half, of either kind.
#[derive(Clone, Debug)]
pub struct RawRef {
    tx: RawSender,
    timeout: RefTimeout,
}

#[derive(Clone, Debug)]
enum RefTimeout {
    None,
    Tokio(Duration),
}

#[derive(Clone, Debug)]
enum RawSender {
    Unbounded(mpsc::UnboundedSender<Msg>),
    Bounded(mpsc::Sender<Msg>),
}

impl RawRef {
    async fn send_msg(&self, msg: Msg) {
        match &self.tx {
            RawSender::Unbounded(tx) => tx.send(msg).expect("consumer gone"),
            RawSender::Bounded(tx) => tx.send(msg).await.expect("consumer gone"),
        }
    }
}

impl Target for RawRef {
    fn tell(&self, x: u64) {
        match &self.tx {
            RawSender::Unbounded(tx) => tx.send(Msg::Inc(x)).expect("consumer gone"),
            RawSender::Bounded(tx) => tx.try_send(Msg::Inc(x)).expect("channel full"),
        }
    }

    async fn send(&self, x: u64) {
        self.send_msg(Msg::Inc(x)).await;
    }

    async fn flush(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        self.send_msg(Msg::Flush(tx)).await;
        rx.await.expect("consumer dropped the flush")
    }

    async fn ask(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        let reply = match &self.timeout {
            RefTimeout::None => {
                self.send_msg(Msg::Get(tx)).await;
                rx.await
            }
            RefTimeout::Tokio(timeout) => {
                let exchange = async {
                    self.send_msg(Msg::Get(tx)).await;
                    rx.await
                };
                tokio::time::timeout(*timeout, exchange)
                    .await
                    .expect("raw ask timed out")
            }
        };
        reply.expect("consumer dropped the ask")
    }
}

/// How the consumer task takes messages off the channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consumer {
    /// `while let Some(msg) = rx.recv().await`: the plain limit.
    #[default]
    Recv,
    /// `rx.recv_many(&mut buf, n)`, then handles the batch: the limit for
    /// a consumer that batches, as courier's unbounded mailbox does (64).
    RecvMany(usize),
    /// courier's loop shape without the rest of courier: before each
    /// message a `try_recv` on a second (system) channel, then a biased
    /// `select!` over that channel's `recv` and `recv_many(.., batch)` on the
    /// mailbox. Isolates what the two-channel loop costs.
    SelectSys {
        /// Messages taken per wake-up (courier: 64 unbounded, 1 bounded).
        batch: usize,
    },
    /// [`SelectSys`](Self::SelectSys) with a fast path: when the batch is
    /// empty, `try_recv` the mailbox (with `consume_budget` so a busy actor
    /// still yields) and only fall into the `select!` when it is empty,
    /// where the mailbox is polled first. A model of a change to courier's
    /// loop (see `docs/benchmarks.md`).
    FastPath {
        /// Messages taken per wake-up by the `select!`.
        batch: usize,
    },
    /// A system channel `try_recv`'d before each message, but parking on
    /// the mailbox alone: with [`SelectSys`](Self::SelectSys), tells the
    /// cost of the second waker registration from that of the check.
    SysTryOnly,
}

/// Raw tokio channels.
#[derive(Clone, Debug, Default)]
pub struct RawPeer {
    consumer: Consumer,
    ask_timeout: AskTimeout,
}

impl RawPeer {
    /// A peer whose consumers take messages as `consumer` says and whose
    /// asks wait as `ask_timeout` says.
    pub fn new(consumer: Consumer, ask_timeout: AskTimeout) -> Self {
        Self {
            consumer,
            ask_timeout,
        }
    }
}

/// Either kind of receiver, as the consumer loops need it.
enum RawReceiver {
    Unbounded(mpsc::UnboundedReceiver<Msg>),
    Bounded(mpsc::Receiver<Msg>),
}

impl RawReceiver {
    async fn recv(&mut self) -> Option<Msg> {
        match self {
            Self::Unbounded(rx) => rx.recv().await,
            Self::Bounded(rx) => rx.recv().await,
        }
    }

    fn try_recv(&mut self) -> Option<Msg> {
        match self {
            Self::Unbounded(rx) => rx.try_recv().ok(),
            Self::Bounded(rx) => rx.try_recv().ok(),
        }
    }

    async fn recv_many(&mut self, buf: &mut Vec<Msg>, n: usize) -> usize {
        match self {
            Self::Unbounded(rx) => rx.recv_many(buf, n).await,
            Self::Bounded(rx) => rx.recv_many(buf, n).await,
        }
    }
}

/// The consumer task's body.
async fn consume(mut rx: RawReceiver, consumer: Consumer, started: Option<Latch>) {
    if let Some(latch) = started {
        latch.count_down();
    }
    let mut counter = Counter::default();
    match consumer {
        Consumer::Recv => {
            while let Some(msg) = rx.recv().await {
                counter.handle(msg);
            }
        }
        Consumer::RecvMany(n) => {
            let mut buf = Vec::with_capacity(n);
            while rx.recv_many(&mut buf, n).await > 0 {
                for msg in buf.drain(..) {
                    counter.handle(msg);
                }
            }
        }
        Consumer::SelectSys { batch } => {
            // Nobody sends on it; keeping the sender alive keeps it open,
            // as an actor's own cell does.
            let (_sys_tx, mut sys_rx) = mpsc::unbounded_channel::<()>();
            let mut buf: Vec<Msg> = Vec::with_capacity(batch);
            loop {
                if sys_rx.try_recv().is_ok() {
                    continue;
                }
                if let Some(msg) = buf.pop() {
                    counter.handle(msg);
                    continue;
                }
                tokio::select! {
                    biased;
                    _ = sys_rx.recv() => {}
                    n = rx.recv_many(&mut buf, batch) => {
                        if n == 0 {
                            return;
                        }
                        buf.reverse();
                    }
                }
            }
        }
        Consumer::SysTryOnly => {
            let (_sys_tx, mut sys_rx) = mpsc::unbounded_channel::<()>();
            loop {
                if sys_rx.try_recv().is_ok() {
                    continue;
                }
                match rx.recv().await {
                    Some(msg) => counter.handle(msg),
                    None => return,
                }
            }
        }
        Consumer::FastPath { batch } => {
            let (_sys_tx, mut sys_rx) = mpsc::unbounded_channel::<()>();
            let mut buf: Vec<Msg> = Vec::with_capacity(batch);
            loop {
                if sys_rx.try_recv().is_ok() {
                    continue;
                }
                if let Some(msg) = buf.pop() {
                    counter.handle(msg);
                    continue;
                }
                if let Some(msg) = rx.try_recv() {
                    tokio::task::coop::consume_budget().await;
                    counter.handle(msg);
                    continue;
                }
                // Nothing queued: park on both. The mailbox goes first, as
                // the system channel was checked just above.
                tokio::select! {
                    biased;
                    n = rx.recv_many(&mut buf, batch) => {
                        if n == 0 {
                            return;
                        }
                        buf.reverse();
                    }
                    _ = sys_rx.recv() => {}
                }
            }
        }
    }
}

impl Peer for RawPeer {
    type Ref = RawRef;
    type Handle = JoinHandle<()>;

    async fn spawn(
        &self,
        mailbox: MailboxKind,
        started: Option<Latch>,
    ) -> (RawRef, JoinHandle<()>) {
        let (tx, rx) = match mailbox {
            MailboxKind::Unbounded => {
                let (tx, rx) = mpsc::unbounded_channel();
                (RawSender::Unbounded(tx), RawReceiver::Unbounded(rx))
            }
            MailboxKind::Bounded(capacity) => {
                let (tx, rx) = mpsc::channel(capacity);
                (RawSender::Bounded(tx), RawReceiver::Bounded(rx))
            }
        };
        let task = tokio::spawn(consume(rx, self.consumer, started));
        let timeout = match self.ask_timeout {
            AskTimeout::None => RefTimeout::None,
            AskTimeout::Tokio(timeout) => RefTimeout::Tokio(timeout),
        };
        let actor = RawRef { tx, timeout };
        (actor, task)
    }

    async fn stop_all(&self, actors: Vec<(RawRef, JoinHandle<()>)>) {
        // Dropping the last sender is the stop request.
        let tasks: Vec<_> = actors.into_iter().map(|(_, task)| task).collect();
        for task in tasks {
            task.await.expect("consumer task panicked");
        }
    }
}
