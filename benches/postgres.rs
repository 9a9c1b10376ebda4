//! PostgreSQL benchmarks, each beside a raw `tokio-postgres` loop doing the
//! same inserts in the same transactions, and beside the embedded sled
//! store, in the same run:
//!
//! - `pg_persist/100_actors`: 100 event-sourced actors persisting
//!   concurrently (group commit: one transaction per group), against raw
//!   transactions of 100 event rows plus the 100 journal rows' updates;
//! - `pg_e2e/8_senders`, `pg_e2e/64_senders`: end-to-end durable delivery
//!   (outbox write, send, inbox write, ack, confirm) with 8 and 64
//!   sender–receiver pairs on one store, against raw transactions that
//!   insert the outbox rows, then insert the inbox rows and delete the
//!   outbox rows, N messages per transaction (N = the number of senders).
//!
//! Needs a server: `scripts/postgres.sh run cargo bench --features postgres
//! --bench postgres`. Results: docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::delivery::{DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery};
use courier::persistence::postgres::{Password, PostgresSettings, PostgresStore};
use courier::persistence::{
    Effect, EventRecord, EventSourced, Journal, MemoryStore, Persistent, PersistentContext,
    SledStore, Snapshots, encode_payload, now_millis,
};
use courier::prelude::*;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

const ACTORS: u64 = 100;
const PER_ACTOR: u64 = 20;

fn url() -> String {
    std::env::var("COURIER_POSTGRES_URL").expect(
        "COURIER_POSTGRES_URL is not set: run under `scripts/postgres.sh run cargo bench ...`",
    )
}

fn settings(schema: &str) -> PostgresSettings {
    let mut s = PostgresSettings::new(&url())
        .expect("url")
        .with_schema(schema)
        .expect("schema")
        .with_pool_size(16)
        .expect("pool");
    if let Ok(p) = Password::from_env("COURIER_POSTGRES_PASSWORD") {
        s = s.with_password(p);
    }
    s
}

fn new_schema(what: &str) -> String {
    format!("bench_{what}_{}", uuid::Uuid::now_v7().simple())
}

async fn raw_client() -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = url().parse().expect("url");
    if let Ok(p) = std::env::var("COURIER_POSTGRES_PASSWORD") {
        config.password(p);
    }
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

// ---- persist ----

#[derive(Serialize, Deserialize)]
struct Written {
    id: u64,
    note: String,
}

fn event() -> Written {
    Written {
        id: 42,
        note: "x".repeat(190),
    }
}

#[derive(Default)]
struct Sink {
    events: u64,
}

impl EventSourced for Sink {
    type Command = ReplyTo<u64>;
    type Event = Written;

    async fn handle_command(
        &mut self,
        reply: ReplyTo<u64>,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(Effect::persist(event()).reply(reply, |s: &Self| s.events))
    }
    fn apply_event(&mut self, _: Written) {
        self.events += 1;
    }
}

impl Snapshots for Sink {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.events
    }

    fn apply_snapshot(&mut self, events: u64) {
        self.events = events;
    }
}

/// The bytes courier stores for one event row (the framed record).
fn stored_event_size() -> usize {
    let record = EventRecord {
        persistence_id: "sink-0".into(),
        seq_nr: 1,
        manifest: <Sink as EventSourced>::event_manifest(),
        payload: encode_payload(&event()).expect("encode"),
        writer_id: uuid::Uuid::now_v7(),
        timestamp: now_millis(),
    };
    4 + encode_payload(&record).expect("encode").len()
}

async fn spawn_sinks<J>(system: &ActorSystem, store: Arc<J>) -> Vec<ActorRef<ReplyTo<u64>>>
where
    J: Journal + courier::persistence::SnapshotStore,
{
    (0..ACTORS)
        .map(|i| {
            system
                .spawn(
                    Persistent::props(format!("sink-{i}"), Sink::default).with_store(store.clone()),
                )
                .expect("spawn")
        })
        .collect()
}

async fn persist_all(actors: &[ActorRef<ReplyTo<u64>>]) {
    let tasks: Vec<_> = actors
        .iter()
        .cloned()
        .map(|actor| {
            tokio::spawn(async move {
                for _ in 0..PER_ACTOR {
                    actor
                        .ask(|r| r, Duration::from_secs(30))
                        .await
                        .expect("persist");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

/// Errors (a failed persist stops its actor) go to standard error.
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

fn persist(c: &mut Criterion) {
    logs();
    let rt = runtime();
    let mut group = c.benchmark_group("pg_persist");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(ACTORS * PER_ACTOR));

    group.bench_function(BenchmarkId::new("100_actors", "courier_postgres"), |b| {
        let (system, actors) = rt.block_on(async {
            let store = Arc::new(
                PostgresStore::open(settings(&new_schema("persist")))
                    .await
                    .expect("open"),
            );
            let system = ActorSystem::new("bench");
            let actors = spawn_sinks(&system, store).await;
            (system, actors)
        });
        b.to_async(&rt).iter(|| persist_all(&actors));
        rt.block_on(system.shutdown());
    });

    group.bench_function(
        BenchmarkId::new("100_actors", "raw_tokio_postgres_tx_100"),
        |b| {
            let len = stored_event_size();
            let schema = new_schema("raw");
            let client = rt.block_on(async {
                // The same tables courier creates.
                drop(PostgresStore::open(settings(&schema)).await.expect("open"));
                raw_client().await
            });
            let insert = format!(
                "INSERT INTO {schema}.events (persistence_id, seq_nr, record) \
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[])"
            );
            let highest = format!(
                "INSERT INTO {schema}.journal (persistence_id, highest, deleted_to) \
             SELECT p, h, 0 FROM UNNEST($1::text[], $2::int8[]) AS t(p, h) \
             ON CONFLICT (persistence_id) DO UPDATE SET highest = EXCLUDED.highest"
            );
            let pids: Vec<String> = (0..ACTORS).map(|i| format!("sink-{i}")).collect();
            let record = vec![7u8; len];
            let client = Arc::new(tokio::sync::Mutex::new(client));
            let mut seq = 0i64;
            b.to_async(&rt).iter_custom(|iters| {
                let client = Arc::clone(&client);
                let (insert, highest, pids, record) = (
                    insert.clone(),
                    highest.clone(),
                    pids.clone(),
                    record.clone(),
                );
                let start = seq;
                seq += iters as i64 * PER_ACTOR as i64;
                async move {
                    let mut client = client.lock().await;
                    let started = Instant::now();
                    let mut s = start;
                    for _ in 0..iters * PER_ACTOR {
                        s += 1;
                        let p: Vec<&str> = pids.iter().map(String::as_str).collect();
                        let seqs = vec![s; p.len()];
                        let records: Vec<&[u8]> = vec![record.as_slice(); p.len()];
                        let tx = client.transaction().await.expect("begin");
                        tx.execute(&insert, &[&p, &seqs, &records])
                            .await
                            .expect("insert");
                        tx.execute(&highest, &[&p, &seqs]).await.expect("highest");
                        tx.commit().await.expect("commit");
                    }
                    started.elapsed()
                }
            });
        },
    );

    group.bench_function(BenchmarkId::new("100_actors", "courier_sled"), |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (system, actors) = rt.block_on(async {
            let store = Arc::new(SledStore::open(dir.path()).expect("open"));
            let system = ActorSystem::new("bench");
            let actors = spawn_sinks(&system, store).await;
            (system, actors)
        });
        b.to_async(&rt).iter(|| persist_all(&actors));
        rt.block_on(system.shutdown());
    });
    group.finish();
}

// ---- end-to-end delivery ----

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

async fn pairs(system: &ActorSystem, journal: Arc<dyn Journal>, n: usize) -> Vec<Deliverer<Order>> {
    let mut out = Vec::new();
    for i in 0..n {
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
        let j = Arc::clone(&journal);
        let sender = system
            .spawn(
                Props::new(move || Sender {
                    name: format!("sender-{i}"),
                    journal: Arc::clone(&j),
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

/// The bytes of one outbox entry, measured on an in-memory store (same
/// encoding), and of one inbox record's key.
fn stored_sizes(rt: &tokio::runtime::Runtime) -> (usize, usize) {
    rt.block_on(async {
        let store = Arc::new(MemoryStore::memory().expect("store"));
        let system = ActorSystem::new("sizes");
        let deliverers = pairs(&system, store.clone(), 1).await;
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
        (entry, "sender-0".len() + 1 + 16 + 1 + 8)
    })
}

fn e2e(c: &mut Criterion) {
    let rt = runtime();
    let (entry, inbox_key) = stored_sizes(&rt);
    let mut group = c.benchmark_group("pg_e2e");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    for (senders, per_sender) in [(8usize, 50u64), (64, 10)] {
        let messages = senders as u64 * per_sender;
        group.throughput(Throughput::Elements(messages));
        let label = format!("{senders}_senders");
        group.bench_function(BenchmarkId::new(&label, "courier_postgres"), |b| {
            let (system, deliverers) = rt.block_on(async {
                let store = Arc::new(
                    PostgresStore::open(settings(&new_schema("e2e")))
                        .await
                        .expect("open"),
                );
                let system = ActorSystem::new("bench");
                let deliverers = pairs(&system, store, senders).await;
                (system, deliverers)
            });
            b.to_async(&rt).iter(|| run(&deliverers, per_sender));
            rt.block_on(system.shutdown());
        });
        group.bench_function(
            BenchmarkId::new(&label, format!("raw_tokio_postgres_tx_{senders}")),
            |b| {
                let schema = new_schema("raw_e2e");
                let client = rt.block_on(async {
                    drop(PostgresStore::open(settings(&schema)).await.expect("open"));
                    raw_client().await
                });
                let put = format!(
                    "INSERT INTO {schema}.kv (namespace, key, value) \
                     SELECT * FROM UNNEST($1::text[], $2::bytea[], $3::bytea[]) \
                     ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value"
                );
                let delete = format!(
                    "DELETE FROM {schema}.kv WHERE (namespace, key) IN \
                     (SELECT * FROM UNNEST($1::text[], $2::bytea[]))"
                );
                let client = Arc::new(tokio::sync::Mutex::new(client));
                let mut next = 0u64;
                b.to_async(&rt).iter_custom(|iters| {
                    let client = Arc::clone(&client);
                    let (put, delete) = (put.clone(), delete.clone());
                    let start = next;
                    next += iters * messages;
                    async move {
                        let mut client = client.lock().await;
                        let value = vec![7u8; entry.saturating_sub(8)];
                        let started = Instant::now();
                        let mut n = start;
                        for _ in 0..iters * per_sender {
                            let keys: Vec<Vec<u8>> = (n..n + senders as u64)
                                .map(|k| k.to_be_bytes().to_vec())
                                .collect();
                            let inbox: Vec<Vec<u8>> = keys
                                .iter()
                                .map(|k| {
                                    let mut v = vec![9u8; inbox_key - 8];
                                    v.extend_from_slice(k);
                                    v
                                })
                                .collect();
                            let outbox_ns = vec!["courier.outbox/sender"; senders];
                            let inbox_ns = vec!["courier.inbox/receiver"; senders];
                            let k: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                            let i: Vec<&[u8]> = inbox.iter().map(Vec::as_slice).collect();
                            let values: Vec<&[u8]> = vec![value.as_slice(); senders];
                            let empty: Vec<&[u8]> = vec![&[][..]; senders];
                            // The outbox entries, committed.
                            let tx = client.transaction().await.expect("begin");
                            tx.execute(&put, &[&outbox_ns, &k, &values])
                                .await
                                .expect("put");
                            tx.commit().await.expect("commit");
                            // The inbox records and the confirms, committed.
                            let tx = client.transaction().await.expect("begin");
                            tx.execute(&put, &[&inbox_ns, &i, &empty])
                                .await
                                .expect("inbox");
                            tx.execute(&delete, &[&outbox_ns, &k])
                                .await
                                .expect("delete");
                            tx.commit().await.expect("commit");
                            n += senders as u64;
                        }
                        started.elapsed()
                    }
                });
            },
        );
        group.bench_function(BenchmarkId::new(&label, "courier_sled"), |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (system, deliverers) = rt.block_on(async {
                let store = Arc::new(SledStore::open(dir.path()).expect("open"));
                let system = ActorSystem::new("bench");
                let deliverers = pairs(&system, store, senders).await;
                (system, deliverers)
            });
            b.to_async(&rt).iter(|| run(&deliverers, per_sender));
            rt.block_on(system.shutdown());
        });
    }
    group.finish();
}

criterion_group!(benches, persist, e2e);
criterion_main!(benches);
