//! Wrap any actor: an order desk and a payments actor, written as plain
//! actors with their own enums, made a reliable pair without changing
//! their message types.
//!
//! - The order desk gets an `AtLeastOnce<Charge>` field (named once, from
//!   the config), started in `started`, and calls `deliver` from its
//!   handler.
//! - Payments gets an `ExactlyOnce` field and a `Delivery<Charge>` message
//!   adapter in its props; `process` checks the inbox, writes the charge
//!   record and the inbox record in one atomic write, acks after the
//!   flush, and acks duplicates again. It still answers its own queries.
//!
//! The charges travel through a link that drops, duplicates and reorders
//! them and drops acks; halfway, everything is shut down and started again
//! from the same store. At the end each order's charge record says how
//! many times it was charged.
//!
//! ```text
//! cargo run --features testkit --example wrap_actor -- [--messages N] [--config FILE] [--seed S]
//! ```
//!
//! The last line reads `orders=N charged=N charged_twice=0 queries_answered=Q`;
//! the exit status is non-zero if an order was not charged exactly once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use courier::config::Config;
use courier::delivery::Receipt;
use courier::delivery::testkit::{Faults, FaultyLink};
use courier::persistence::{DurableStore, Journal, WriteBatch};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

const ASK: Duration = Duration::from_secs(30);
/// The namespace of the charge records: order number → times charged.
const CHARGES: &str = "charges";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Charge {
    order: u64,
    cents: u64,
}

// ---- the order desk: a plain actor with its own enum ----

enum DeskMsg {
    Place(u64, ReplyTo<Result<u64, String>>),
    Unconfirmed(ReplyTo<usize>),
}

struct OrderDesk {
    payments: AtLeastOnce<Charge>,
}

impl Actor for OrderDesk {
    type Msg = DeskMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.payments.start(ctx).await?;
        Ok(())
    }

    async fn handle(&mut self, msg: DeskMsg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            DeskMsg::Place(order, reply) => {
                let charge = Charge { order, cents: 250 };
                let sent = self.payments.deliver("/user/link", |_| charge).await;
                reply.reply(sent.map(|id| id.get()).map_err(|e| e.to_string()));
            }
            DeskMsg::Unconfirmed(reply) => reply.reply(self.payments.unconfirmed()),
        }
        Ok(())
    }
}

// ---- payments: a plain actor with its own enum ----

enum PaymentsMsg {
    Charge(Delivery<Charge>),
    /// Charges applied by this incarnation.
    Totals(ReplyTo<u64>),
}

impl From<Delivery<Charge>> for PaymentsMsg {
    fn from(d: Delivery<Charge>) -> Self {
        PaymentsMsg::Charge(d)
    }
}

struct Payments {
    journal: Arc<dyn Journal>,
    inbox: ExactlyOnce,
    charged: u64,
}

impl Actor for Payments {
    type Msg = PaymentsMsg;

    async fn handle(&mut self, msg: PaymentsMsg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            PaymentsMsg::Charge(d) => {
                // How often this order was charged before: a broken dedup
                // would show as a count above one.
                let key = d.message.order.to_be_bytes().to_vec();
                let before = match self.journal.kv_get(CHARGES, &key).await? {
                    Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into()?),
                    None => 0,
                };
                let charge = |_: &Charge| {
                    WriteBatch::new().put(CHARGES, key, (before + 1).to_be_bytes().to_vec())
                };
                if self.inbox.process(&d, charge).await? == Receipt::New {
                    self.charged += 1;
                }
            }
            PaymentsMsg::Totals(reply) => reply.reply(self.charged),
        }
        Ok(())
    }
}

// ---- one run, from a store directory ----

struct Run {
    system: ActorSystem,
    desk: ActorRef<DeskMsg>,
    payments: ActorRef<PaymentsMsg>,
}

fn start(store: &Arc<DurableStore>, config: &Config, seed: u64) -> anyhow::Result<Run> {
    let system = ActorSystem::new("wrap-actor");
    let journal: Arc<dyn Journal> = store.clone();
    let payments = system.spawn(
        Props::new({
            let journal = Arc::clone(&journal);
            move || Payments {
                journal: Arc::clone(&journal),
                inbox: ExactlyOnce::new("payments", Arc::clone(&journal)),
                charged: 0,
            }
        })
        .with_name("payments")
        .with_adapter::<Delivery<Charge>>(),
    )?;
    // The lossy network in front of payments, which it finds by path as an
    // actor that takes deliveries.
    FaultyLink::spawn_for_deliveries(
        &system,
        "link",
        system.lookup::<Delivery<Charge>>("/user/payments")?,
        Faults::seeded(seed)
            .drop(0.1)
            .duplicate(0.1)
            .reorder(0.1, Duration::from_millis(20)),
        Faults::seeded(seed.wrapping_add(1)).drop(0.1),
    )?;
    let out = config.at_least_once::<Charge>("order-desk", journal);
    let desk = system.spawn(
        Props::new(move || OrderDesk {
            payments: out.clone(),
        })
        .with_name("order-desk"),
    )?;
    config.warn_unused_overrides();
    Ok(Run {
        system,
        desk,
        payments,
    })
}

impl Run {
    /// Places `orders`, waiting out back-pressure; asks payments for its
    /// totals every 50 orders. Returns the queries answered.
    async fn place(&self, orders: std::ops::RangeInclusive<u64>) -> anyhow::Result<u64> {
        let mut answered = 0;
        for order in orders {
            while let Err(full) = self.desk.ask(|r| DeskMsg::Place(order, r), ASK).await? {
                tracing::debug!(%full, "back-pressure");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if order % 50 == 0 {
                self.payments.ask(PaymentsMsg::Totals, ASK).await?;
                answered += 1;
            }
        }
        Ok(answered)
    }

    /// Waits until every charge is confirmed; returns the queries answered
    /// meanwhile.
    async fn drain(&self, limit: Duration) -> anyhow::Result<u64> {
        let started = Instant::now();
        let mut answered = 0;
        loop {
            let unconfirmed = self.desk.ask(DeskMsg::Unconfirmed, ASK).await?;
            let charged = self.payments.ask(PaymentsMsg::Totals, ASK).await?;
            answered += 1;
            if unconfirmed == 0 {
                println!("  all confirmed; payments charged {charged} in this run");
                return Ok(answered);
            }
            if started.elapsed() > limit {
                bail!("{unconfirmed} charges still unconfirmed after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Opens the configured store; a store just closed in this process may still be
/// releasing its lock for a moment, so retry briefly.
async fn open(config: &Config, path: &Path) -> anyhow::Result<Arc<DurableStore>> {
    let mut settings = config.persistence.clone();
    settings.path = path.to_owned();
    let mut tries = 0;
    loop {
        match settings.open() {
            Ok(store) => return Ok(Arc::new(store)),
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        }
    }
}

/// An order desk and a payments actor, each a plain actor with its own
/// enum, made reliable: charges through a lossy link and a restart, each
/// charged exactly once.
///
/// The last line of standard output reads
/// `orders=N charged=N charged_twice=0 queries_answered=Q`.
#[derive(Parser)]
#[command(name = "wrap_actor", after_help = LOGS_HELP)]
struct Args {
    /// How many orders to place.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(2..))]
    messages: u64,
    /// The TOML configuration file; the store lives in
    /// `<persistence.path>/wrap-actor`, cleared at the start.
    #[arg(long, value_name = "FILE")]
    #[arg(default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/courier.toml"))]
    config: PathBuf,
    /// Seed of the lossy link [default: from the clock, printed first].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

#[path = "support/logging.rs"]
mod logging;

const LOGS_HELP: &str = "Logs go to standard error, warnings and errors by default; \
set RUST_LOG to see more, e.g. RUST_LOG=courier_delivery=debug.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init_tracing()?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let config = Config::from_file(&args.config)?;
    let path = config.persistence.path.join("wrap-actor");
    if path.exists() {
        std::fs::remove_dir_all(&path).with_context(|| format!("clearing {}", path.display()))?;
    }
    println!(
        "placing {} orders; store {}; seed {seed}",
        args.messages,
        path.display()
    );
    let half = args.messages / 2;

    println!("first half: orders 1..={half}, then a restart");
    let store = open(&config, &path).await?;
    let run = start(&store, &config, seed)?;
    let mut answered = run.place(1..=half).await?;
    let unconfirmed = run.desk.ask(DeskMsg::Unconfirmed, ASK).await?;
    println!("  {unconfirmed} charges unconfirmed at the restart");
    run.system.shutdown().await;
    drop(store);

    println!("second half: orders {}..={}", half + 1, args.messages);
    let store = open(&config, &path).await?;
    let run = start(&store, &config, seed.wrapping_add(2))?;
    answered += run.place(half + 1..=args.messages).await?;
    answered += run.drain(Duration::from_secs(300)).await?;
    run.system.shutdown().await;

    // The durable truth: one record per order charged, with its count.
    let (mut charged, mut twice, mut after) = (0u64, 0u64, None);
    loop {
        let page = store.kv_scan(CHARGES, after.as_deref(), 1024).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, times) in &page {
            charged += 1;
            if u64::from_be_bytes(times.as_slice().try_into()?) > 1 {
                twice += 1;
            }
        }
    }
    drop(store);
    println!(
        "orders={} charged={charged} charged_twice={twice} queries_answered={answered}",
        args.messages
    );
    if charged != args.messages || twice > 0 {
        bail!("an order was not charged exactly once");
    }
    Ok(())
}
