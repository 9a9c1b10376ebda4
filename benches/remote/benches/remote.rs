//! Remote benchmarks, each against its limit in the same run:
//!
//! - `remote/tell`: node A tells (`send`, which waits for room) 20,000
//!   messages of about 200 bytes to an actor on node B over loopback, until
//!   all have arrived, in plaintext (`courier`, shared secret) and over
//!   mutual TLS (`courier_tls`); the limits are a bare tonic stream on the
//!   same protocol carrying the same envelopes in batches of 250, with
//!   nothing done on arrival but counting, in plaintext
//!   (`bare_tonic_stream`) and over the same mutual TLS
//!   (`bare_tls_stream`);
//! - `remote/ask`: sequential asks across the two nodes (round trip);
//! - `delivery/…`: at-least-once delivery, one sender awaiting each
//!   `deliver`, between two nodes (each with its own sled store; plaintext
//!   and TLS) and, in the same run, within one process on one store.
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
use courier::remote::{Node, Registry, RemoteSettings, TlsSettings};
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
    start(name, RemoteSettings::new(name, SECRET)).await
}

async fn tls_node(name: &str, ca: &Ca) -> (ActorSystem, Node) {
    let (cert, key) = ca.cert(name);
    let tls = TlsSettings::from_pem(cert, key, ca.pem.clone());
    start(name, RemoteSettings::with_tls(name, tls)).await
}

async fn start(name: &str, settings: RemoteSettings) -> (ActorSystem, Node) {
    let system = ActorSystem::new(name);
    let node = Node::start(&system, settings, registry())
        .await
        .expect("node");
    (system, node)
}

/// A throwaway CA for the TLS benches.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
    der: rustls_pki_types::CertificateDer<'static>,
}

impl Ca {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bench CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA");
        Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate naming `name`, and its key, in PEM.
    fn cert(&self, name: &str) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    /// Mutual TLS 1.3 configurations for the bare stream, as the node
    /// builds them: the server requires a client certificate from this CA.
    fn rustls(
        &self,
    ) -> (
        Arc<tokio_rustls::rustls::ServerConfig>,
        Arc<tokio_rustls::rustls::ClientConfig>,
    ) {
        use rustls_pki_types::pem::PemObject;
        use tokio_rustls::rustls;
        let chain = |pem: &str| {
            rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("pem")
        };
        let key = |pem: &str| {
            rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).expect("key")
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("root");
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (server_cert, server_key) = self.cert("bare");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&roots),
            Arc::clone(&provider),
        )
        .build()
        .expect("verifier");
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain(&server_cert), key(&server_key))
            .expect("server config");
        server.alpn_protocols = vec![b"h2".to_vec()];
        let (client_cert, client_key) = self.cert("client");
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain(&client_cert), key(&client_key))
            .expect("client config");
        client.alpn_protocols = vec![b"h2".to_vec()];
        (Arc::new(server), Arc::new(client))
    }
}

/// Two nodes, the second running a counting actor and an answering one,
/// and a reference from the first to the counter.
async fn pair(
    a: (ActorSystem, Node),
    b: (ActorSystem, Node),
) -> (
    (ActorSystem, Node),
    (ActorSystem, Node),
    Arc<AtomicU64>,
    ActorRef<Charge>,
) {
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    b.0.spawn(
        Props::new(move || Count {
            seen: Arc::clone(&s),
        })
        .with_name("count"),
    )
    .expect("spawn");
    b.0.spawn(Props::new(|| Answer).with_name("answer"))
        .expect("spawn");
    let target =
        a.0.lookup::<Charge>(&b.1.path_of("/user/count"))
            .expect("lookup");
    (a, b, seen, target)
}

const TELLS: u64 = 20_000;

fn bench_tell(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    label: &str,
    seen: &Arc<AtomicU64>,
    target: &ActorRef<Charge>,
) {
    group.bench_function(BenchmarkId::new("tell", label), |bench| {
        bench.to_async(rt).iter_custom(|iters| {
            let (seen, target) = (Arc::clone(seen), target.clone());
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
}

fn bench_bare(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    label: &str,
    server: &courier_bench_remote::BareServer,
    client: &courier_bench_remote::BareClient,
) {
    let payload = courier::codec::encode(&charge(1), courier::codec::MAX_LEN).expect("encode");
    group.bench_function(BenchmarkId::new("tell", label), |bench| {
        bench.to_async(rt).iter_custom(|iters| {
            let received = Arc::clone(&server.received);
            let payload = payload.clone();
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
    });
}

fn remote(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("remote");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));

    group.throughput(Throughput::Elements(TELLS));
    let ca = Ca::new();
    let (a, b, seen, target) = rt.block_on(async { pair(node("a").await, node("b").await).await });
    let (tc, td, tls_seen, tls_target) =
        rt.block_on(async { pair(tls_node("c", &ca).await, tls_node("d", &ca).await).await });
    bench_tell(&mut group, &rt, "courier", &seen, &target);
    bench_tell(&mut group, &rt, "courier_tls", &tls_seen, &tls_target);
    let (server, client) = rt.block_on(async {
        let server = courier_bench_remote::serve().await.expect("serve");
        let client = courier_bench_remote::BareClient::connect(server.address)
            .await
            .expect("connect");
        (server, client)
    });
    bench_bare(&mut group, &rt, "bare_tonic_stream", &server, &client);
    drop((client, server));
    let (server_tls, client_tls) = ca.rustls();
    let (server, client) = rt.block_on(async {
        let server = courier_bench_remote::serve_tls(server_tls)
            .await
            .expect("serve");
        let client =
            courier_bench_remote::BareClient::connect_tls(server.address, client_tls, "bare")
                .await
                .expect("connect");
        (server, client)
    });
    bench_bare(&mut group, &rt, "bare_tls_stream", &server, &client);
    drop((client, server));

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
    for (across, tls) in [(false, false), (true, false), (true, true)] {
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
            let name = match (across, tls) {
                (false, _) => "local-receiver",
                (true, false) => "remote-receiver",
                (true, true) => "tls-receiver",
            };
            let (ssys, rsys, destination) = match (across, tls) {
                (false, _) => (&a.0, &a.0, format!("/user/{name}")),
                (true, false) => (&a.0, &b.0, b.1.path_of(&format!("/user/{name}"))),
                (true, true) => (&tc.0, &td.0, td.1.path_of(&format!("/user/{name}"))),
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
            let sender_name = match (across, tls) {
                (false, _) => "sender-local",
                (true, false) => "sender-remote",
                (true, true) => "sender-tls",
            };
            let sender = ssys
                .spawn(
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
        let label = match (across, tls) {
            (false, _) => "one_process",
            (true, false) => "between_nodes",
            (true, true) => "between_nodes_tls",
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
        for (system, node) in [a, b, tc, td] {
            node.shutdown().await;
            system.shutdown().await;
        }
    });
}

criterion_group!(benches, remote);
criterion_main!(benches);
