//! At-least-once delivery between two processes over gRPC with mutual TLS.
//!
//! This example re-runs itself: the parent generates a throwaway cluster CA
//! and a certificate for each node (rcgen), written as PEM files the way a
//! deployment would hold them, then starts a receiver node and a sender
//! node as two child processes, each with its own sled store and its own
//! certificate. The
//! sender delivers N orders to the receiver's remote path; the receiver
//! applies each once (its ledger entry and its inbox record in one atomic
//! write) and acks. Halfway through, the parent kills the receiver
//! (SIGKILL) and starts it again on the same address and store; the
//! sender's unconfirmed deliveries get through once it is back.
//!
//! ```text
//! cargo run --release --features remote --example two_nodes -- [--messages N]
//! ```
//!
//! `--help` lists the options. Logs of all three processes go to standard
//! error (warnings and errors unless `RUST_LOG` says otherwise, e.g.
//! `RUST_LOG=courier_remote=debug`); the children inherit `RUST_LOG`.
//!
//! It ends with `sent=N processed=N duplicates_suppressed=D redelivered=R lost=0`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use courier::delivery::{Ack, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery};
use courier::persistence::{Journal, SledStore, WriteBatch};
use courier::prelude::*;
use courier::remote::{Node, Registry, RemoteSettings, TlsSettings};
use serde::{Deserialize, Serialize};

const RECEIVER: &str = "warehouse-node";
const SENDER: &str = "shop-node";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order(u64);

fn registry() -> anyhow::Result<Registry> {
    let mut registry = Registry::new();
    registry
        .register::<Delivery<Order>>("example.Delivery<Order>/1")?
        .register::<Ack>("courier.Ack/1")?;
    Ok(registry)
}

// ---- the receiver node ----

struct Ledger {
    inbox: ExactlyOnce,
    duplicates: Arc<AtomicU64>,
}

impl Actor for Ledger {
    type Msg = Delivery<Order>;

    async fn handle(
        &mut self,
        d: Delivery<Order>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        // The ledger entry (order number + a unique suffix, so that a second
        // application would show) and the inbox record: one atomic write,
        // then the ack. A duplicate is acked again.
        let entry = |order: &Order| {
            let mut key = order.0.to_be_bytes().to_vec();
            key.extend_from_slice(uuid::Uuid::now_v7().as_bytes());
            WriteBatch::new().put("applied", key, Vec::new())
        };
        if self.inbox.process(&d, entry).await? == Receipt::Duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

async fn receiver(dir: &Path, port: u16) -> anyhow::Result<()> {
    let store: Arc<dyn Journal> = Arc::new(open(&dir.join("receiver")).await?);
    let system = ActorSystem::new(RECEIVER);
    let duplicates = Arc::new(AtomicU64::new(0));
    let (inbox, dups) = (ExactlyOnce::new("ledger", store), Arc::clone(&duplicates));
    system.spawn(
        Props::new(move || Ledger {
            inbox: inbox.clone(),
            duplicates: Arc::clone(&dups),
        })
        .with_name("ledger"),
    )?;
    let mut settings = RemoteSettings::with_tls(RECEIVER, tls(dir, RECEIVER));
    settings.listen = ([127, 0, 0, 1], port).into();
    let node = Node::start(&system, settings, registry()?).await?;
    println!("ready {}", node.path_of("/user/ledger"));
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        println!("duplicates {}", duplicates.load(Ordering::Relaxed));
    }
}

// ---- the sender node ----

/// A plain actor whose outbox is an `AtLeastOnce` field; it hands out its
/// started deliverer so that `main` can deliver and watch the outbox.
struct Shop {
    out: AtLeastOnce<Order>,
}

impl Actor for Shop {
    type Msg = ReplyTo<Deliverer<Order>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.out.start(ctx).await?;
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.deliverer()?);
        Ok(())
    }
}

async fn sender(dir: &Path, destination: &str, messages: u64) -> anyhow::Result<()> {
    let store: Arc<dyn Journal> = Arc::new(open(&dir.join("sender")).await?);
    let system = ActorSystem::new(SENDER);
    let _node = Node::start(
        &system,
        RemoteSettings::with_tls(SENDER, tls(dir, SENDER)),
        registry()?,
    )
    .await?;
    let settings = OutboxSettings {
        redelivery: Redelivery::Backoff {
            min: Duration::from_millis(200),
            max: Duration::from_secs(2),
            jitter: 0.2,
        },
        ..OutboxSettings::default()
    };
    let out = AtLeastOnce::new("shop", store, settings);
    let shop = system.spawn(Props::new(move || Shop { out: out.clone() }).with_name("shop"))?;
    let out = shop.ask(|r| r, Duration::from_secs(10)).await?;
    for n in 1..=messages {
        // Returns once the outbox entry is flushed: from here on, the order
        // reaches the warehouse at least once, whatever happens to it.
        out.deliver(destination, |_| Order(n)).await?;
        println!("sent {n}");
    }
    while out.unconfirmed() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("drained redelivered={}", out.redelivered());
    system.shutdown().await;
    Ok(())
}

async fn open(path: &Path) -> anyhow::Result<SledStore> {
    // A store just released by a killed process may be locked a moment.
    for _ in 0..100 {
        if let Ok(store) = SledStore::open(path) {
            return Ok(store);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    SledStore::open(path).with_context(|| format!("opening {}", path.display()))
}

// ---- certificates ----

/// The node's credentials, as the parent wrote them under `dir/certs`.
fn tls(dir: &Path, node: &str) -> TlsSettings {
    let certs = dir.join("certs");
    TlsSettings::from_files(
        certs.join(format!("{node}.crt")),
        certs.join(format!("{node}.key")),
        certs.join("ca.crt"),
    )
}

// ---- the parent ----

/// A child process and the lines it printed.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn start(args: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Ok(Self { child, lines })
    }

    fn find(&self, prefix: &str) -> Option<String> {
        let lines = self.lines.lock().ok()?;
        lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
    }

    fn wait_for(&mut self, prefix: &str, limit: Duration) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            if let Some(rest) = self.find(prefix) {
                return Ok(rest);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("child exited with {status} before printing {prefix:?}");
            }
            if started.elapsed() > limit {
                bail!("no {prefix:?} within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(mut self) -> anyhow::Result<u64> {
        self.child.kill()?;
        self.child.wait()?;
        // The receiver's last report of the duplicates it suppressed.
        Ok(self
            .find("duplicates ")
            .and_then(|d| d.trim().parse().ok())
            .unwrap_or(0))
    }
}

/// A child never outlives the parent's run, even on an error.
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn parent(messages: u64, metrics: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("courier-two-nodes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    certs::generate(&dir.join("certs"), "two_nodes demo CA", &[RECEIVER, SENDER])?;
    let dir_arg = dir.display().to_string();
    let port = free_port()?;
    let receiver_args = vec![
        "--role".into(),
        "receiver".into(),
        "--dir".into(),
        dir_arg.clone(),
        "--port".into(),
        port.to_string(),
    ];
    let started = Instant::now();
    let mut receiver = Proc::start(&receiver_args)?;
    let destination = receiver.wait_for("ready ", Duration::from_secs(30))?;
    println!("receiver node up: {destination}");
    let mut sender_args: Vec<String> = vec![
        "--role".into(),
        "sender".into(),
        "--dir".into(),
        dir_arg,
        "--destination".into(),
        destination.clone(),
        "--messages".into(),
        messages.to_string(),
    ];
    if let Some(addr) = metrics {
        sender_args.extend(["--metrics".into(), addr.to_string()]);
        println!("sender node's metrics at http://{addr}/metrics");
    }
    let mut sender = Proc::start(&sender_args)?;
    sender.wait_for(
        &format!("sent {}", (messages / 2).max(1)),
        Duration::from_secs(120),
    )?;
    let mut duplicates = receiver.kill()?;
    println!("receiver killed (SIGKILL) halfway; restarting it on the same address and store");
    let mut receiver = Proc::start(&receiver_args)?;
    receiver.wait_for("ready ", Duration::from_secs(30))?;
    let redelivered: u64 = sender
        .wait_for("drained redelivered=", Duration::from_secs(300))?
        .trim()
        .parse()
        .context("redelivered count")?;
    let status = sender.child.wait()?;
    if !status.success() {
        bail!("the sender failed: {status}");
    }
    // Let the receiver report its last duplicates, then stop it.
    std::thread::sleep(Duration::from_millis(200));
    duplicates += receiver.kill()?;

    // The receiver's durable ledger is the truth.
    let counts = ledger(&dir.join("receiver"))?;
    let processed = counts.len() as u64;
    let applied_twice = counts.values().filter(|c| **c > 1).count();
    let lost = (1..=messages).filter(|n| !counts.contains_key(n)).count();
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "sent={messages} processed={processed} duplicates_suppressed={duplicates} redelivered={redelivered} lost={lost}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    if applied_twice > 0 || lost > 0 {
        bail!("delivery broke its promise: {applied_twice} applied twice, {lost} lost");
    }
    Ok(())
}

/// Order number → how many ledger entries it has.
fn ledger(path: &Path) -> anyhow::Result<BTreeMap<u64, u32>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = open(path).await?;
        let mut counts = BTreeMap::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.kv_scan("applied", after.as_deref(), 1000).await?;
            for (key, _) in &page {
                let number: [u8; 8] = key
                    .get(..8)
                    .and_then(|k| k.try_into().ok())
                    .context("a ledger key")?;
                *counts.entry(u64::from_be_bytes(number)).or_insert(0) += 1;
            }
            match page.last() {
                Some((key, _)) if page.len() == 1000 => after = Some(key.clone()),
                _ => return Ok(counts),
            }
        }
    })
}

/// At-least-once delivery between two processes over gRPC with mutual TLS
/// (certificates generated for the run), with the receiver killed (SIGKILL) halfway and restarted on the same store.
///
/// The last line of standard output reads
/// `sent=N processed=N duplicates_suppressed=D redelivered=R lost=0`; the
/// exit status is non-zero if any order was lost or applied twice.
#[derive(Parser)]
#[command(name = "two_nodes", after_help = LOGS_HELP)]
struct Args {
    /// How many orders the sender delivers.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Serve the sending node's Prometheus metrics (delivery, store and
    /// link) at `http://ADDR/metrics`, e.g. `--metrics 127.0.0.1:9000`.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    // The parent re-executes this program as its two nodes with the
    // arguments below; they are not meant to be typed, so `--help` hides
    // them.
    /// Run as one of the two child nodes.
    #[arg(long, hide = true, value_enum, requires = "dir")]
    role: Option<Role>,
    /// The child's store directory (its store is `<dir>/<role>`).
    #[arg(long, hide = true)]
    dir: Option<PathBuf>,
    /// The port the receiver node listens on.
    #[arg(long, hide = true, default_value_t = 0)]
    port: u16,
    /// The receiver's ledger path, for the sender node.
    #[arg(long, hide = true, default_value = "")]
    destination: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Role {
    Receiver,
    Sender,
}

#[path = "support/certs.rs"]
mod certs;
#[path = "support/logging.rs"]
mod logging;
#[path = "support/metrics.rs"]
mod metrics;

const LOGS_HELP: &str = "Logs of all three processes go to standard error, warnings and errors \
by default; set RUST_LOG to see more, e.g. RUST_LOG=courier_remote=debug,courier_delivery=debug.";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init_tracing()?;
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    match (args.role, args.dir) {
        (None, _) => parent(args.messages, args.metrics),
        (Some(Role::Receiver), Some(dir)) => runtime()?.block_on(receiver(&dir, args.port)),
        (Some(Role::Sender), Some(dir)) => runtime()?.block_on(async {
            if let Some(addr) = args.metrics {
                metrics::serve(addr)?;
            }
            sender(&dir, &args.destination, args.messages).await
        }),
        (Some(_), None) => bail!("a child needs --role receiver|sender and --dir"),
    }
}
