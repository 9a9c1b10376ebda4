//! Per sender–receiver FIFO under concurrent senders.

mod support;

use std::time::Duration;

use courier_core::{Actor, ActorRef, BoxError, Context, Mailbox, Props, ReplyTo};
use support::system;

const SENDERS: u64 = 8;
const PER_SENDER: u64 = 5_000;

enum Msg {
    From { sender: u64, seq: u64 },
    Log(ReplyTo<Vec<(u64, u64)>>),
}

#[derive(Default)]
struct Log(Vec<(u64, u64)>);

impl Actor for Log {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Msg::From { sender, seq } => self.0.push((sender, seq)),
            Msg::Log(reply) => reply.reply(std::mem::take(&mut self.0)),
        }
        Ok(())
    }
}

/// Every sender's messages arrive complete and in the order it sent them.
fn check_per_sender_order(log: &[(u64, u64)]) {
    assert_eq!(log.len() as u64, SENDERS * PER_SENDER, "messages missing");
    let mut next = vec![0u64; SENDERS as usize];
    for &(sender, seq) in log {
        assert_eq!(
            seq, next[sender as usize],
            "sender {sender}: got {seq}, expected {}",
            next[sender as usize]
        );
        next[sender as usize] += 1;
    }
}

/// Interleaving between senders shows the test really ran them concurrently
/// (otherwise per-sender order would hold trivially).
fn interleavings(log: &[(u64, u64)]) -> usize {
    log.windows(2).filter(|w| w[0].0 != w[1].0).count()
}

async fn run_senders(actor: &ActorRef<Msg>, bounded: bool) -> Vec<(u64, u64)> {
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..PER_SENDER {
                let msg = Msg::From { sender, seq };
                if bounded {
                    assert!(actor.send(msg).await.is_ok(), "actor stopped");
                } else {
                    actor.tell(msg);
                }
                if seq % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("sender task");
    }
    actor
        .ask(Msg::Log, Duration::from_secs(10))
        .await
        .expect("log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_keep_their_own_order_unbounded() {
    let system = system();
    let actor = system.spawn(Props::new(Log::default)).expect("spawn");
    let log = run_senders(&actor, false).await;
    check_per_sender_order(&log);
    assert!(interleavings(&log) > 0, "senders never interleaved");
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_keep_their_own_order_bounded() {
    let system = system();
    let actor = system
        .spawn(Props::new(Log::default).with_mailbox(Mailbox::bounded(16)))
        .expect("spawn");
    let log = run_senders(&actor, true).await;
    check_per_sender_order(&log);
    assert!(interleavings(&log) > 0, "senders never interleaved");
    system.shutdown().await;
}
