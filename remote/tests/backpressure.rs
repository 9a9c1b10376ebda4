//! Back-pressure on remote references, over real loopback sockets: the
//! queue for a peer is bounded (`try_tell` reports `Full`, `send` waits
//! for room), and while the peer is unreachable a tell becomes a dead
//! letter at once rather than waiting for the next attempt.

mod support;

use std::time::Duration;

use courier_core::{ActorSystem, DeadLetter, DeadLetterReason, TryTellError};
use courier_remote::{Node, RemoteSettings};
use support::{Charge, SECRET, billing_registry, charge};

async fn sender(settings: RemoteSettings) -> (ActorSystem, Node) {
    let system = ActorSystem::new("shop");
    let node = Node::start(&system, settings, billing_registry())
        .await
        .expect("start sender");
    (system, node)
}

async fn next_reason(
    dead: &mut tokio::sync::broadcast::Receiver<DeadLetter>,
    within: Duration,
) -> String {
    let letter = tokio::time::timeout(within, dead.recv())
        .await
        .expect("a dead letter in time")
        .expect("a dead letter");
    match letter.reason {
        DeadLetterReason::Other(reason) => reason.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_for_a_peer_is_bounded() {
    // A "peer" that accepts connections and never answers: the sender's
    // handshake waits, and the queue fills behind it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = silent.local_addr().expect("address");
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let mut settings = RemoteSettings::new("shop-node", SECRET);
    settings.queue_capacity = 4;
    settings.handshake_timeout = Duration::from_secs(2);
    settings.idle_timeout = Duration::from_secs(2);
    let (system, _node) = sender(settings).await;
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system
        .lookup::<Charge>(&format!("courier://billing-node@{address}/user/billing"))
        .expect("lookup");
    // The first message starts the connection; the peer task takes it and
    // waits in the handshake, so four more fill the queue.
    billing.try_tell(charge(0)).expect("room");
    courier_test_support::eventually("the queue filled", Duration::from_secs(5), || {
        matches!(billing.try_tell(charge(1)), Err(TryTellError::Full(_)))
    })
    .await;
    // `send` waits for room: it returns only once the failed handshake has
    // turned the queued messages into dead letters.
    billing.send(charge(2)).await.expect("room, eventually");
    let reason = next_reason(&mut dead, Duration::from_secs(10)).await;
    assert!(reason.contains("billing-node"), "{reason}");
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_peer_is_unreachable_a_tell_is_a_dead_letter_at_once() {
    // Nothing listens there.
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address")
    };
    let mut settings = RemoteSettings::new("shop-node", SECRET);
    // A long backoff: a tell that waited for the next attempt would wait
    // a minute.
    settings.reconnect_min = Duration::from_secs(60);
    settings.reconnect_max = Duration::from_secs(60);
    let (system, _node) = sender(settings).await;
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system
        .lookup::<Charge>(&format!("courier://billing-node@{address}/user/billing"))
        .expect("lookup");
    billing.tell(charge(1));
    let first = next_reason(&mut dead, Duration::from_secs(10)).await;
    assert!(
        first.contains("unreachable") || first.contains("lost"),
        "{first}"
    );
    // Now in the minute-long backoff.
    billing.tell(charge(2));
    let second = next_reason(&mut dead, Duration::from_secs(10)).await;
    assert!(second.contains("peer unreachable"), "{second}");
}
