//! What a peer may cost a node, over real loopback sockets: connections
//! that never authenticate are closed, connections beyond
//! `max_connections` are closed at once, and a batch beyond `max_batch`
//! closes the link without reaching an actor.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{ActorSystem, DeadLetter, DeadLetterReason, Props};
use courier_remote::{Node, RemoteSettings};
use support::certs::Ca;
use support::{Billing, Charge, SECRET, billing_registry, charge};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

struct Receiver {
    node: Node,
    seen: Arc<Mutex<Vec<Charge>>>,
    _system: ActorSystem,
}

async fn receiver(settings: RemoteSettings) -> Receiver {
    let system = ActorSystem::new("billing");
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
    let node = Node::start(&system, settings, billing_registry())
        .await
        .expect("start receiver node");
    Receiver {
        node,
        seen,
        _system: system,
    }
}

/// Whether the server closes `conn` within `limit` (end of stream or a
/// reset), sending nothing first.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A plaintext HTTP/2 server greets with its settings first.
            Ok(Ok(_)) => {}
        }
    }
}

fn quick(mut settings: RemoteSettings) -> RemoteSettings {
    settings.handshake_timeout = Duration::from_millis(500);
    settings.idle_timeout = Duration::from_millis(500);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_authenticates_is_closed() {
    let plain = receiver(quick(RemoteSettings::new("billing-node", SECRET))).await;
    let mut conn = TcpStream::connect(plain.node.address())
        .await
        .expect("connect");
    assert!(
        closed_within(&mut conn, Duration::from_secs(10)).await,
        "an idle plaintext connection is closed after idle_timeout"
    );

    let ca = Ca::new("cluster");
    let tls = receiver(quick(RemoteSettings::with_tls(
        "billing-node",
        ca.tls("billing-node", &ca),
    )))
    .await;
    let mut conn = TcpStream::connect(tls.node.address())
        .await
        .expect("connect");
    assert!(
        closed_within(&mut conn, Duration::from_secs(10)).await,
        "a connection without a TLS handshake is closed after handshake_timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_closed_until_a_place_frees() {
    let mut settings = RemoteSettings::new("billing-node", SECRET);
    settings.max_connections = 2;
    settings.idle_timeout = Duration::from_secs(60);
    let r = receiver(settings).await;
    let first = TcpStream::connect(r.node.address()).await.expect("connect");
    let second = TcpStream::connect(r.node.address()).await.expect("connect");
    let mut third = TcpStream::connect(r.node.address()).await.expect("connect");
    assert!(
        closed_within(&mut third, Duration::from_secs(10)).await,
        "a third connection is closed at once"
    );

    // A real node is refused too while both places are taken...
    let system = ActorSystem::new("shop");
    let mut sender = RemoteSettings::new("shop-node", SECRET);
    sender.reconnect_min = Duration::from_millis(50);
    sender.reconnect_max = Duration::from_millis(200);
    let _node = Node::start(&system, sender, billing_registry())
        .await
        .expect("start sender");
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    billing.tell(charge(1));
    tokio::time::timeout(Duration::from_secs(10), dead.recv())
        .await
        .expect("a dead letter in time")
        .expect("a dead letter");
    assert!(r.seen.lock().expect("lock").is_empty());

    // ...and gets through once they are free.
    drop((first, second));
    courier_test_support::eventually(
        "a charge through a freed place",
        Duration::from_secs(10),
        || {
            billing.tell(charge(2));
            !r.seen.lock().expect("lock").is_empty()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_beyond_max_batch_closes_the_link_and_reaches_no_actor() {
    let mut strict = RemoteSettings::new("billing-node", SECRET);
    strict.max_batch = 10;
    let r = receiver(strict).await;
    let system = ActorSystem::new("shop");
    let mut sender = RemoteSettings::new("shop-node", SECRET);
    sender.max_batch = 1000;
    let _node = Node::start(&system, sender, billing_registry())
        .await
        .expect("start sender");
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    // Queued before the connection is up, so the first batch holds them all.
    for cents in 1..=500 {
        billing.tell(charge(cents));
    }
    let reason = loop {
        let letter = tokio::time::timeout(Duration::from_secs(10), dead.recv())
            .await
            .expect("a dead letter in time")
            .expect("a dead letter");
        if let DeadLetterReason::Other(reason) = letter.reason {
            break reason.to_string();
        }
    };
    assert!(reason.contains("batch too large"), "{reason}");
    assert!(
        r.seen.lock().expect("lock").is_empty(),
        "no envelope of it delivered"
    );
}
