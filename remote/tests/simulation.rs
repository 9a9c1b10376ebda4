//! Deterministic simulations (turmoil): the same node code, with the same
//! delivery adapters, over a simulated network that partitions, holds and
//! releases the link, and bounces (crashes and restarts) either node. Each
//! node keeps its store across bounces (an engine shared outside the
//! simulated host, as a disk would be). For each seed: nothing is lost, no
//! effect is applied twice, and the outbox drains once the faults stop.
//!
//! `COURIER_SIM_SEEDS=<n>` changes the number of seeds (default 50);
//! `COURIER_SIM_SEED=<s>` runs one.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::{
    DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery, SenderSignal,
};
use courier::persistence::{Journal, MemoryEngine, Store, WriteBatch};
use courier::prelude::*;
use courier::remote::{Node, Registry, RemoteSettings, Transport};
use serde::{Deserialize, Serialize};

const SECRET: &str = "simulated shared secret";
const PORT: u16 = 7000;
const ORDERS: u64 = 30;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order(u64);

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Delivery<Order>>("sim.Delivery<Order>/1")
        .expect("register")
        .register::<SenderSignal>("courier.SenderSignal/1")
        .expect("register");
    registry
}

/// The node's network inside the simulation.
async fn transport(host: &str) -> Transport {
    let listener = turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
        .await
        .expect("bind");
    let incoming = futures_stream(listener);
    let address = SocketAddr::new(turmoil::lookup(host), PORT);
    Transport::new(address, incoming, |to: String| async move {
        turmoil::net::TcpStream::connect(to).await
    })
}

/// Accepted connections as a stream.
fn futures_stream(
    listener: turmoil::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<turmoil::net::TcpStream>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            if tx.send(accepted).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

struct Ledger {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
}

impl Actor for Ledger {
    type Msg = Delivery<Order>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "ledger").await?);
        Ok(())
    }

    async fn handle(
        &mut self,
        d: Delivery<Order>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        if inbox.check(&d) == Receipt::Duplicate {
            d.send_ack();
            return Ok(());
        }
        let mut key = d.message.0.to_be_bytes().to_vec();
        key.extend_from_slice(&d.attempt.to_be_bytes());
        key.extend_from_slice(d.sender.incarnation.as_bytes());
        key.extend_from_slice(&uuid::Uuid::now_v7().as_bytes()[..]);
        let mut batch = WriteBatch::new().put("applied", key, Vec::new());
        batch.extend(inbox.record(&d));
        self.journal.write(batch).await?;
        d.send_ack();
        Ok(())
    }
}

struct Shop {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<Order>>,
}

impl Actor for Shop {
    type Msg = ReplyTo<Deliverer<Order>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(500),
            },
            ..OutboxSettings::default()
        };
        self.out = Some(Deliverer::start(ctx, "shop", Arc::clone(&self.journal), settings).await?);
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

fn settings(node: &str) -> RemoteSettings {
    let mut settings = RemoteSettings::new(node, SECRET);
    settings.reconnect_min = Duration::from_millis(50);
    settings.reconnect_max = Duration::from_secs(1);
    settings
}

fn store(engine: &Arc<MemoryEngine>) -> Arc<dyn Journal> {
    Arc::new(Store::with_engine(Arc::clone(engine)).expect("store"))
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What one simulation did.
struct Outcome {
    /// Order number → applications, from the receiver's store.
    counts: BTreeMap<u64, u32>,
    /// Whether both nodes were bounced before the outbox drained.
    bounced_both: bool,
}

/// One simulation.
fn simulate(seed: u64) -> Outcome {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(600))
        .rng_seed(seed)
        .build();
    let receiver_engine = Arc::new(MemoryEngine::new());
    let sender_engine = Arc::new(MemoryEngine::new());
    let drained = Arc::new(AtomicBool::new(false));

    let engine = Arc::clone(&receiver_engine);
    sim.host("receiver", move || {
        let engine = Arc::clone(&engine);
        async move {
            let system = ActorSystem::new("receiver");
            let journal = store(&engine);
            system
                .spawn(
                    Props::new(move || Ledger {
                        journal: Arc::clone(&journal),
                        inbox: None,
                    })
                    .with_name("ledger"),
                )
                .expect("spawn ledger");
            let _node = Node::start_with(
                &system,
                settings("receiver"),
                registry(),
                transport("receiver").await,
            )
            .await
            .expect("receiver node");
            std::future::pending::<()>().await;
            Ok(())
        }
    });

    let (engine, done) = (Arc::clone(&sender_engine), Arc::clone(&drained));
    sim.host("sender", move || {
        let (engine, done) = (Arc::clone(&engine), Arc::clone(&done));
        async move {
            let system = ActorSystem::new("sender");
            let node = Node::start_with(
                &system,
                settings("sender"),
                registry(),
                transport("sender").await,
            )
            .await
            .expect("sender node");
            let journal = store(&engine);
            let shop = system
                .spawn(
                    Props::new(move || Shop {
                        journal: Arc::clone(&journal),
                        out: None,
                    })
                    .with_name("shop"),
                )
                .expect("spawn shop");
            let out = shop
                .ask(|r| r, Duration::from_secs(10))
                .await
                .expect("deliverer");
            let destination = format!(
                "courier://receiver@{}/user/ledger",
                SocketAddr::new(turmoil::lookup("receiver"), PORT)
            );
            let _node = node;
            while out.next_id().get() <= ORDERS {
                out.deliver(&destination, |id| Order(id.get()))
                    .await
                    .expect("deliver");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            while out.unconfirmed() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            done.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        }
    });

    // The faults, from the seed: partitions and held links for the first
    // seconds, then a healed network.
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9).max(1));
    let schedule: Vec<(u64, u64, u64)> = (0..6)
        .map(|_| (rng.below(4), 100 + rng.below(900), 50 + rng.below(1500)))
        .collect();
    // Both within the time the sender needs for its orders (~3 s).
    let bounce_receiver_at = Duration::from_millis(300 + rng.below(2500));
    let bounce_sender_at = Duration::from_millis(300 + rng.below(2500));
    sim.client("chaos", async move {
        for (kind, before, during) in schedule {
            tokio::time::sleep(Duration::from_millis(before)).await;
            match kind {
                0 | 1 => {
                    turmoil::partition("sender", "receiver");
                    tokio::time::sleep(Duration::from_millis(during)).await;
                    turmoil::repair("sender", "receiver");
                }
                2 => {
                    turmoil::hold("sender", "receiver");
                    tokio::time::sleep(Duration::from_millis(during)).await;
                    turmoil::release("sender", "receiver");
                }
                _ => {}
            }
        }
        Ok(())
    });

    let (mut receiver_bounced, mut sender_bounced) = (false, false);
    while !drained.load(Ordering::SeqCst) {
        let elapsed = sim.elapsed();
        if !receiver_bounced && elapsed >= bounce_receiver_at {
            sim.bounce("receiver");
            receiver_bounced = true;
        }
        if !sender_bounced && elapsed >= bounce_sender_at {
            sim.bounce("sender");
            sender_bounced = true;
        }
        sim.step()
            .unwrap_or_else(|e| panic!("seed {seed}: simulation failed: {e}"));
    }
    Outcome {
        counts: ledger(&receiver_engine),
        bounced_both: receiver_bounced && sender_bounced,
    }
}

/// Order number → applications, read from the receiver's store.
fn ledger(engine: &Arc<MemoryEngine>) -> BTreeMap<u64, u32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let journal = store(engine);
        let mut counts = BTreeMap::new();
        for (key, _) in journal
            .kv_scan("applied", None, 100_000)
            .await
            .expect("scan")
        {
            let n: [u8; 8] = key[..8].try_into().expect("key");
            *counts.entry(u64::from_be_bytes(n)).or_insert(0) += 1;
        }
        counts
    })
}

#[test]
fn nothing_lost_nothing_applied_twice_over_partitions_holds_and_bounces() {
    let seeds: Vec<u64> = match std::env::var("COURIER_SIM_SEED") {
        Ok(one) => vec![one.parse().expect("COURIER_SIM_SEED")],
        Err(_) => {
            let n: u64 = std::env::var("COURIER_SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(50);
            (1..=n).collect()
        }
    };
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut bounced = 0;
    let total = seeds.len();
    for seed in seeds {
        let Outcome {
            counts,
            bounced_both,
        } = simulate(seed);
        bounced += usize::from(bounced_both);
        let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
        let missing: Vec<u64> = (1..=ORDERS).filter(|n| !counts.contains_key(n)).collect();
        if !twice.is_empty() || !missing.is_empty() || counts.len() as u64 != ORDERS {
            failures.lock().expect("lock").push(format!(
                "seed {seed} (COURIER_SIM_SEED={seed}): applied twice {twice:?}, missing {missing:?}"
            ));
        }
    }
    let failures = failures.lock().expect("lock");
    assert!(failures.is_empty(), "{failures:#?}");
    // The faults must have hit the work, or the test proves nothing.
    assert!(
        bounced * 2 >= total,
        "only {bounced} of {total} runs bounced both nodes mid-way"
    );
}
