//! Remote benchmarks, each against its limit in the same run:
//!
//! - `remote/tell`: node A tells 20,000 messages of about 200 bytes to an
//!   actor on node B over loopback, until all have arrived; the limit is a
//!   bare tonic stream on the same protocol carrying the same envelopes in
//!   batches of 256, with nothing done on arrival but counting;
//! - `remote/ask`: sequential asks across the two nodes (round trip);
//! - `delivery/…`: at-least-once delivery, one sender awaiting each
//!   `deliver`, between two nodes (each with its own sled store) and, in the
//!   same run, within one process on one store.
//!
//! Run: `cargo bench -p courier-bench-remote --bench remote`. Results: docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use courier::delivery::{
    Ack, DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, SledStore};
use courier::prelude::*;
use courier::remote::{Node, Registry, RemoteSettings};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

const SECRET: &str = "bench secret of enough length";

#[derive(Clone, Serialize, Deserialize)]
struct Charge {
    account: String,
    cents: u64,
}

fn charge(cents: u64) -> Charge {
    Charge {
        account: "x".repeat(180),
        cents,
    }
}

#[derive(Serialize, Deserialize)]
struct Balance {
    reply: ReplyTo<u64>,
}

struct Count {
    seen: Arc<AtomicU64>,
}

impl Actor for Count {
    type Msg = Charge;

    async fn handle(&mut self, _: Charge, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.seen.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct Answer;

impl Actor for Answer {
    type Msg = Balance;

    async fn handle(&mut self, msg: Balance, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        msg.reply.reply(42);
        Ok(())
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Order(u64, String);

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

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

struct Receiver {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
}

impl Actor for Receiver {
    type Msg = Delivery<Order>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "receiver").await?);
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

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Charge>("bench.Charge/1")
        .expect("register")
        .register::<Balance>("bench.Balance/1")
        .expect("register")
        .register::<u64>("u64")
        .expect("register")
        .register::<Delivery<Order>>("bench.Delivery<Order>/1")
        .expect("register")
        .register::<Ack>("courier.Ack/1")
        .expect("register");
    registry
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn node(name: &str) -> (ActorSystem, Node) {
    let system = ActorSystem::new(name);
    let node = Node::start(&system, RemoteSettings::new(name, SECRET), registry())
        .await
        .expect("node");
    (system, node)
}

fn remote(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("remote");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));

    const TELLS: u64 = 20_000;
    group.throughput(Throughput::Elements(TELLS));
    let (a, b, seen, target) = rt.block_on(async {
        let (bsys, bnode) = node("b").await;
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        bsys.spawn(
            Props::new(move || Count {
                seen: Arc::clone(&s),
            })
            .with_name("count"),
        )
        .expect("spawn");
        bsys.spawn(Props::new(|| Answer).with_name("answer"))
            .expect("spawn");
        let (asys, anode) = node("a").await;
        let target = asys
            .lookup::<Charge>(&bnode.path_of("/user/count"))
            .expect("lookup");
        ((asys, anode), (bsys, bnode), seen, target)
    });
    group.bench_function(BenchmarkId::new("tell", "courier"), |bench| {
        bench.to_async(&rt).iter_custom(|iters| {
            let (seen, target) = (Arc::clone(&seen), target.clone());
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let goal = seen.load(Ordering::Relaxed) + TELLS;
                    for n in 0..TELLS {
                        // `send` waits for room in the peer's bounded queue.
                        target.send(charge(n)).await.expect("room");
                    }
                    while seen.load(Ordering::Relaxed) < goal {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                started.elapsed()
            }
        });
    });
    group.bench_function(BenchmarkId::new("tell", "bare_tonic_stream"), |bench| {
        let payload = courier::codec::encode(&charge(1), courier::codec::MAX_LEN).expect("encode");
        let (server, client) = rt.block_on(async {
            let server = courier_bench_remote::serve().await.expect("serve");
            let client = courier_bench_remote::BareClient::connect(server.address)
                .await
                .expect("connect");
            (server, client)
        });
        bench.to_async(&rt).iter_custom(|iters| {
            let received = Arc::clone(&server.received);
            let (client, payload) = (&client, payload.clone());
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let goal = received.load(Ordering::Relaxed) + TELLS;
                    for _ in 0..TELLS / 250 {
                        client
                            .send_batch("/user/count", "bench.Charge/1", &payload, 250)
                            .await
                            .expect("send");
                    }
                    while received.load(Ordering::Relaxed) < goal {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                started.elapsed()
            }
        });
        drop(server);
    });

    const ASKS: u64 = 200;
    group.throughput(Throughput::Elements(ASKS));
    let answer =
        a.0.lookup::<Balance>(&b.1.path_of("/user/answer"))
            .expect("lookup");
    group.bench_function(BenchmarkId::new("ask", "courier"), |bench| {
        bench.to_async(&rt).iter(|| async {
            for _ in 0..ASKS {
                answer
                    .ask(|reply| Balance { reply }, Duration::from_secs(5))
                    .await
                    .expect("reply");
            }
        });
    });
    group.finish();

    // At-least-once: between the two nodes, and within one process.
    let mut group = c.benchmark_group("delivery");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    const DELIVERIES: u64 = 300;
    group.throughput(Throughput::Elements(DELIVERIES));
    for across in [false, true] {
        let dirs = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let (out, destination) = rt.block_on(async {
            let sender_store: Arc<dyn Journal> =
                Arc::new(SledStore::open(dirs.0.path()).expect("open"));
            let receiver_store: Arc<dyn Journal> = if across {
                Arc::new(SledStore::open(dirs.1.path()).expect("open"))
            } else {
                Arc::clone(&sender_store)
            };
            let name = if across {
                "remote-receiver"
            } else {
                "local-receiver"
            };
            let (rsys, destination) = if across {
                (&b.0, b.1.path_of(&format!("/user/{name}")))
            } else {
                (&a.0, format!("/user/{name}"))
            };
            let j = Arc::clone(&receiver_store);
            rsys.spawn(
                Props::new(move || Receiver {
                    journal: Arc::clone(&j),
                    inbox: None,
                })
                .with_name(name),
            )
            .expect("spawn receiver");
            let j = Arc::clone(&sender_store);
            let sender_name = if across {
                "sender-remote"
            } else {
                "sender-local"
            };
            let sender =
                a.0.spawn(
                    Props::new(move || Sender {
                        name: sender_name.into(),
                        journal: Arc::clone(&j),
                        out: None,
                    })
                    .with_name(sender_name),
                )
                .expect("spawn sender");
            let out = sender
                .ask(|r| r, Duration::from_secs(10))
                .await
                .expect("deliverer");
            (out, destination)
        });
        let label = if across {
            "between_nodes"
        } else {
            "one_process"
        };
        group.bench_function(BenchmarkId::new("at_least_once", label), |bench| {
            bench.to_async(&rt).iter(|| async {
                for n in 0..DELIVERIES {
                    out.deliver(&destination, |_| Order(n, "x".repeat(180)))
                        .await
                        .expect("deliver");
                }
                while out.unconfirmed() > 0 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            });
        });
        drop(dirs);
    }
    group.finish();
    rt.block_on(async {
        a.1.shutdown().await;
        b.1.shutdown().await;
        a.0.shutdown().await;
        b.0.shutdown().await;
    });
}

criterion_group!(benches, remote);
criterion_main!(benches);
