//! Deterministic simulation (turmoil) of a link that holds every packet:
//! the node gives the silent peer up and reports what was in flight. The
//! simulation of delivery over partitions and bounces is a cross-crate
//! scenario in the root `tests/simulation.rs`.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{ActorSystem, Props};
use courier_remote::{Node, RemoteSettings};
use courier_test_support::sim::transport;
use support::SECRET;

const PORT: u16 = 7000;

fn settings(node: &str) -> RemoteSettings {
    let mut settings = RemoteSettings::new(node, SECRET);
    settings.reconnect_min = Duration::from_millis(50);
    settings.reconnect_max = Duration::from_secs(1);
    settings
}

/// A peer that stops answering (the link holds every packet, nothing is
/// reset) is given up after a while: what was in flight becomes a dead
/// letter instead of waiting forever.
#[test]
fn a_peer_that_stops_answering_is_given_up_and_in_flight_messages_reported() {
    use courier_core::DeadLetter;
    use support::{Billing, Charge, billing_registry, charge};

    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(120))
        .build();
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    sim.host("receiver", move || {
        let s = Arc::clone(&s);
        async move {
            let system = ActorSystem::new("receiver");
            system
                .spawn(
                    Props::new(move || Billing {
                        seen: Arc::clone(&s),
                    })
                    .with_name("billing"),
                )
                .expect("spawn");
            let _node = Node::start_with(
                &system,
                settings("receiver"),
                billing_registry(),
                transport("receiver", PORT).await,
            )
            .await
            .expect("node");
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let seen_by_client = Arc::clone(&seen);
    sim.client("sender", async move {
        let system = ActorSystem::new("sender");
        let _node = Node::start_with(
            &system,
            settings("sender"),
            billing_registry(),
            transport("sender", PORT).await,
        )
        .await
        .expect("node");
        let mut dead = system.event_stream().subscribe::<DeadLetter>();
        let billing = system
            .lookup::<Charge>(&format!(
                "courier://receiver@{}/user/billing",
                SocketAddr::new(turmoil::lookup("receiver"), PORT)
            ))
            .expect("lookup");
        billing.tell(charge(1));
        while seen_by_client.lock().expect("lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        turmoil::hold("sender", "receiver");
        billing.tell(charge(2));
        let started = tokio::time::Instant::now();
        let letter = tokio::time::timeout(Duration::from_secs(30), dead.recv())
            .await
            .expect("a dead letter, not a wait forever")
            .expect("dead letter");
        let waited = started.elapsed();
        assert!(
            matches!(&letter.reason, courier_core::DeadLetterReason::Other(r) if r.contains("no answer")),
            "{:?}",
            letter.reason
        );
        assert!(waited >= Duration::from_secs(9), "gave up after {waited:?}");
        Ok(())
    });
    sim.run().expect("simulation");
    assert_eq!(
        seen.lock().expect("lock").len(),
        1,
        "the held message never arrived"
    );
}

/// A peer that dies silently while nothing is in flight (the link holds
/// every packet) is declared down by the HTTP/2 keepalive within
/// `keepalive_interval + keepalive_timeout`: a watcher of an actor on it
/// hears `Terminated`.
#[test]
fn an_idle_peer_that_goes_silent_is_declared_down_and_its_watchers_told() {
    use support::{Billing, Charge, billing_registry, charge};

    let quick = |node: &str| {
        let mut settings = settings(node);
        settings.keepalive_interval = Duration::from_secs(2);
        settings.keepalive_timeout = Duration::from_secs(3);
        settings
    };
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(300))
        .build();
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    sim.host("receiver", move || {
        let s = Arc::clone(&s);
        async move {
            let system = ActorSystem::new("receiver");
            system
                .spawn(
                    Props::new(move || Billing {
                        seen: Arc::clone(&s),
                    })
                    .with_name("billing"),
                )
                .expect("spawn");
            let _node = Node::start_with(
                &system,
                quick("receiver"),
                billing_registry(),
                transport("receiver", PORT).await,
            )
            .await
            .expect("node");
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let seen_by_client = Arc::clone(&seen);
    sim.client("sender", async move {
        let system = ActorSystem::new("sender");
        let _node = Node::start_with(
            &system,
            quick("sender"),
            billing_registry(),
            transport("sender", PORT).await,
        )
        .await
        .expect("node");
        let billing = system
            .lookup::<Charge>(&format!(
                "courier://receiver@{}/user/billing",
                SocketAddr::new(turmoil::lookup("receiver"), PORT)
            ))
            .expect("lookup");
        billing.tell(charge(1));
        while seen_by_client.lock().expect("lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Idle for a while: the keepalive must not end a healthy link.
        let healthy = tokio::time::timeout(Duration::from_secs(20), billing.terminated()).await;
        assert!(healthy.is_err(), "a healthy idle link stays up");
        turmoil::hold("sender", "receiver");
        turmoil::hold("receiver", "sender");
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(60), billing.terminated())
            .await
            .expect("Terminated for the silent peer, not a wait forever");
        let waited = started.elapsed();
        assert!(
            waited <= Duration::from_secs(2 + 3 + 2),
            "declared down after {waited:?}"
        );
        Ok(())
    });
    sim.run().expect("simulation");
}

/// The in-flight window is bounded: to a peer that stops answering, a node
/// sends at most `max_in_flight` messages; behind them the queue fills and
/// `try_tell` reports `Full`, instead of memory growing without end.
#[test]
fn a_full_in_flight_window_pushes_back_on_senders() {
    use courier_core::TryTellError;
    use support::{Billing, Charge, billing_registry, charge};

    let bounded = |node: &str| {
        let mut settings = settings(node);
        settings.max_batch = 8;
        settings.max_in_flight = 8;
        settings.queue_capacity = 4;
        settings
    };
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(120))
        .build();
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    sim.host("receiver", move || {
        let s = Arc::clone(&s);
        async move {
            let system = ActorSystem::new("receiver");
            system
                .spawn(
                    Props::new(move || Billing {
                        seen: Arc::clone(&s),
                    })
                    .with_name("billing"),
                )
                .expect("spawn");
            let _node = Node::start_with(
                &system,
                bounded("receiver"),
                billing_registry(),
                transport("receiver", PORT).await,
            )
            .await
            .expect("node");
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let seen_by_client = Arc::clone(&seen);
    sim.client("sender", async move {
        let system = ActorSystem::new("sender");
        let _node = Node::start_with(
            &system,
            bounded("sender"),
            billing_registry(),
            transport("sender", PORT).await,
        )
        .await
        .expect("node");
        let billing = system
            .lookup::<Charge>(&format!(
                "courier://receiver@{}/user/billing",
                SocketAddr::new(turmoil::lookup("receiver"), PORT)
            ))
            .expect("lookup");
        billing.tell(charge(0));
        while seen_by_client.lock().expect("lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        turmoil::hold("sender", "receiver");
        let mut accepted = 0;
        let mut full = false;
        for cents in 1..=1000 {
            match billing.try_tell(charge(cents)) {
                Ok(()) => accepted += 1,
                Err(TryTellError::Full(_)) => {
                    full = true;
                    break;
                }
                Err(TryTellError::Stopped(_)) => panic!("the node is running"),
            }
            // Let the peer task take what it may.
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(full, "the queue filled behind the window");
        assert!(
            accepted <= 8 + 4 + 1,
            "{accepted} accepted: at most the window, the queue and one in hand"
        );
        Ok(())
    });
    sim.run().expect("simulation");
}
