//! A test actor that records numbers and can be made to block.

use std::sync::Arc;

use courier_core::{Actor, BoxError, Context, Mailbox, Props, ReplyTo};
use tokio::sync::Semaphore;

pub enum Msg {
    /// Signals `entered`, then blocks the handler until `gate` yields a permit.
    Wait {
        entered: tokio::sync::oneshot::Sender<()>,
        gate: Arc<Semaphore>,
    },
    Note(u64),
    Seen(ReplyTo<Vec<u64>>),
    /// Drops the reply handle without answering.
    Drop(ReplyTo<u64>),
    /// Keeps the reply handle and never answers.
    Hold(ReplyTo<u64>),
}

#[derive(Default)]
pub struct Recorder {
    seen: Vec<u64>,
    held: Vec<ReplyTo<u64>>,
}

impl Actor for Recorder {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Msg::Wait { entered, gate } => {
                let _ = entered.send(());
                let _permit = gate.acquire().await?;
            }
            Msg::Note(n) => self.seen.push(n),
            Msg::Seen(reply) => reply.reply(self.seen.clone()),
            Msg::Drop(reply) => drop(reply),
            Msg::Hold(reply) => self.held.push(reply),
        }
        Ok(())
    }
}

/// Makes the actor busy: returns once its handler is blocked on the gate,
/// so its mailbox is empty and every further message waits in it.
pub async fn block(actor: &courier_core::ActorRef<Msg>) -> Arc<Semaphore> {
    let gate = Arc::new(Semaphore::new(0));
    let (entered, rx) = tokio::sync::oneshot::channel();
    actor
        .send(Msg::Wait {
            entered,
            gate: gate.clone(),
        })
        .await
        .expect("send");
    rx.await.expect("handler entered");
    gate
}

pub fn recorder(mailbox: Mailbox) -> Props<Recorder> {
    Props::new(Recorder::default).with_mailbox(mailbox)
}
