//! Stored messages that no longer decode, and acks that must never confirm
//! another delivery.

use super::*;

/// An actor that only owns a `Deliverer<M>` under the sender name "typed".
struct Typed<M> {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<M>>,
}

impl<M: courier::delivery::Outgoing> Actor for Typed<M> {
    type Msg = ReplyTo<Deliverer<M>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.out =
            Some(Deliverer::start(ctx, "typed", Arc::clone(&self.journal), settings()).await?);
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

async fn typed<M: courier::delivery::Outgoing>(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
) -> (ActorRef<ReplyTo<Deliverer<M>>>, Deliverer<M>) {
    let journal = Arc::clone(journal);
    let actor = system
        .spawn(Props::new(move || Typed::<M> {
            journal: Arc::clone(&journal),
            out: None,
        }))
        .expect("spawn");
    let out = actor.ask(|r| r, 5 * SECOND).await.expect("deliverer");
    (actor, out)
}

#[tokio::test(start_paused = true)]
async fn a_stored_message_that_no_longer_decodes_is_parked_not_retried_forever() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();
    // Version 1 of the sender sends text that nobody confirms.
    let (v1, out) = typed::<String>(&system, &journal).await;
    out.deliver("/user/nobody", |_| "not a number".to_owned())
        .await
        .expect("deliver");
    v1.stop();
    v1.terminated().await;

    // Version 2 sends numbers: the stored text no longer decodes.
    // The restored entry is resent at once: it is parked then.
    let (_v2, out) = typed::<u64>(&system, &journal).await;
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 0, "parked at its first resend");
    let mut reported = false;
    while let Ok(letter) = dead_letters.try_recv() {
        if let DeadLetterReason::Other(reason) = &letter.reason {
            reported |= reason.contains("undecodable");
        }
    }
    assert!(reported, "reported as a dead letter with the reason");
    // Listed without its message (it cannot be decoded); purge works.
    let listed = out.parked().await.expect("parked");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].message), (DeliveryId(1), None));
    out.purge(DeliveryId(1)).await.expect("purge");
    assert!(out.parked().await.expect("parked").is_empty());
}

/// Keeps every delivery without acking, for tests that ack by hand.
struct Keeper {
    kept: Arc<Mutex<Vec<Delivery<u64>>>>,
}

impl Actor for Keeper {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.kept.lock().expect("lock").push(d);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn stale_foreign_and_repeated_acks_never_confirm_another_delivery() {
    use courier::delivery::{Ack, SenderId};
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let kept: Arc<Mutex<Vec<Delivery<u64>>>> = Arc::default();
    let k = Arc::clone(&kept);
    system
        .spawn(
            Props::new(move || Keeper {
                kept: Arc::clone(&k),
            })
            .with_name("keeper"),
        )
        .expect("spawn");
    let client = client(&system, &journal, settings(), SupervisorStrategy::restart());
    client.deliver("/user/keeper", 1).await.expect("deliver");
    client.deliver("/user/keeper", 2).await.expect("deliver");
    tokio::time::sleep(SECOND / 10).await;
    let first = kept.lock().expect("lock")[0].clone();
    let out = client.outbox().await;
    assert_eq!(out.unconfirmed(), 2);

    // Another incarnation of the same sender, an id never sent, and an ack
    // of delivery 1 twice: only delivery 1 is confirmed.
    let foreign = Ack {
        sender: SenderId {
            name: first.sender.name.clone(),
            incarnation: uuid::Uuid::now_v7(),
        },
        id: DeliveryId(2),
        inbox: None,
    };
    first.ack_to.tell(foreign);
    first.ack_to.tell(Ack {
        sender: first.sender.clone(),
        id: DeliveryId(99),
        inbox: None,
    });
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 2, "neither confirmed anything");
    first.send_ack();
    first.send_ack();
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 1, "delivery 2 is still pending");
    tokio::time::sleep(SECOND * 2).await;
    let resent: Vec<u64> = kept
        .lock()
        .expect("lock")
        .iter()
        .filter(|d| d.attempt > 1)
        .map(|d| d.id.0)
        .collect();
    assert!(
        !resent.is_empty() && resent.iter().all(|id| *id == 2),
        "{resent:?}"
    );
}
