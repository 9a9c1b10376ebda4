//! Only known peers are dialled: a path to another node inside a peer's
//! message is refused (the envelope comes back rejected) unless this node
//! already talks to that node or it is the sender itself.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{
    Actor, ActorRef, ActorSystem, BoxError, Context, DeadLetter, DeadLetterReason, Props,
};
use courier_remote::{Node, RemoteSettings};
use serde::{Deserialize, Serialize};
use support::{Billing, Charge, SECRET, billing_registry, charge};

/// Asks the receiver to send a charge on to `to`.
#[derive(Serialize, Deserialize)]
struct Forward {
    to: ActorRef<Charge>,
}

struct Forwarder;

impl Actor for Forwarder {
    type Msg = Forward;

    async fn handle(&mut self, msg: Forward, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        msg.to.tell(charge(7));
        Ok(())
    }
}

fn registry() -> courier_remote::Registry {
    let mut registry = billing_registry();
    registry
        .register::<Forward>("test.Forward/1")
        .expect("register");
    registry
}

async fn node(name: &str) -> (ActorSystem, Node, Arc<Mutex<Vec<Charge>>>) {
    let system = ActorSystem::new(name);
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    system
        .spawn(
            Props::new(move || Billing {
                seen: Arc::clone(&s),
            })
            .with_name("billing"),
        )
        .expect("spawn");
    system
        .spawn(Props::new(|| Forwarder).with_name("forwarder"))
        .expect("spawn");
    let node = Node::start(&system, RemoteSettings::new(name, SECRET), registry())
        .await
        .expect("start");
    (system, node, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_to_an_unknown_node_in_a_message_is_refused_not_dialled() {
    let (_rsys, receiver, _) = node("warehouse-node").await;
    let (system, sender, seen_by_sender) = node("shop-node").await;
    // A listener standing for a third node the receiver has never heard of.
    let stranger = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stranger_path = format!(
        "courier://stranger-node@{}/user/billing",
        stranger.local_addr().expect("address")
    );
    let forwarder = system
        .lookup::<Forward>(&receiver.path_of("/user/forwarder"))
        .expect("lookup");
    let mut dead = system.event_stream().subscribe::<DeadLetter>();

    // A path to the sender itself is fine: the charge comes back.
    let home = system
        .lookup::<Charge>(&sender.path_of("/user/billing"))
        .expect("lookup");
    forwarder.tell(Forward { to: home });
    courier_test_support::eventually("the charge back home", Duration::from_secs(10), || {
        !seen_by_sender.lock().expect("lock").is_empty()
    })
    .await;

    // A path to a stranger is refused when the receiver decodes it.
    let stranger_ref = system.lookup::<Charge>(&stranger_path).expect("lookup");
    forwarder.tell(Forward { to: stranger_ref });
    let reason = loop {
        let letter = tokio::time::timeout(Duration::from_secs(10), dead.recv())
            .await
            .expect("a dead letter in time")
            .expect("a dead letter");
        if letter.recipient.to_string().ends_with("/user/forwarder") {
            if let DeadLetterReason::Other(reason) = letter.reason {
                break reason.to_string();
            }
        }
    };
    assert!(
        reason.contains("undecodable") && reason.contains("cannot resolve courier://stranger-node"),
        "{reason}"
    );
}
