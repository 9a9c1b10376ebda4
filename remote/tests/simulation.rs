//! Deterministic simulations (turmoil): the same node code, with the same
//! delivery adapters, over a simulated network that partitions, holds and
//! releases the link, and bounces (crashes and restarts) either node. Each
//! node keeps its store across bounces (an engine shared outside the
//! simulated host, as a disk would be). For each seed: nothing is lost, no
//! effect is applied twice, and the outbox drains once the faults stop.
//!
//! `COURIER_SIM_SEEDS=<n>` changes the number of seeds (default 50);
//! `COURIER_SIM_SEED=<s>` runs one.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::testkit::{History, Report};
use courier::persistence::{Journal, MemoryEngine, Store};
use courier::prelude::*;
use courier::remote::{Node, RemoteSettings, Transport};
use support::{Ledger, Order, Rng, SECRET, delivery_registry, ledger, shop};

const PORT: u16 = 7000;
const ORDERS: u64 = 30;

/// The node's network inside the simulation.
async fn transport(host: &str) -> Transport {
    let listener = turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
        .await
        .expect("bind");
    let incoming = futures_stream(listener);
    let address = SocketAddr::new(turmoil::lookup(host), PORT);
    Transport::new(address, incoming, |to: String| async move {
        turmoil::net::TcpStream::connect(to).await
    })
}

/// Accepted connections as a stream.
fn futures_stream(
    listener: turmoil::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<turmoil::net::TcpStream>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            if tx.send(accepted).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

fn settings(node: &str) -> RemoteSettings {
    let mut settings = RemoteSettings::new(node, SECRET);
    settings.reconnect_min = Duration::from_millis(50);
    settings.reconnect_max = Duration::from_secs(1);
    settings
}

fn store(engine: &Arc<MemoryEngine>) -> Arc<dyn Journal> {
    Arc::new(Store::with_engine(Arc::clone(engine)).expect("store"))
}

/// What one simulation did.
struct Outcome {
    /// What the receiver's store holds, checked against the orders sent.
    report: Report<u64>,
    /// Whether both nodes were bounced before the outbox drained.
    bounced_both: bool,
}

/// One simulation.
fn simulate(seed: u64) -> Outcome {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(600))
        .rng_seed(seed)
        .build();
    let receiver_engine = Arc::new(MemoryEngine::new());
    let sender_engine = Arc::new(MemoryEngine::new());
    let drained = Arc::new(AtomicBool::new(false));

    let engine = Arc::clone(&receiver_engine);
    sim.host("receiver", move || {
        let engine = Arc::clone(&engine);
        async move {
            let system = ActorSystem::new("receiver");
            let journal = store(&engine);
            system
                .spawn(Ledger::props(&journal).with_name("ledger"))
                .expect("spawn ledger");
            let _node = Node::start_with(
                &system,
                settings("receiver"),
                delivery_registry(),
                transport("receiver").await,
            )
            .await
            .expect("receiver node");
            std::future::pending::<()>().await;
            Ok(())
        }
    });

    let (engine, done) = (Arc::clone(&sender_engine), Arc::clone(&drained));
    sim.host("sender", move || {
        let (engine, done) = (Arc::clone(&engine), Arc::clone(&done));
        async move {
            let system = ActorSystem::new("sender");
            let node = Node::start_with(
                &system,
                settings("sender"),
                delivery_registry(),
                transport("sender").await,
            )
            .await
            .expect("sender node");
            let out = shop(&system, &store(&engine), Duration::from_millis(500)).await;
            let destination = format!(
                "courier://receiver@{}/user/ledger",
                SocketAddr::new(turmoil::lookup("receiver"), PORT)
            );
            let _node = node;
            while out.next_id().get() <= ORDERS {
                out.deliver(&destination, |id| Order(id.get()))
                    .await
                    .expect("deliver");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            while out.unconfirmed() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            done.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        }
    });

    // The faults, from the seed: partitions and held links for the first
    // seconds, then a healed network.
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9).max(1));
    let schedule: Vec<(u64, u64, u64)> = (0..6)
        .map(|_| (rng.below(4), 100 + rng.below(900), 50 + rng.below(1500)))
        .collect();
    // Both within the time the sender needs for its orders (~3 s).
    let bounce_receiver_at = Duration::from_millis(300 + rng.below(2500));
    let bounce_sender_at = Duration::from_millis(300 + rng.below(2500));
    sim.client("chaos", async move {
        for (kind, before, during) in schedule {
            tokio::time::sleep(Duration::from_millis(before)).await;
            match kind {
                0 | 1 => {
                    turmoil::partition("sender", "receiver");
                    tokio::time::sleep(Duration::from_millis(during)).await;
                    turmoil::repair("sender", "receiver");
                }
                2 => {
                    turmoil::hold("sender", "receiver");
                    tokio::time::sleep(Duration::from_millis(during)).await;
                    turmoil::release("sender", "receiver");
                }
                _ => {}
            }
        }
        Ok(())
    });

    let (mut receiver_bounced, mut sender_bounced) = (false, false);
    while !drained.load(Ordering::SeqCst) {
        let elapsed = sim.elapsed();
        if !receiver_bounced && elapsed >= bounce_receiver_at {
            sim.bounce("receiver");
            receiver_bounced = true;
        }
        if !sender_bounced && elapsed >= bounce_sender_at {
            sim.bounce("sender");
            sender_bounced = true;
        }
        sim.step()
            .unwrap_or_else(|e| panic!("seed {seed}: simulation failed: {e}"));
    }
    Outcome {
        // The sender drained: every order was sent and must be applied once.
        report: History::from_ledgers(1..=ORDERS, applied(&receiver_engine)).check(),
        bounced_both: receiver_bounced && sender_bounced,
    }
}

/// Every application of an order, read from the receiver's store.
fn applied(engine: &Arc<MemoryEngine>) -> Vec<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async { ledger(&*store(engine)).await })
}

#[test]
fn nothing_lost_nothing_applied_twice_over_partitions_holds_and_bounces() {
    let seeds: Vec<u64> = match std::env::var("COURIER_SIM_SEED") {
        Ok(one) => vec![one.parse().expect("COURIER_SIM_SEED")],
        Err(_) => {
            let n: u64 = std::env::var("COURIER_SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(50);
            (1..=n).collect()
        }
    };
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut bounced = 0;
    let total = seeds.len();
    for seed in seeds {
        let Outcome {
            report,
            bounced_both,
        } = simulate(seed);
        bounced += usize::from(bounced_both);
        if !report.is_clean() {
            failures
                .lock()
                .expect("lock")
                .push(format!("seed {seed} (COURIER_SIM_SEED={seed}): {report}"));
        }
    }
    let failures = failures.lock().expect("lock");
    assert!(failures.is_empty(), "{failures:#?}");
    // The faults must have hit the work, or the test proves nothing.
    assert!(
        bounced * 2 >= total,
        "only {bounced} of {total} runs bounced both nodes mid-way"
    );
}

/// A peer that stops answering (the link holds every packet, nothing is
/// reset) is given up after a while: what was in flight becomes a dead
/// letter instead of waiting forever.
#[test]
fn a_peer_that_stops_answering_is_given_up_and_in_flight_messages_reported() {
    use courier::DeadLetter;
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
                transport("receiver").await,
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
            transport("sender").await,
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
            matches!(&letter.reason, courier::DeadLetterReason::Other(r) if r.contains("no answer")),
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
