//! Message adapters: an actor with its own enum reachable by path as an
//! actor of another message type.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use courier_core::{
    Actor, ActorRef, BoxError, Context, Error, Mailbox, Props, ReplyTo, SupervisorStrategy,
    TryTellError,
};
use courier_test_support::eventually;
use support::{SECOND, system};

/// What another layer sends (think `Delivery<Charge>`).
#[derive(Debug, PartialEq)]
struct Charge(u64);

enum Payments {
    Charge(Charge),
    Total(ReplyTo<(u64, Vec<u64>)>),
    Fail,
    /// Registers an adapter for `u8` from within the actor.
    AdaptBytes(ReplyTo<ActorRef<u8>>),
}

impl From<Charge> for Payments {
    fn from(charge: Charge) -> Self {
        Payments::Charge(charge)
    }
}

#[derive(Default)]
struct Ledger {
    total: u64,
    seen: Vec<u64>,
}

impl Actor for Ledger {
    type Msg = Payments;

    async fn handle(&mut self, msg: Payments, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Payments::Charge(Charge(n)) => {
                self.total += n;
                self.seen.push(n);
            }
            Payments::Total(reply) => reply.reply((self.total, self.seen.clone())),
            Payments::Fail => return Err("asked to fail".into()),
            Payments::AdaptBytes(reply) => {
                reply.reply(ctx.message_adapter(|b: u8| Payments::Charge(Charge(u64::from(b)))))
            }
        }
        Ok(())
    }
}

fn ledger() -> Props<Ledger> {
    Props::new(Ledger::default)
        .with_name("payments")
        .with_adapter::<Charge>()
}

#[tokio::test]
async fn an_adapted_type_resolves_by_path_and_keeps_order_with_the_actors_own() {
    let system = system();
    let payments = system.spawn(ledger()).expect("spawn");
    let charges = system.lookup::<Charge>("/user/payments").expect("lookup");
    assert_eq!(charges.path(), payments.path());
    // Its own type still resolves, and the two interleave in send order.
    let own = system.lookup::<Payments>("/user/payments").expect("lookup");
    charges.tell(Charge(1));
    own.tell(Payments::Charge(Charge(2)));
    charges.tell(Charge(3));
    let (total, seen) = payments.ask(Payments::Total, SECOND).await.expect("ask");
    assert_eq!((total, seen), (6, vec![1, 2, 3]));
    assert_eq!(
        system.message_types(payments.path()),
        vec![
            std::any::type_name::<Payments>(),
            std::any::type_name::<Charge>()
        ]
    );
    system.shutdown().await;
}

#[tokio::test]
async fn a_type_without_an_adapter_is_still_the_wrong_type() {
    let system = system();
    system.spawn(ledger()).expect("spawn");
    let wrong = system.lookup::<String>("/user/payments");
    assert!(
        matches!(wrong, Err(Error::WrongMessageType { actual, .. }) if actual.ends_with("Payments")),
        "{wrong:?}"
    );
    system.shutdown().await;
}

#[tokio::test]
async fn props_adapters_survive_restarts() {
    let system = system();
    let payments = system
        .spawn(ledger().with_supervisor(SupervisorStrategy::restart()))
        .expect("spawn");
    let charges = system.lookup::<Charge>("/user/payments").expect("lookup");
    charges.tell(Charge(5));
    payments.tell(Payments::Fail);
    // The restarted instance starts from fresh state; the adapter found
    // before the restart, and a new lookup, both reach it.
    charges.tell(Charge(7));
    let again = system.lookup::<Charge>("/user/payments").expect("lookup");
    again.tell(Charge(11));
    let (total, _) = payments.ask(Payments::Total, SECOND).await.expect("ask");
    assert_eq!(total, 18);
    system.shutdown().await;
}

#[tokio::test]
async fn a_context_adapter_is_registered_under_the_actors_path() {
    let system = system();
    let payments = system.spawn(ledger()).expect("spawn");
    assert!(system.lookup::<u8>("/user/payments").is_err());
    let bytes = payments
        .ask(Payments::AdaptBytes, SECOND)
        .await
        .expect("ask");
    bytes.tell(4);
    system
        .lookup::<u8>("/user/payments")
        .expect("registered")
        .tell(6);
    let (total, _) = payments.ask(Payments::Total, SECOND).await.expect("ask");
    assert_eq!(total, 10);
    system.shutdown().await;
    assert!(system.lookup::<u8>("/user/payments").is_err());
}

/// Blocks until told to go on, so its bounded mailbox fills up.
struct Gate {
    open: Arc<tokio::sync::Notify>,
}

enum GateMsg {
    Wait,
    // Only queued: the test is about the mailbox, not the handler.
    #[allow(dead_code)]
    Charge(Charge),
}

impl From<Charge> for GateMsg {
    fn from(charge: Charge) -> Self {
        GateMsg::Charge(charge)
    }
}

impl Actor for Gate {
    type Msg = GateMsg;

    async fn handle(&mut self, msg: GateMsg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if let GateMsg::Wait = msg {
            self.open.notified().await;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_message_an_adapter_cannot_enqueue_is_handed_back_as_sent() {
    let system = system();
    let open = Arc::new(tokio::sync::Notify::new());
    let gate = system
        .spawn(
            Props::new({
                let open = Arc::clone(&open);
                move || Gate {
                    open: Arc::clone(&open),
                }
            })
            .with_mailbox(Mailbox::bounded(1))
            .with_adapter::<Charge>(),
        )
        .expect("spawn");
    let charges = system
        .lookup::<Charge>(gate.path().as_str())
        .expect("lookup");
    gate.send(GateMsg::Wait).await.expect("send");
    // The gate holds `Wait`; one message fits, the next does not.
    eventually("room for one charge", SECOND, || {
        charges.try_tell(Charge(1)).is_ok()
    })
    .await;
    match charges.try_tell(Charge(2)) {
        Err(TryTellError::Full(back)) => assert_eq!(back, Charge(2)),
        other => panic!("expected Full(Charge(2)), got {other:?}"),
    }
    open.notify_one();
    gate.stop();
    gate.terminated().await;
    match charges.try_tell(Charge(3)) {
        Err(TryTellError::Stopped(back)) => assert_eq!(back, Charge(3)),
        other => panic!("expected Stopped(Charge(3)), got {other:?}"),
    }
    let sent = charges.send(Charge(4)).await;
    assert_eq!(sent.map_err(|e| e.0), Err(Charge(4)));
    system.shutdown().await;
}

#[tokio::test]
async fn a_panicking_mapping_is_a_failure_of_the_actor() {
    let system = system();
    let starts = Arc::new(AtomicU32::new(0));
    struct Counted {
        starts: Arc<AtomicU32>,
    }
    impl Actor for Counted {
        type Msg = u64;
        async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
            self.starts.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn handle(&mut self, _: u64, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
            Ok(())
        }
    }
    let actor = system
        .spawn(
            Props::new({
                let starts = Arc::clone(&starts);
                move || Counted {
                    starts: Arc::clone(&starts),
                }
            })
            .with_supervisor(SupervisorStrategy::restart())
            .with_adapter_fn(|s: &'static str| -> u64 {
                s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
            }),
        )
        .expect("spawn");
    let text = system
        .lookup::<&'static str>(actor.path().as_str())
        .expect("lookup");
    text.tell("12");
    text.tell("twelve");
    eventually("a restart", SECOND, || starts.load(Ordering::SeqCst) == 2).await;
    system.shutdown().await;
}

#[tokio::test]
async fn watching_an_adapter_watches_the_actor() {
    let system = system();
    let payments = system.spawn(ledger()).expect("spawn");
    let charges = system.lookup::<Charge>("/user/payments").expect("lookup");
    payments.stop();
    // `terminated` on the adapter goes through a watch of the actor.
    tokio::time::timeout(SECOND, charges.terminated())
        .await
        .expect("the adapter saw its actor stop");
    system.shutdown().await;
}
