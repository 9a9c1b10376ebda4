//! Crash test with two real OS processes over gRPC: a sender node and a
//! receiver node, each with its own sled store (this test binary, re-run in
//! a role). The parent SIGKILLs the receiver, then the sender, at random
//! moments, restarts them, and at the end checks the receiver's ledger:
//! each of N orders applied exactly once, none missing.
//!
//! Seeds are fixed and printed; `COURIER_CRASH_SEED=<n>` replays one run and
//! `COURIER_CRASH_CYCLES=<n>` changes the number of cycles (default 10).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier::delivery::testkit::History;
use courier::persistence::Journal;
use courier::prelude::*;
use courier::remote::{Node, RemoteSettings};
use support::{Ledger, Order, Rng, SECRET, delivery_registry, ledger, open_sled, shop};

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
        .spawn(Ledger::props(&store).with_name("ledger"))
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

struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

fn spawn(role: &str, dir: &str, port: u16) -> Proc {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .env(PORT, port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    Proc { child, lines }
}

impl Proc {
    /// Whether the child printed `line` (the test harness may print its
    /// own "test … … " before the child's first line).
    fn saw(&self, line: &str) -> bool {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l == line || l.ends_with(&format!(" {line}")))
    }

    fn wait_for(&mut self, line: &str, seed: u64) {
        let started = Instant::now();
        while !self.saw(line) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("seed {seed}: child exited with {status} before {line:?}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "seed {seed}: no {line:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(self) {
        drop(self);
    }
}

/// A child never outlives the test, even when an assertion fails.
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn orders_cross_two_processes_exactly_once_across_sigkills() {
    if let (Ok(role), Ok(dir), Ok(port)) =
        (std::env::var(ROLE), std::env::var(DIR), std::env::var(PORT))
    {
        let port: u16 = port.parse().expect("port");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        match role.as_str() {
            "receiver" => rt.block_on(receiver(&dir, port)),
            _ => rt.block_on(sender(&dir, port)),
        }
        return;
    }
    let seed: u64 = std::env::var("COURIER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7ee0_0de5);
    let cycles: u64 = std::env::var("COURIER_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "two-process crash test: seed {seed} (replay with COURIER_CRASH_SEED={seed}), {cycles} cycles, {ORDERS} orders"
    );
    let mut rng = Rng(seed.max(1));
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
