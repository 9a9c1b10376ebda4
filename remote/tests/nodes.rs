//! Two nodes in one process, each with its own actor system, talking over
//! loopback gRPC.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{Actor, ActorRef, ActorSystem, BoxError, Context, Props, ReplyTo, Terminated};
use courier_core::{DeadLetter, DeadLetterReason};
use courier_remote::{Node, Registry, RemoteSettings};
use serde::{Deserialize, Serialize};
use support::{Billing, Charge, Refund, SECRET, billing_registry, charge};

struct Receiver {
    node: Node,
    system: ActorSystem,
    seen: Arc<Mutex<Vec<Charge>>>,
}

async fn receiver(name: &str, secret: &str) -> Receiver {
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
    let node = Node::start(
        &system,
        RemoteSettings::new(name, secret),
        billing_registry(),
    )
    .await
    .expect("start receiver node");
    Receiver { node, system, seen }
}

async fn sender(name: &str, secret: &str) -> (ActorSystem, Node) {
    let system = ActorSystem::new(name);
    let node = Node::start(
        &system,
        RemoteSettings::new(name, secret),
        billing_registry(),
    )
    .await
    .expect("start sender node");
    (system, node)
}

/// Waits up to 4 s (real time: the nodes talk over real sockets).
async fn eventually(what: &str, check: impl FnMut() -> bool) {
    courier_test_support::eventually(what, Duration::from_secs(4), check).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_reach_a_remote_actor_in_order() {
    let r = receiver("billing-node", SECRET).await;
    let (system, _node) = sender("shop-node", SECRET).await;
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup remote");
    for cents in 1..=1000 {
        billing.tell(charge(cents));
    }
    eventually("1000 received", || {
        r.seen.lock().expect("lock").len() == 1000
    })
    .await;
    let seen: Vec<u64> = r
        .seen
        .lock()
        .expect("lock")
        .iter()
        .map(|c| c.cents)
        .collect();
    assert_eq!(seen, (1..=1000).collect::<Vec<_>>(), "per-pair order kept");
    r.node.shutdown().await;
    r.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_come_back_as_dead_letters_and_the_stream_survives() {
    let r = receiver("billing-node", SECRET).await;
    let (system, _node) = sender("shop-node", SECRET).await;
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let nobody = system
        .lookup::<Charge>(&r.node.path_of("/user/nobody"))
        .expect("lookup");
    let wrong = system
        .lookup::<Refund>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    nobody.tell(charge(1));
    wrong.tell(Refund(2));
    billing.tell(charge(3));
    eventually("1 received", || r.seen.lock().expect("lock").len() == 1).await;
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let letter = tokio::time::timeout(Duration::from_secs(5), dead.recv())
            .await
            .expect("dead letter in time")
            .expect("dead letter");
        if let DeadLetterReason::Other(reason) = letter.reason {
            reasons.push((letter.recipient.to_string(), reason.to_string()));
        }
    }
    reasons.sort();
    assert!(
        reasons[0].0.ends_with("/user/billing") && reasons[0].1.contains("wrong message type"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].0.ends_with("/user/nobody") && reasons[1].1.contains("unknown recipient"),
        "{reasons:?}"
    );
    // The same stream still carries good messages.
    billing.tell(charge(4));
    eventually("2 received", || r.seen.lock().expect("lock").len() == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_the_wrong_secret_reaches_no_actor() {
    let r = receiver("billing-node", SECRET).await;
    let (system, _node) = sender("intruder", "not the shared secret at all").await;
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    for cents in 1..=10 {
        billing.tell(charge(cents));
    }
    let letter = tokio::time::timeout(Duration::from_secs(10), dead.recv())
        .await
        .expect("dead letter in time")
        .expect("dead letter");
    assert!(letter.recipient.to_string().ends_with("/user/billing"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        r.seen.lock().expect("lock").is_empty(),
        "nothing got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_a_dead_letter_and_costs_nothing_else() {
    let r = receiver("billing-node", SECRET).await;
    let system = ActorSystem::new("shop");
    let mut settings = RemoteSettings::new("shop", SECRET);
    settings.max_frame = 4096;
    let _node = Node::start(&system, settings, billing_registry())
        .await
        .expect("start");
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    billing.tell(Charge {
        account: "x".repeat(10_000),
        cents: 1,
    });
    billing.tell(charge(2));
    let letter = tokio::time::timeout(Duration::from_secs(5), dead.recv())
        .await
        .expect("in time")
        .expect("dead letter");
    assert!(matches!(&letter.reason, DeadLetterReason::Other(r) if r.contains("oversized")));
    eventually("1 received", || r.seen.lock().expect("lock").len() == 1).await;
    assert_eq!(r.seen.lock().expect("lock")[0].cents, 2);
}

/// Watches whatever reference it is sent, and records every `Terminated`.
struct RemoteWatcher {
    watching: Arc<Mutex<usize>>,
    terminated: Arc<Mutex<Vec<String>>>,
}

impl Actor for RemoteWatcher {
    type Msg = ActorRef<Charge>;

    async fn handle(
        &mut self,
        target: ActorRef<Charge>,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        ctx.watch(&target);
        *self.watching.lock().expect("lock") += 1;
        Ok(())
    }

    async fn terminated(
        &mut self,
        terminated: Terminated,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let path = terminated.path.to_string();
        self.terminated.lock().expect("lock").push(path);
        Ok(())
    }
}

/// Remote death watch: losing the connection to a peer tells every watcher
/// of an actor there that it is unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_of_a_remote_actor_hear_when_its_node_is_lost() {
    let r = receiver("billing-node", SECRET).await;
    let (system, _node) = sender("shop-node", SECRET).await;
    let remote_path = r.node.path_of("/user/billing");
    let billing = system.lookup::<Charge>(&remote_path).expect("lookup");
    billing.tell(charge(1));
    eventually("connected", || r.seen.lock().expect("lock").len() == 1).await;
    let watching: Arc<Mutex<usize>> = Arc::default();
    let terminated: Arc<Mutex<Vec<String>>> = Arc::default();
    let (w, t) = (Arc::clone(&watching), Arc::clone(&terminated));
    let watcher = system
        .spawn(Props::new(move || RemoteWatcher {
            watching: Arc::clone(&w),
            terminated: Arc::clone(&t),
        }))
        .expect("spawn watcher");
    watcher.tell(billing.clone());
    eventually("watching", || *watching.lock().expect("lock") == 1).await;
    assert!(terminated.lock().expect("lock").is_empty(), "not lost yet");
    r.node.shutdown().await;
    eventually("terminated", || {
        !terminated.lock().expect("lock").is_empty()
    })
    .await;
    assert_eq!(*terminated.lock().expect("lock"), vec![remote_path]);
    r.system.shutdown().await;
}

/// gRPC's own message limit leaves room for the framing around a frame, so
/// a message that fills `max_frame` exactly is not cut off by the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_fills_max_frame_exactly_arrives() {
    const MAX_FRAME: usize = 4096;
    const RECIPIENT: &str = "/user/billing";
    const MANIFEST: &str = "billing.Charge/1";
    let encoded = |account: String| {
        courier_codec::encode(&Charge { account, cents: 1 }, courier_codec::MAX_LEN)
            .expect("encode")
            .len()
    };
    // The sender counts payload, recipient and manifest against max_frame.
    let overhead = encoded("x".repeat(3000)) - 3000;
    let account = "x".repeat(MAX_FRAME - RECIPIENT.len() - MANIFEST.len() - overhead);
    assert_eq!(
        encoded(account.clone()) + RECIPIENT.len() + MANIFEST.len(),
        MAX_FRAME
    );
    let r = receiver("billing-node", SECRET).await;
    let system = ActorSystem::new("shop");
    let mut settings = RemoteSettings::new("shop", SECRET);
    settings.max_frame = MAX_FRAME;
    let _node = Node::start(&system, settings, billing_registry())
        .await
        .expect("start");
    let billing = system
        .lookup::<Charge>(&r.node.path_of(RECIPIENT))
        .expect("lookup");
    let account_len = account.len();
    billing.tell(Charge { account, cents: 1 });
    eventually("the full-size charge received", || {
        r.seen.lock().expect("lock").len() == 1
    })
    .await;
    assert_eq!(r.seen.lock().expect("lock")[0].account.len(), account_len);
}

/// Messages that each fit in `max_frame` are batched into frames that fit
/// too: a batch that outgrew gRPC's message limit failed to encode, which
/// cost the connection and every message in it. (One thread: the peer's
/// task runs only once every message is queued, so one batch takes them.)
#[tokio::test(flavor = "current_thread")]
async fn messages_that_each_fit_are_never_batched_past_the_frame_limit() {
    const MAX_FRAME: usize = 512 * 1024;
    let r = receiver("billing-node", SECRET).await;
    let system = ActorSystem::new("shop");
    let mut settings = RemoteSettings::new("shop", SECRET);
    settings.max_frame = MAX_FRAME;
    let _node = Node::start(&system, settings, billing_registry())
        .await
        .expect("start");
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    // The first under half a frame, the second nearly a whole one.
    for (cents, size) in [(1, MAX_FRAME / 2 - 4096), (2, MAX_FRAME - 4096)] {
        billing.tell(Charge {
            account: "x".repeat(size),
            cents,
        });
    }
    billing.tell(charge(3));
    eventually("3 received", || r.seen.lock().expect("lock").len() == 3).await;
    let cents: Vec<u64> = r
        .seen
        .lock()
        .expect("lock")
        .iter()
        .map(|c| c.cents)
        .collect();
    assert_eq!(cents, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_settings_are_typed_errors() {
    let system = ActorSystem::new("x");
    let short = Node::start(&system, RemoteSettings::new("x", "short"), Registry::new()).await;
    assert!(matches!(
        short,
        Err(courier_remote::Error::Settings {
            setting: "secret",
            ..
        })
    ));
    let bad_name = Node::start(&system, RemoteSettings::new("a/b", SECRET), Registry::new()).await;
    assert!(matches!(
        bad_name,
        Err(courier_remote::Error::Settings {
            setting: "node",
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_reconnects_after_the_receiver_restarts() {
    let r = receiver("billing-node", SECRET).await;
    let address = r.node.address();
    let path = r.node.path_of("/user/billing");
    let (system, _node) = sender("shop-node", SECRET).await;
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system.lookup::<Charge>(&path).expect("lookup");
    billing.tell(charge(1));
    eventually("1 received", || r.seen.lock().expect("lock").len() == 1).await;

    // The receiver goes away: what is sent now is reported, not kept.
    r.node.shutdown().await;
    r.system.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    billing.tell(charge(2));
    let letter = tokio::time::timeout(Duration::from_secs(10), dead.recv())
        .await
        .expect("dead letter in time")
        .expect("dead letter");
    assert!(letter.recipient.to_string().ends_with("/user/billing"));

    // It comes back on the same address: the same reference works again.
    let system2 = ActorSystem::new("billing-node");
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    system2
        .spawn(
            Props::new(move || Billing {
                seen: Arc::clone(&s),
            })
            .with_name("billing"),
        )
        .expect("spawn");
    let mut settings = RemoteSettings::new("billing-node", SECRET);
    settings.listen = address;
    let _node2 = Node::start(&system2, settings, billing_registry())
        .await
        .expect("restart on the same address");
    eventually("reconnected", || {
        billing.tell(charge(3));
        !seen.lock().expect("lock").is_empty()
    })
    .await;
}

/// A balance query: the reply crosses back to the asking node.
#[derive(Debug, Serialize, Deserialize)]
struct Balance {
    account: String,
    reply: ReplyTo<u64>,
}

struct Accounts;

impl Actor for Accounts {
    type Msg = Balance;

    async fn handle(&mut self, msg: Balance, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let cents = msg.account.len() as u64 * 100;
        msg.reply.reply(cents);
        Ok(())
    }
}

fn ask_billing_registry() -> Registry {
    let mut registry = billing_registry();
    registry
        .register::<Balance>("billing.Balance/1")
        .expect("register")
        .register::<u64>("u64")
        .expect("register");
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_works_across_nodes_with_a_timeout() {
    let rsys = ActorSystem::new("accounts-node");
    rsys.spawn(Props::new(|| Accounts).with_name("accounts"))
        .expect("spawn");
    let rnode = Node::start(
        &rsys,
        RemoteSettings::new("accounts-node", SECRET),
        ask_billing_registry(),
    )
    .await
    .expect("node");
    let system = ActorSystem::new("shop-node");
    let _node = Node::start(
        &system,
        RemoteSettings::new("shop-node", SECRET),
        ask_billing_registry(),
    )
    .await
    .expect("node");
    let accounts = system
        .lookup::<Balance>(&rnode.path_of("/user/accounts"))
        .expect("lookup");
    for account in ["a", "acme", "initech"] {
        let cents = accounts
            .ask(
                |reply| Balance {
                    account: account.into(),
                    reply,
                },
                Duration::from_secs(5),
            )
            .await
            .expect("a reply from the other node");
        assert_eq!(cents, account.len() as u64 * 100);
    }
    // No actor there: the peer's rejection ends the ask at once, long
    // before its timeout, as a typed error carrying the rejection; the
    // request itself is a dead letter.
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let nobody = system
        .lookup::<Balance>(&rnode.path_of("/user/nobody"))
        .expect("lookup");
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        nobody.ask(
            |reply| Balance {
                account: "x".into(),
                reply,
            },
            Duration::from_secs(3600),
        ),
    )
    .await
    .expect("the ask ends with the rejection, not at its hour-long timeout");
    // The ask's error carries the peer's rejection, not a bare "no reply".
    assert!(
        matches!(&refused, Err(courier_core::Error::Refused { reason, .. })
            if reason.contains("unknown recipient")),
        "{refused:?}"
    );
    let letter = dead.try_recv().expect("the rejection, as a dead letter");
    assert!(
        matches!(&letter.reason, DeadLetterReason::Other(r) if r.contains("unknown recipient")),
        "{:?}",
        letter.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_on_a_remote_reference_stops_the_remote_actor_after_earlier_messages() {
    let r = receiver("billing-node", SECRET).await;
    let mut remote_dead = r.system.event_stream().subscribe::<DeadLetter>();
    let (system, _node) = sender("shop-node", SECRET).await;
    let local = r
        .system
        .lookup::<Charge>("/user/billing")
        .expect("the local actor");
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup remote");
    for cents in 1..=10 {
        billing.tell(charge(cents));
    }
    billing.stop();
    tokio::time::timeout(Duration::from_secs(10), local.terminated())
        .await
        .expect("the remote actor stops");
    // The stop arrived after the ten messages; like a local stop it then
    // overtook those still in the mailbox, which became dead letters there.
    let mut dropped = 0;
    while let Ok(letter) = remote_dead.try_recv() {
        if letter.recipient.to_string() == "/user/billing" {
            dropped += 1;
        }
    }
    assert_eq!(
        r.seen.lock().expect("lock").len() + dropped,
        10,
        "every message sent before the stop reached the remote mailbox"
    );
    // Stopping an actor that is not there is a dead letter at the sender.
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let nobody = system
        .lookup::<Charge>(&r.node.path_of("/user/nobody"))
        .expect("lookup");
    nobody.stop();
    let letter = tokio::time::timeout(Duration::from_secs(10), dead.recv())
        .await
        .expect("dead letter in time")
        .expect("dead letter");
    assert!(letter.recipient.to_string().ends_with("/user/nobody"));
}
