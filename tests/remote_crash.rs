//! Crash test with two real OS processes over gRPC: a sender node and a
//! receiver node, each with its own sled store (this test binary, re-run in
//! a role). The parent SIGKILLs the receiver, then the sender, at random
//! moments, restarts them, and at the end checks the receiver's ledger:
//! each of N orders applied exactly once, none missing.
//!
//! Seeds are fixed and printed; `COURIER_CRASH_SEED=<n>` replays one run and
//! `COURIER_CRASH_CYCLES=<n>` changes the number of cycles (default 10).

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::persistence::Journal;
use courier::prelude::*;
use courier::remote::{Node, RemoteSettings};
// The facade has `courier::delivery::testkit` only under its `testkit`
// feature; the dev-dependency enables it on the crate itself.
use courier_delivery::testkit::History;
use courier_test_support::Rng;
use courier_test_support::crash::{Child, Plan, child_runtime};
use courier_test_support::ledger::{Ledger, ledger};
use courier_test_support::store::open_sled;
use support::{Order, SECRET, delivery_registry, shop};

const ROLE: &str = "COURIER_REMOTE_CRASH_ROLE";
const DIR: &str = "COURIER_REMOTE_CRASH_DIR";
const PORT: &str = "COURIER_REMOTE_CRASH_PORT";
const TEST: &str = "orders_cross_two_processes_exactly_once_across_sigkills";
const ORDERS: u64 = 2000;

// ---- the receiver process ----

async fn receiver(dir: &str, port: u16) {
    let store: Arc<dyn Journal> = Arc::new(open_sled(&format!("{dir}/receiver")).await);
    let system = ActorSystem::new("ledger-node");
    system
        .spawn(Ledger::<Order>::props(&store).with_name("ledger"))
        .expect("spawn ledger");
    let mut settings = RemoteSettings::new("ledger-node", SECRET);
    settings.listen = ([127, 0, 0, 1], port).into();
    // The port may still be held by the killed predecessor for a moment.
    let mut tries = 0;
    let _node = loop {
        match Node::start(&system, settings.clone(), delivery_registry()).await {
            Ok(node) => break node,
            Err(e) if tries < 100 => {
                tries += 1;
                eprintln!("listen failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot listen: {e}"),
        }
    };
    println!("ready");
    std::future::pending::<()>().await;
}

// ---- the sender process ----

async fn sender(dir: &str, port: u16) {
    let store: Arc<dyn Journal> = Arc::new(open_sled(&format!("{dir}/sender")).await);
    let system = ActorSystem::new("shop-node");
    let _node = Node::start(
        &system,
        RemoteSettings::new("shop-node", SECRET),
        delivery_registry(),
    )
    .await
    .expect("sender node");
    let out = shop(&system, &store, Duration::from_millis(200)).await;
    let destination = format!("courier://ledger-node@127.0.0.1:{port}/user/ledger");
    // Order n is delivery n: ids are gap-free and continue across restarts.
    while out.next_id().get() <= ORDERS {
        let id = out
            .deliver(&destination, |id| Order(id.get()))
            .await
            .expect("deliver");
        println!("sent {}", id.get());
    }
    while out.unconfirmed() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("drained");
    std::future::pending::<()>().await;
}

// ---- the parent ----

/// A child in a role, and the lines it printed.
struct Proc {
    child: Child,
    lines: Arc<Mutex<HashSet<String>>>,
}

fn spawn(role: &str, dir: &str, port: u16) -> Proc {
    let lines: Arc<Mutex<HashSet<String>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let port = port.to_string();
    let child = Child::spawn(
        TEST,
        &[(ROLE, role), (DIR, dir), (PORT, &port)],
        move |line| {
            sink.lock().expect("lock").insert(line.to_owned());
        },
    );
    Proc { child, lines }
}

impl Proc {
    fn wait_for(&mut self, line: &str, seed: u64) {
        let lines = Arc::clone(&self.lines);
        self.child.wait_until(
            &format!("seed {seed}: {line:?}"),
            Duration::from_secs(120),
            || lines.lock().expect("lock").contains(line),
        );
    }

    fn kill(self) {
        self.child.kill();
    }
}

#[test]
fn orders_cross_two_processes_exactly_once_across_sigkills() {
    if let (Ok(role), Ok(dir), Ok(port)) =
        (std::env::var(ROLE), std::env::var(DIR), std::env::var(PORT))
    {
        let port: u16 = port.parse().expect("port");
        let rt = child_runtime();
        match role.as_str() {
            "receiver" => rt.block_on(receiver(&dir, port)),
            _ => rt.block_on(sender(&dir, port)),
        }
        return;
    }
    let Plan { seed, cycles } = Plan::from_env(0x7ee0_0de5, 10);
    println!(
        "two-process crash test: seed {seed} (replay with COURIER_CRASH_SEED={seed}), {cycles} cycles, {ORDERS} orders"
    );
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().to_str().expect("utf-8").to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();

    let mut receiver = spawn("receiver", &dir, port);
    receiver.wait_for("ready", seed);
    let mut sender = spawn("sender", &dir, port);
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(50 + rng.below(300)));
        receiver.kill();
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        receiver = spawn("receiver", &dir, port);
        receiver.wait_for("ready", seed);
        std::thread::sleep(Duration::from_millis(50 + rng.below(300)));
        sender.kill();
        sender = spawn("sender", &dir, port);
        println!("cycle {cycle}: receiver and sender killed and restarted");
    }
    sender.wait_for("drained", seed);
    sender.kill();
    receiver.kill();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let applied = rt.block_on(async {
        let store = open_sled(&format!("{dir}/receiver")).await;
        ledger(&store).await
    });
    // The sender drained: every order was sent and must be applied once.
    let report = History::from_ledgers(1..=ORDERS, applied).check();
    assert!(report.is_clean(), "seed {seed}: {report}");
}
