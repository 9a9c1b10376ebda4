//! Delivery benchmarks: end-to-end durable at-least-once delivery,
//! each message going through the outbox write (flushed), the send, the
//! receiver's inbox write (flushed), the ack and the confirm, against the
//! raw sled limit in the same run:
//!
//! - `e2e/1_sender`: one sender delivering one message at a time to one
//!   deduplicating receiver;
//! - `e2e/8_senders`: eight such sender–receiver pairs at once, on one store;
//! - `raw_sled/batch_N`: raw sled writing the same bytes per message (the
//!   outbox entry, then the inbox record and the entry's delete) in batches
//!   of N messages, each batch followed by `flush_async`, twice per batch
//!   (the two durable points of a message). N = 1 and 8 match the
//!   concurrency of the courier runs; N = 100 is the reference.
//!
//! Run: `cargo bench --bench delivery`. Results:
//! docs/benchmarks.md. The memory figure (RSS with 100,000 unconfirmed
//! deliveries) comes from `benches/delivery_memory.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::delivery::{DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery};
use courier::persistence::{Journal, SledStore};
use courier::prelude::*;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

/// Spawns `pairs` sender–receiver pairs on one store; returns the senders'
/// deliverers.
async fn pairs(
    system: &ActorSystem,
    store: &Arc<SledStore>,
    pairs: usize,
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

/// Each deliverer sends `per_sender` messages one at a time; returns once
/// every one is confirmed.
async fn run(deliverers: &[Deliverer<Order>], per_sender: u64) {
    let tasks: Vec<_> = deliverers
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let out = out.clone();
            let to = format!("/user/receiver-{i}");
            tokio::spawn(async move {
                for n in 0..per_sender {
                    out.deliver(&to, |_| order(n)).await.expect("deliver");
                }
                while out.unconfirmed() > 0 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("sender task");
    }
}

/// The bytes courier stores per message: the outbox entry and the inbox
/// record, measured on a real store.
fn stored_sizes(rt: &tokio::runtime::Runtime) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let store = Arc::new(SledStore::open(dir.path()).expect("open"));
        let system = ActorSystem::new("sizes");
        let deliverers = pairs(&system, &store, 1).await;
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
        let outbox = store
            .kv_scan("courier.outbox/sender-0", None, 10)
            .await
            .expect("scan");
        let entry = outbox.first().map_or(0, |(k, v)| k.len() + v.len());
        system.shutdown().await;
        // An inbox record is a key of name + uuid + tag + id and no value,
        // plus a watermark of 8 bytes now and then.
        let inbox = "courier.inbox/receiver-0".len() + "sender-0".len() + 1 + 16 + 1 + 8;
        (entry, inbox)
    })
}

fn e2e(c: &mut Criterion) {
    let rt = runtime();
    let (entry, inbox) = stored_sizes(&rt);
    let mut group = c.benchmark_group("e2e");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));

    for (senders, per_sender) in [(1usize, 300u64), (8, 100)] {
        group.throughput(Throughput::Elements(senders as u64 * per_sender));
        let label = if senders == 1 {
            "1_sender".to_owned()
        } else {
            format!("{senders}_senders")
        };
        group.bench_function(BenchmarkId::new(label, "courier"), |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (system, deliverers) = rt.block_on(async {
                let store = Arc::new(SledStore::open(dir.path()).expect("open"));
                let system = ActorSystem::new("bench");
                let deliverers = pairs(&system, &store, senders).await;
                (system, deliverers)
            });
            b.to_async(&rt).iter(|| run(&deliverers, per_sender));
            rt.block_on(system.shutdown());
        });
    }

    // The limit: the same bytes per message straight into sled.
    for batch in [1u64, 8, 100] {
        const MESSAGES: u64 = 800;
        group.throughput(Throughput::Elements(MESSAGES));
        group.bench_function(
            BenchmarkId::new("raw_sled", format!("batch_{batch}")),
            |b| {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = sled::open(dir.path()).expect("open");
                let (entry_value, inbox_key) = (vec![7u8; entry], vec![9u8; inbox]);
                let mut next = 0u64;
                b.to_async(&rt).iter_custom(|iters| {
                    let db = db.clone();
                    let (entry_value, mut inbox_key) = (entry_value.clone(), inbox_key.clone());
                    let start_at = next;
                    next += iters * MESSAGES;
                    async move {
                        let started = Instant::now();
                        let mut n = start_at;
                        for _ in 0..iters {
                            for _ in 0..MESSAGES / batch {
                                // The outbox entries, durable.
                                let mut write = sled::Batch::default();
                                for k in n..n + batch {
                                    write.insert(&k.to_be_bytes()[..], entry_value.as_slice());
                                }
                                db.apply_batch(write).expect("batch");
                                db.flush_async().await.expect("flush");
                                // The inbox records and the confirms, durable.
                                let mut write = sled::Batch::default();
                                for k in n..n + batch {
                                    let len = inbox_key.len();
                                    inbox_key[len - 8..].copy_from_slice(&k.to_be_bytes());
                                    write.insert(inbox_key.as_slice(), &[][..]);
                                    write.remove(&k.to_be_bytes()[..]);
                                }
                                db.apply_batch(write).expect("batch");
                                db.flush_async().await.expect("flush");
                                n += batch;
                            }
                        }
                        started.elapsed()
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
