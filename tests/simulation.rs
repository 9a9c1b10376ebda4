//! Deterministic simulation (turmoil): the same node code, with the same
//! delivery adapters, over a simulated network that partitions, holds and
//! releases the link, and bounces (crashes and restarts) either node. Each
//! node keeps its store across bounces (an engine shared outside the
//! simulated host, as a disk would be). For each seed: nothing is lost, no
//! effect is applied twice, and the outbox drains once the faults stop.
//!
//! `COURIER_SIM_SEEDS=<n>` changes the number of seeds (default 50);
//! `COURIER_SIM_SEED=<s>` runs one.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::persistence::engine::MemoryEngine;
use courier::persistence::{Journal, Store};
use courier::prelude::*;
use courier::remote::{Node, RemoteSettings};
// The facade has `courier::delivery::testkit` only under its `testkit`
// feature; the dev-dependency enables it on the crate itself.
use courier_delivery::testkit::{History, Report};
use courier_test_support::Rng;
use courier_test_support::crash::env_u64;
use courier_test_support::ledger::{Ledger, ledger};
use courier_test_support::sim::transport;
use support::{Order, SECRET, delivery_registry, shop};

const PORT: u16 = 7000;
const ORDERS: u64 = 30;

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
                .spawn(Ledger::<Order>::props(&journal).with_name("ledger"))
                .expect("spawn ledger");
            let _node = Node::start_with(
                &system,
                settings("receiver"),
                delivery_registry(),
                transport("receiver", PORT).await,
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
                transport("sender", PORT).await,
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
    let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9));
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
    let seeds: Vec<u64> = match env_u64("COURIER_SIM_SEED") {
        Some(one) => vec![one],
        None => (1..=env_u64("COURIER_SIM_SEEDS").unwrap_or(50)).collect(),
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
