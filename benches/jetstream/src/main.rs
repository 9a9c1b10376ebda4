//! End-to-end durable delivery, courier against NATS JetStream, in one run.
//!
//! Each contender moves `--messages` messages of about 200 bytes from
//! `--senders` concurrent publishers to consumers that acknowledge each
//! one, and is timed from the first publish to the last message handled:
//!
//! - `jetstream`: a file-backed stream on a `nats-server -js` started by
//!   this program (Debian's `nats-server`, 2.9); each publisher awaits the
//!   server's `PubAck` before its next message, one pull consumer acks
//!   each message explicitly. JetStream's default is to fsync its files
//!   every two minutes, so its acknowledged messages are not on disk yet:
//!   it is measured as users run it.
//! - `fjall`, `sled`: one courier store on that engine; each publisher is
//!   an `AtLeastOnce` sender awaiting `deliver` (its outbox entry flushed)
//!   before its next message, each to its own `ExactlyOnce` receiver whose
//!   inbox record is flushed before the ack. Every group of writes is
//!   flushed (fjall: fdatasync of its journal; sled: its flush).
//!
//! With `--window W` each publisher keeps W messages in flight instead of
//! one (JetStream: W PubAcks outstanding; courier: W `deliver` calls, which
//! a sender's writer puts in one store write, and receivers that queue
//! their inbox writes with `DedupInbox::submit` so they share flushes).
//!
//! Rounds interleave the contenders (jetstream, fjall, sled, jetstream, …)
//! so that a change of machine load hits them alike; the summary gives each
//! median and the ratios of the same rounds. Without `nats-server` on the
//! PATH the JetStream rows say it is missing and courier runs alone.
//!
//! Run (docs/benchmarks.md has the results):
//! `cd benches/jetstream && cargo run --release -- --rounds 5 [--window 16]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use courier::delivery::{OutboxSettings, Receipt, Redelivery};
use courier::persistence::{DurableStore, EngineKind, Journal, StoreOptions, WriteBatch};
use courier::prelude::*;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

#[derive(Parser)]
#[command(about = "End-to-end durable delivery: courier against NATS JetStream")]
struct Args {
    /// Messages per contender and round.
    #[arg(long, default_value_t = 32_000)]
    messages: u64,
    /// Concurrent publishers (courier: senders, each to its own receiver).
    #[arg(long, default_value_t = 64)]
    senders: u64,
    /// Messages each publisher keeps in flight: 1 awaits each one before
    /// the next (closed loop); more stream (JetStream: that many PubAcks
    /// outstanding; courier: that many `deliver` calls, and receivers that
    /// queue their inbox writes with `DedupInbox::submit`).
    #[arg(long, default_value_t = 1)]
    window: u64,
    /// Rounds; each runs every contender once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Which contenders, in round order.
    #[arg(long, value_delimiter = ',', default_value = "jetstream,fjall,sled")]
    contenders: Vec<String>,
}

/// About 200 bytes encoded, as the other delivery benches send.
#[derive(Clone, Serialize, Deserialize)]
struct Order {
    number: u64,
    note: String,
}

fn order(number: u64) -> Order {
    Order {
        number,
        note: "x".repeat(180),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.senders == 0 || args.window == 0 || args.messages % (args.senders * args.window) != 0 {
        bail!("--messages must be a multiple of --senders × --window");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let nats = match NatsServer::start().await {
        Ok(server) => Some(server),
        Err(e) => {
            println!("jetstream: not measured ({e:#}); apt-get install nats-server");
            None
        }
    };
    println!(
        "{} messages of ~200 bytes, {} publishers, {} in flight each, {} rounds; load {}",
        args.messages,
        args.senders,
        args.window,
        args.rounds,
        load()
    );
    let mut results: Vec<(String, Vec<f64>)> = args
        .contenders
        .iter()
        .map(|c| (c.clone(), Vec::new()))
        .collect();
    for round in 1..=args.rounds {
        for (name, rates) in &mut results {
            let elapsed = match name.as_str() {
                "jetstream" => match &nats {
                    Some(server) => jetstream(server, &args).await?,
                    None => continue,
                },
                "fjall" => courier(EngineKind::Fjall, &args).await?,
                "sled" => courier(EngineKind::Sled, &args).await?,
                other => bail!("unknown contender {other:?} (jetstream, fjall, sled)"),
            };
            let rate = args.messages as f64 / elapsed.as_secs_f64();
            println!(
                "round {round} {name:<9} {rate:>10.0} msg/s  ({:.2} s, load {})",
                elapsed.as_secs_f64(),
                load()
            );
            rates.push(rate);
        }
    }
    println!("\nmedian msg/s and ratios (median of the per-round ratios)");
    for (name, rates) in &results {
        if !rates.is_empty() {
            println!(
                "  {name:<9} {:>10.0}  (min {:.0}, max {:.0})",
                median(rates),
                min(rates),
                max(rates)
            );
        }
    }
    for (a, ra) in &results {
        for (b, rb) in &results {
            if a != b && b == "jetstream" && !ra.is_empty() && ra.len() == rb.len() {
                let ratios: Vec<f64> = ra.iter().zip(rb).map(|(x, y)| x / y).collect();
                println!(
                    "  {a} / {b}: {:.2}x  (rounds: {})",
                    median(&ratios),
                    ratios
                        .iter()
                        .map(|r| format!("{r:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(0.0, f64::max)
}

/// The one-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// A `nats-server -js` of this run on a free loopback port, killed when
/// dropped.
struct NatsServer {
    url: String,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start nats-server")?;
        let url = format!("nats://127.0.0.1:{port}");
        for _ in 0..100 {
            if async_nats::connect(&url).await.is_ok() {
                return Ok(Self {
                    url,
                    _child: child,
                    _dir: dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("nats-server did not accept connections within 5 s")
    }
}

async fn jetstream(server: &NatsServer, args: &Args) -> anyhow::Result<Duration> {
    use async_nats::jetstream::{self, consumer, stream};
    let (messages, senders, window) = (args.messages, args.senders, args.window);
    let client = async_nats::connect(&server.url).await?;
    let js = jetstream::new(client);
    // A fresh stream each round, as courier gets a fresh store.
    let _ = js.delete_stream("ORDERS").await;
    let orders = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let consumer: consumer::PullConsumer = orders
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 200]);
    let start = Instant::now();
    let consumed = tokio::spawn(async move {
        let mut stream = consumer.messages().await?;
        let mut handled = 0;
        while handled < messages {
            let message = stream
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("the consumer's stream ended"))?
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            handled += 1;
        }
        anyhow::Ok(())
    });
    let mut publishers = Vec::new();
    for s in 0..senders {
        for _ in 0..window {
            let (js, payload) = (js.clone(), payload.clone());
            publishers.push(tokio::spawn(async move {
                for _ in 0..messages / senders / window {
                    js.publish(format!("orders.{s}"), payload.clone())
                        .await?
                        .await?;
                }
                anyhow::Ok(())
            }));
        }
    }
    for publisher in publishers {
        publisher.await??;
    }
    consumed.await??;
    Ok(start.elapsed())
}

/// A sender actor: its `AtLeastOnce` is started with it, and the bench's
/// publisher tasks deliver through clones of it.
struct Desk(AtLeastOnce<Order>);

impl Actor for Desk {
    type Msg = ReplyTo<()>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.0.start(ctx).await?;
        Ok(())
    }

    async fn handle(&mut self, ready: ReplyTo<()>, _: &mut Context<Self>) -> Result<(), BoxError> {
        ready.reply(());
        Ok(())
    }
}

/// A receiver: applies each delivery once (its inbox record durable, then
/// the ack), and counts. Streaming, it queues each inbox write and takes
/// the next delivery at once (the ack still waits for the write; the run
/// then counts acks at the senders).
struct Till {
    inbox: ExactlyOnce,
    done: Arc<Done>,
    streaming: bool,
}

struct Done {
    handled: AtomicU64,
    all: u64,
    notify: Notify,
}

impl Done {
    /// One more message handled (durable and acked).
    fn one(&self) {
        if self.handled.fetch_add(1, Ordering::AcqRel) + 1 == self.all {
            self.notify.notify_one();
        }
    }
}

impl Actor for Till {
    type Msg = Delivery<Order>;

    async fn handle(&mut self, d: Delivery<Order>, _: &mut Context<Self>) -> Result<(), BoxError> {
        if !self.streaming {
            let receipt = self.inbox.process(&d, |_| WriteBatch::new()).await?;
            if matches!(receipt, Receipt::New) {
                self.done.one();
            }
            return Ok(());
        }
        let inbox = self.inbox.open().await?;
        if inbox.check(&d) == Receipt::Duplicate {
            d.send_ack();
            return Ok(());
        }
        // Acked by the inbox once durable; the run ends when every sender
        // has its acks (see `courier`).
        drop(inbox.submit(&d, WriteBatch::new()));
        Ok(())
    }
}

async fn courier(engine: EngineKind, args: &Args) -> anyhow::Result<Duration> {
    let (messages, senders, window) = (args.messages, args.senders, args.window);
    let dir = tempfile::tempdir()?;
    let store = DurableStore::open_engine(engine, dir.path(), None, StoreOptions::new())?;
    let journal: Arc<dyn Journal> = Arc::new(store.clone());
    let system = ActorSystem::new("bench");
    let done = Arc::new(Done {
        handled: AtomicU64::new(0),
        all: messages,
        notify: Notify::new(),
    });
    // Redelivery only if something is lost: not in this run.
    let settings = OutboxSettings {
        redelivery: Redelivery::Fixed {
            interval: Duration::from_secs(30),
        },
        ..OutboxSettings::default()
    };
    let mut outs = Vec::new();
    for s in 0..senders {
        let inbox = ExactlyOnce::new(format!("till-{s}"), Arc::clone(&journal));
        let done = Arc::clone(&done);
        system.spawn(
            Props::new(move || Till {
                inbox: inbox.clone(),
                done: Arc::clone(&done),
                streaming: window > 1,
            })
            .with_name(format!("till-{s}")),
        )?;
        let out = AtLeastOnce::new(format!("desk-{s}"), Arc::clone(&journal), settings.clone());
        let of_desk = out.clone();
        let desk = system.spawn(Props::new(move || Desk(of_desk.clone())))?;
        desk.ask(|r| r, Duration::from_secs(30)).await?;
        outs.push(out);
    }
    let start = Instant::now();
    let mut publishers = Vec::new();
    for (s, out) in outs.iter().cloned().enumerate() {
        for _ in 0..window {
            let out = out.clone();
            publishers.push(tokio::spawn(async move {
                let to = format!("/user/till-{s}");
                for n in 0..messages / senders / window {
                    out.deliver(&to, |_| order(n)).await?;
                }
                anyhow::Ok(())
            }));
        }
    }
    for publisher in publishers {
        publisher.await??;
    }
    if window == 1 {
        if done.handled.load(Ordering::Acquire) < messages {
            tokio::time::timeout(Duration::from_secs(120), done.notify.notified())
                .await
                .context("the receivers did not handle every message")?;
        }
    } else {
        // Streaming receivers do not wait for their writes: a message is
        // handled once its ack (sent after its inbox write is durable) is
        // back at its sender.
        let deadline = Instant::now() + Duration::from_secs(120);
        while outs.iter().any(|out| out.unconfirmed() > 0) {
            if Instant::now() > deadline {
                bail!("the receivers did not acknowledge every message");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let elapsed = start.elapsed();
    system.shutdown().await;
    drop(journal);
    store.close().await?;
    Ok(elapsed)
}
