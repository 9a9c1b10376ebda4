//! Memory with 100,000 unconfirmed deliveries: the process's
//! resident set size before and after a sender accepts 100,000 deliveries of
//! about 200 bytes that nobody confirms, on each engine (sled, and fjall
//! when built with it), each in a fresh child process (this binary
//! re-executed) so that one engine's memory does not count for the other.
//!
//! Run: `cargo bench --features fjall --bench delivery_memory`. Prints one
//! line per engine; results in docs/benchmarks.md. Linux only (reads
//! `/proc/self/status`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::delivery::{Deliverer, OutboxSettings, Redelivery};
use courier::persistence::{DurableStore, EngineKind, Journal, StoreOptions};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

const UNCONFIRMED: u64 = 100_000;
const CONCURRENT: u64 = 64;

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    number: u64,
    note: String,
}

struct Sender {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<Order>>,
}

impl Actor for Sender {
    type Msg = ReplyTo<Deliverer<Order>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            // No redelivery during the measurement.
            redelivery: Redelivery::Fixed {
                interval: Duration::from_secs(3600),
            },
            max_unconfirmed: UNCONFIRMED as usize,
            ..OutboxSettings::default()
        };
        self.out =
            Some(Deliverer::start(ctx, "sender", Arc::clone(&self.journal), settings).await?);
        Ok(())
    }

    async fn handle(
        &mut self,
        reply: ReplyTo<Deliverer<Order>>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

const CHILD: &str = "COURIER_BENCH_CHILD";
/// The engine cache of a child (bytes, or "default").
const CACHE: &str = "COURIER_BENCH_CACHE";
/// The bounded cache measured beside each engine's default: 8 MiB.
const SMALL_CACHE: &str = "8388608";

fn main() {
    // `cargo bench` passes `--bench`; the engine comes to the child in
    // the environment.
    let Ok(engine) = std::env::var(CHILD) else {
        let mut engines = vec!["sled"];
        if EngineKind::Fjall.available() {
            engines.push("fjall");
        }
        for engine in engines {
            // The engine's default cache, then one bounded as
            // `[persistence] cache_capacity` bounds it.
            for cache in ["default", SMALL_CACHE] {
                let status = std::process::Command::new(std::env::current_exe().expect("exe"))
                    .env(CHILD, engine)
                    .env(CACHE, cache)
                    .status()
                    .expect("child");
                assert!(status.success(), "{engine}: {status}");
            }
        }
        return;
    };
    let cache = std::env::var(CACHE)
        .ok()
        .and_then(|c| c.parse::<u64>().ok());
    let kind = match engine.as_str() {
        "fjall" => EngineKind::Fjall,
        _ => EngineKind::Sled,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let store = Arc::new(
            DurableStore::open_engine(kind, dir.path(), cache, StoreOptions::new()).expect("open"),
        );
        let system = ActorSystem::new("memory");
        let journal: Arc<dyn Journal> = store.clone();
        let sender = system
            .spawn(Props::new(move || Sender {
                journal: Arc::clone(&journal),
                out: None,
            }))
            .expect("spawn");
        let out = sender
            .ask(|r| r, Duration::from_secs(10))
            .await
            .expect("deliverer");
        let before = rss_kib();
        let started = Instant::now();
        // Nobody lives at the destination: every delivery stays unconfirmed.
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|t| {
                let out = out.clone();
                tokio::spawn(async move {
                    let mut n = t;
                    while n < UNCONFIRMED {
                        let order = Order {
                            number: n,
                            note: "x".repeat(180),
                        };
                        out.deliver("/user/nobody", |_| order)
                            .await
                            .expect("deliver");
                        n += CONCURRENT;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let after = rss_kib();
        println!(
            "engine={engine} cache={} unconfirmed={} rss_before={:.1}MiB rss_after={:.1}MiB growth={:.1}MiB ({:.0} bytes per delivery) in {:.1}s",
            cache.map_or_else(|| "default".to_owned(), |c| c.to_string()),
            out.unconfirmed(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after.saturating_sub(before)) as f64 / 1024.0,
            (after.saturating_sub(before)) as f64 * 1024.0 / UNCONFIRMED as f64,
            started.elapsed().as_secs_f64()
        );
        system.shutdown().await;
    });
}
