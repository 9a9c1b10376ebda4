//! End-to-end durable delivery against the raw engine doing the same
//! writes, on sled and (built with `--features fjall`) on fjall, with 1, 8
//! and 64 senders, each delivering to its own deduplicating receiver, all
//! on one store:
//!
//! - `delivery_<engine>/courier/<senders>`: each sender awaits each
//!   `Deliverer::deliver` (outbox entry written and flushed, then sent);
//!   the receiver runs `DedupInbox::check` + `commit` (inbox record written
//!   and flushed, then acked); the ack confirms the delivery, whose outbox
//!   entry is deleted. An iteration ends when every message is confirmed.
//! - `delivery_<engine>/courier_window16/<senders>`: the same, each sender
//!   keeping 16 `deliver` calls in flight (clones of its deliverer, as a
//!   sender that streams does).
//! - `delivery_<engine>/courier_pipelined/<senders>`: senders as in
//!   `courier_window16`, and receivers that do not wait for each inbox
//!   write: `DedupInbox::submit` queues it and the receiver takes its next
//!   delivery (the ack still waits for the flush), so a receiver's inbox
//!   records share flushes too. (`DedupInbox::submit` is new with issue 14;
//!   the run before it has no such row.)
//! - `delivery_<engine>/raw_3op/<senders>`: the limit, a plain loop on the
//!   engine itself doing the same three operations per message (the outbox
//!   entry's put, the inbox record's put, the outbox entry's delete) in
//!   groups of `<senders>` messages, with one durable flush per group, as a
//!   user pipelining an outbox by hand would: group k's batch holds its own
//!   messages' outbox puts and the previous group's inbox puts and outbox
//!   deletes (a message's entry is durable before it is "sent", its inbox
//!   record before its delete). `raw_3op_x16/<senders>` does the same in
//!   groups of 16 × `<senders>` messages, the concurrency of
//!   `courier_pipelined`. sled: `apply_batch` + `Db::flush`; fjall:
//!   one batch `commit` + `persist(SyncData)` (courier's `FjallEngine`,
//!   which is exactly those two calls).
//!
//! Run: `cargo bench --features fjall --bench delivery`. Results:
//! docs/benchmarks.md. The memory figure (RSS with 100,000 unconfirmed
//! deliveries) comes from `benches/delivery_memory.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::delivery::{DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery};
use courier::persistence::{DurableStore, EngineKind, Journal, StoreOptions, WriteBatch};
use courier::prelude::*;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use serde::{Deserialize, Serialize};

/// A message of about 200 bytes.
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

struct Sender {
    name: String,
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<Order>>,
}

impl Actor for Sender {
    type Msg = ReplyTo<Deliverer<Order>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_secs(5),
            },
            ..OutboxSettings::default()
        };
        self.out =
            Some(Deliverer::start(ctx, &self.name, Arc::clone(&self.journal), settings).await?);
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

struct Receiver {
    name: String,
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    /// Queue each inbox write (`DedupInbox::submit`) instead of awaiting it.
    pipelined: bool,
}

impl Actor for Receiver {
    type Msg = Delivery<Order>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), &self.name).await?);
        Ok(())
    }

    async fn handle(
        &mut self,
        d: Delivery<Order>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        match inbox.check(&d) {
            Receipt::Duplicate => d.send_ack(),
            Receipt::New if self.pipelined => {
                // Acked by the inbox once durable.
                drop(inbox.submit(&d, WriteBatch::new()));
            }
            Receipt::New => inbox.commit(&d).await?,
        }
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open(kind: EngineKind, dir: &std::path::Path) -> Arc<DurableStore> {
    Arc::new(DurableStore::open_engine(kind, dir, None, StoreOptions::new()).expect("open store"))
}

/// Spawns `pairs` sender–receiver pairs on one store; returns the senders'
/// deliverers.
async fn pairs(
    system: &ActorSystem,
    store: &Arc<DurableStore>,
    pairs: usize,
    pipelined: bool,
) -> Vec<Deliverer<Order>> {
    let mut out = Vec::new();
    for i in 0..pairs {
        let journal: Arc<dyn Journal> = store.clone();
        let j = Arc::clone(&journal);
        system
            .spawn(
                Props::new(move || Receiver {
                    name: format!("receiver-{i}"),
                    journal: Arc::clone(&j),
                    inbox: None,
                    pipelined,
                })
                .with_name(format!("receiver-{i}")),
            )
            .expect("spawn receiver");
        let sender = system
            .spawn(
                Props::new(move || Sender {
                    name: format!("sender-{i}"),
                    journal: Arc::clone(&journal),
                    out: None,
                })
                .with_name(format!("sender-{i}")),
            )
            .expect("spawn sender");
        out.push(
            sender
                .ask(|r| r, Duration::from_secs(10))
                .await
                .expect("deliverer"),
        );
    }
    out
}

/// Each deliverer sends `per_sender` messages, `window` at a time (each
/// in-flight `deliver` awaited before that slot takes the next); returns
/// once every one is confirmed.
async fn run(deliverers: &[Deliverer<Order>], per_sender: u64, window: u64) {
    let mut tasks = Vec::new();
    for (i, out) in deliverers.iter().enumerate() {
        let to: Arc<str> = Arc::from(format!("/user/receiver-{i}"));
        for slot in 0..window {
            let (out, to) = (out.clone(), Arc::clone(&to));
            tasks.push(tokio::spawn(async move {
                let mut n = slot;
                while n < per_sender {
                    out.deliver(&to, |_| order(n)).await.expect("deliver");
                    n += window;
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("sender task");
    }
    for out in deliverers {
        while out.unconfirmed() > 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// The sizes of what courier stores per message, measured on a real
/// store: the outbox entry's key (namespace and id) and value, and the
/// inbox record's key.
#[derive(Clone, Copy)]
struct Sizes {
    outbox_key: usize,
    outbox_value: usize,
    inbox_key: usize,
}

fn stored_sizes(rt: &tokio::runtime::Runtime) -> Sizes {
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let store = open(EngineKind::Sled, dir.path());
        let system = ActorSystem::new("sizes");
        let deliverers = pairs(&system, &store, 1, false).await;
        // With no receiver acking yet, the entry stays: stop the receiver.
        let receiver = system
            .lookup::<Delivery<Order>>("/user/receiver-0")
            .expect("receiver");
        receiver.stop();
        receiver.terminated().await;
        deliverers[0]
            .deliver("/user/receiver-0", |_| order(1))
            .await
            .expect("deliver");
        let namespace = "courier.outbox/sender-0";
        let outbox = store.kv_scan(namespace, None, 10).await.expect("scan");
        let (key, value) = outbox.first().map_or((0, 0), |(k, v)| (k.len(), v.len()));
        system.shutdown().await;
        Sizes {
            outbox_key: namespace.len() + key,
            // The store frames each value with a 4-byte CRC.
            outbox_value: value + 4,
            // An inbox record: its namespace, the sender's name, NUL, the
            // incarnation, a tag and the id (the watermark's value is 8
            // bytes).
            inbox_key: "courier.inbox/receiver-0".len() + "sender-0".len() + 1 + 16 + 1 + 8,
        }
    })
}

/// The raw engine under the limit loop: one atomic batch, one durable flush.
trait RawEngine {
    fn write(&self, puts: Vec<(Vec<u8>, Vec<u8>)>, deletes: Vec<Vec<u8>>);
}

impl RawEngine for sled::Db {
    fn write(&self, puts: Vec<(Vec<u8>, Vec<u8>)>, deletes: Vec<Vec<u8>>) {
        let mut batch = sled::Batch::default();
        for (k, v) in puts {
            batch.insert(k, v);
        }
        for k in deletes {
            batch.remove(k);
        }
        self.apply_batch(batch).expect("batch");
        self.flush().expect("flush");
    }
}

#[cfg(feature = "fjall")]
impl RawEngine for courier::persistence::engine::FjallEngine {
    fn write(&self, puts: Vec<(Vec<u8>, Vec<u8>)>, deletes: Vec<Vec<u8>>) {
        use courier::persistence::engine::{Engine, EngineOp};
        let ops = puts
            .into_iter()
            .map(|(k, v)| EngineOp::Put(k, v))
            .chain(deletes.into_iter().map(EngineOp::Delete))
            .collect();
        self.apply(ops).expect("commit");
        self.flush().expect("persist");
    }
}

/// `messages` messages through the raw 3-operation loop in groups of
/// `group`, continuing from message `next`; returns the time taken.
fn raw_loop(
    engine: &impl RawEngine,
    sizes: Sizes,
    next: &mut u64,
    messages: u64,
    group: u64,
) -> Duration {
    let key = |tag: u8, len: usize, n: u64| {
        let mut k = vec![tag; len.max(8)];
        let at = k.len() - 8;
        k[at..].copy_from_slice(&n.to_be_bytes());
        k
    };
    let outbox_key = |n: u64| key(1, sizes.outbox_key, n);
    let inbox_key = |n: u64| key(2, sizes.inbox_key, n);
    let value = vec![7u8; sizes.outbox_value];
    let started = Instant::now();
    let mut previous: Option<std::ops::Range<u64>> = None;
    let end = *next + messages;
    while *next < end || previous.is_some() {
        let current = (*next < end).then(|| *next..(*next + group).min(end));
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        if let Some(range) = current.clone() {
            puts.extend(range.map(|n| (outbox_key(n), value.clone())));
        }
        if let Some(range) = previous.take() {
            for n in range {
                puts.push((inbox_key(n), n.to_be_bytes().to_vec()));
                deletes.push(outbox_key(n));
            }
        }
        engine.write(puts, deletes);
        if let Some(range) = &current {
            *next = range.end;
        }
        previous = current;
    }
    started.elapsed()
}

fn engines() -> Vec<EngineKind> {
    let mut kinds = vec![EngineKind::Sled];
    if cfg!(feature = "fjall") {
        kinds.push(EngineKind::Fjall);
    }
    kinds
}

fn e2e(c: &mut Criterion) {
    let rt = runtime();
    let sizes = stored_sizes(&rt);
    for kind in engines() {
        let mut group = c.benchmark_group(format!("delivery_{kind}"));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .measurement_time(Duration::from_secs(10))
            .warm_up_time(Duration::from_secs(1));
        for (senders, per_sender) in [(1usize, 200u64), (8, 100), (64, 50)] {
            let messages = senders as u64 * per_sender;
            group.throughput(Throughput::Elements(messages));
            for (label, window, pipelined) in [
                ("courier", 1u64, false),
                ("courier_window16", 16, false),
                ("courier_pipelined", 16, true),
            ] {
                if label == "courier_window16" && senders == 64 {
                    continue;
                }
                group.bench_function(BenchmarkId::new(label, senders), |b| {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let (system, deliverers) = rt.block_on(async {
                        let store = open(kind, dir.path());
                        let system = ActorSystem::new("bench");
                        let deliverers = pairs(&system, &store, senders, pipelined).await;
                        (system, deliverers)
                    });
                    b.to_async(&rt)
                        .iter(|| run(&deliverers, per_sender, window));
                    rt.block_on(system.shutdown());
                });
            }
            // The limit with the concurrency of `courier`, and with that of
            // `courier_pipelined` (16 in flight per sender).
            for (label, per_group) in [
                ("raw_3op", senders as u64),
                ("raw_3op_x16", 16 * senders as u64),
            ] {
                group.bench_function(BenchmarkId::new(label, senders), |b| {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let mut next = 0u64;
                    match kind {
                        EngineKind::Sled => {
                            let db = sled::open(dir.path()).expect("open");
                            b.iter_custom(|iters| {
                                (0..iters)
                                    .map(|_| raw_loop(&db, sizes, &mut next, messages, per_group))
                                    .sum()
                            });
                        }
                        #[cfg(feature = "fjall")]
                        EngineKind::Fjall => {
                            let engine =
                                courier::persistence::engine::FjallEngine::open(dir.path())
                                    .expect("open");
                            b.iter_custom(|iters| {
                                (0..iters)
                                    .map(|_| {
                                        raw_loop(&engine, sizes, &mut next, messages, per_group)
                                    })
                                    .sum()
                            });
                        }
                        _ => unreachable!("engines() lists only compiled engines"),
                    }
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, e2e);
criterion_main!(benches);
