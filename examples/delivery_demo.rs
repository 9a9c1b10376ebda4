//! courier's main job: orders delivered at least once, applied exactly once.
//!
//! An event-sourced order desk places N orders. Each order is an event, and
//! its delivery's outbox entry commits in the same atomic, flushed write.
//! The deliveries travel to an event-sourced warehouse through a link that
//! drops, duplicates and reorders messages and drops acks. The warehouse
//! deduplicates by (sender, incarnation, delivery id); its inbox record
//! commits with its event, and only then is the delivery acked. Both keep
//! their own command enums: the desk's outbox is an `AtLeastOnce` field,
//! the warehouse takes deliveries through a `Delivery<Order>` message
//! adapter and answers a query for its totals.
//!
//! Halfway through, both actors and the store are shut down and everything
//! is started again from the same store directory, with deliveries still
//! unconfirmed. At the end the warehouse's durable state is checked with a
//! `History`: every order placed is applied exactly once.
//!
//! ```text
//! cargo run --release --features testkit --example delivery_demo -- \
//!     [--messages N] [--config FILE] [--seed S] [--engine sled|fjall]
//! ```
//!
//! `--engine fjall` (or `engine = "fjall"` in the file's `[persistence]`)
//! runs on the fjall engine; build with `--features testkit,fjall`.
//!
//! `--help` lists the options. Logs go to standard error (warnings and
//! errors unless `RUST_LOG` says otherwise, e.g.
//! `RUST_LOG=courier_delivery=debug`), so standard output stays the report.
//!
//! Settings come from the TOML file (default `examples/courier.toml`); the
//! store lives in `<persistence.path>/delivery-demo`, cleared at the start.
//! The last line reads
//! `sent=N processed=N duplicates_suppressed=D redelivered=R lost=0`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use courier::config::Config;
use courier::delivery::testkit::{Faults, FaultyLink, History, LinkStats};
use courier::delivery::{Deliverer, Error, Receipt};
use courier::persistence::{DurableStore, Journal, Persistence, Snapshots};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

const SENDER: &str = "orders";
const RECEIVER: &str = "warehouse";
const ASK: Duration = Duration::from_secs(30);

/// What travels: one order.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    number: u64,
    item: String,
}

// ---- the sender: an event-sourced order desk ----

#[derive(Serialize, Deserialize)]
struct Placed {
    number: u64,
    delivery: u64,
}

struct OrderDesk {
    /// The outbox, named once ("orders", from the config).
    out: AtLeastOnce<Order>,
    placed: u64,
}

enum DeskCmd {
    /// Place an order; the reply comes once it is durable (or says why not).
    Place(u64, ReplyTo<Result<u64, String>>),
    /// The deliverer, to watch its progress.
    Outbox(ReplyTo<Deliverer<Order>>),
}

impl EventSourced for OrderDesk {
    type Command = DeskCmd;
    type Event = Placed;

    async fn handle_command(&mut self, cmd: DeskCmd, _ctx: &mut Ctx<Self>) -> Handled<Self> {
        Ok(match cmd {
            DeskCmd::Place(number, reply) => {
                let order = Order {
                    number,
                    item: format!("item-{}", number % 97),
                };
                match self.out.prepare("/user/link", |_| order) {
                    Ok(prepared) => {
                        let delivery = prepared.id().get();
                        // One atomic write: the event and the outbox entry;
                        // sent once it is durable.
                        Effect::persist(Placed { number, delivery })
                            .and_deliver(prepared)
                            .reply(reply, move |_: &Self| Ok(delivery))
                    }
                    // Back-pressure: nothing accepted, the caller retries.
                    Err(e @ Error::OutboxFull { .. }) => {
                        reply.reply(Err(e.to_string()));
                        Effect::none()
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            DeskCmd::Outbox(reply) => {
                reply.reply(self.out.deliverer()?);
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, _: Placed) {
        self.placed += 1;
    }

    async fn recovery_completed(&mut self, ctx: &mut Ctx<Self>) -> Result<(), BoxError> {
        let out = self.out.start(ctx).await?;
        println!(
            "  order desk recovered: {} orders placed so far, {} unconfirmed (sent again first)",
            self.placed,
            out.unconfirmed()
        );
        Ok(())
    }
}

impl Snapshots for OrderDesk {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.placed
    }

    fn apply_snapshot(&mut self, placed: u64) {
        self.placed = placed;
    }
}

// ---- the receiver: an event-sourced warehouse with a dedup inbox ----

struct Warehouse {
    inbox: ExactlyOnce,
    /// Order number → how many times it was applied: a broken dedup would
    /// show as a count above one rather than vanish into a set.
    applied: BTreeMap<u64, u64>,
    /// Duplicates suppressed by this incarnation (transient).
    duplicates: u64,
}

/// What the warehouse tells about itself.
struct Totals {
    applied: BTreeMap<u64, u64>,
    duplicates: u64,
}

/// The warehouse's own commands; deliveries reach it through a
/// `Delivery<Order>` adapter under its path (see its props).
enum WarehouseCmd {
    Deliver(Delivery<Order>),
    Totals(ReplyTo<Totals>),
}

impl From<Delivery<Order>> for WarehouseCmd {
    fn from(d: Delivery<Order>) -> Self {
        WarehouseCmd::Deliver(d)
    }
}

impl EventSourced for Warehouse {
    type Command = WarehouseCmd;
    type Event = Order;

    async fn handle_command(&mut self, cmd: WarehouseCmd, _ctx: &mut Ctx<Self>) -> Handled<Self> {
        Ok(match cmd {
            WarehouseCmd::Deliver(d) => {
                if self.inbox.open().await?.check(&d) == Receipt::Duplicate {
                    self.duplicates += 1;
                }
                // A duplicate is acked again; a new order and its inbox
                // record commit in one write, acked after it.
                self.inbox
                    .effect(&d, |order| Effect::persist(order.clone()))
                    .await?
            }
            WarehouseCmd::Totals(reply) => {
                reply.reply(Totals {
                    applied: self.applied.clone(),
                    duplicates: self.duplicates,
                });
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, order: Order) {
        *self.applied.entry(order.number).or_insert(0) += 1;
    }

    async fn recovery_completed(&mut self, _ctx: &mut Ctx<Self>) -> Result<(), BoxError> {
        self.inbox.open().await?;
        println!(
            "  warehouse recovered: {} orders applied so far",
            self.applied.len()
        );
        Ok(())
    }
}

impl Snapshots for Warehouse {
    type Snapshot = BTreeMap<u64, u64>;

    fn to_snapshot(&self) -> BTreeMap<u64, u64> {
        self.applied.clone()
    }

    fn apply_snapshot(&mut self, applied: BTreeMap<u64, u64>) {
        self.applied = applied;
    }
}

// ---- one run of the system, from a store directory ----

struct Node {
    system: ActorSystem,
    desk: ActorRef<DeskCmd>,
    warehouse: ActorRef<WarehouseCmd>,
    link: LinkStats,
    acks: LinkStats,
}

fn start(store: &Arc<DurableStore>, config: &Config, seed: u64) -> anyhow::Result<Node> {
    let system = ActorSystem::new("delivery-demo");
    // The journal and snapshot store of every persistent actor below.
    Persistence::of(&system).set_store(Arc::clone(store));
    let journal: Arc<dyn Journal> = store.clone();
    let inbox = ExactlyOnce::new(RECEIVER, Arc::clone(&journal));
    let make = move || Warehouse {
        inbox: inbox.clone(),
        applied: BTreeMap::new(),
        duplicates: 0,
    };
    // Snapshot settings from `[snapshots.actor.warehouse]`, else `[snapshots]`.
    let warehouse = system.spawn(
        config
            .persistent_props(RECEIVER, make)
            .with_name(RECEIVER)
            .with_adapter::<Delivery<Order>>(),
    )?;
    // The warehouse, found by path as an actor that takes deliveries.
    let dock = system.lookup::<Delivery<Order>>(&format!("/user/{RECEIVER}"))?;
    // The unreliable network between them.
    let (_, link, acks) = FaultyLink::spawn_for_deliveries(
        &system,
        "link",
        dock,
        Faults::seeded(seed)
            .drop(0.05)
            .duplicate(0.05)
            .reorder(0.05, Duration::from_millis(20)),
        Faults::seeded(seed.wrapping_add(1)).drop(0.05),
    )?;
    let out = config.at_least_once::<Order>(SENDER, journal);
    let make = move || OrderDesk {
        out: out.clone(),
        placed: 0,
    };
    let desk = system.spawn(config.persistent_props(SENDER, make).with_name(SENDER))?;
    Ok(Node {
        system,
        desk,
        warehouse,
        link,
        acks,
    })
}

impl Node {
    /// Places orders `numbers`, waiting out back-pressure, and records each
    /// accepted one as sent.
    async fn place(
        &self,
        numbers: std::ops::RangeInclusive<u64>,
        history: &mut History<u64>,
    ) -> anyhow::Result<u64> {
        let mut waits = 0;
        for number in numbers {
            loop {
                match self.desk.ask(|r| DeskCmd::Place(number, r), ASK).await? {
                    Ok(_) => {
                        history.sent(number);
                        break;
                    }
                    Err(full) => {
                        waits += 1;
                        if waits % 500 == 1 {
                            println!("  back-pressure: {full}");
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }
        Ok(waits)
    }

    async fn outbox(&self) -> anyhow::Result<Deliverer<Order>> {
        Ok(self.desk.ask(DeskCmd::Outbox, ASK).await?)
    }

    /// Waits until every delivery is confirmed.
    async fn drain(&self, limit: Duration) -> anyhow::Result<()> {
        let out = self.outbox().await?;
        let started = Instant::now();
        while out.unconfirmed() > 0 {
            if started.elapsed() > limit {
                bail!(
                    "{} deliveries still unconfirmed after {limit:?}",
                    out.unconfirmed()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops everything; returns this run's redelivery and suppressed
    /// duplicate counts.
    async fn stop(self) -> anyhow::Result<(u64, u64)> {
        let redelivered = self.outbox().await?.redelivered();
        let duplicates = self
            .warehouse
            .ask(WarehouseCmd::Totals, ASK)
            .await?
            .duplicates;
        println!(
            "  link: {} deliveries in, {} dropped, {} duplicated, {} reordered; acks: {} in, {} dropped",
            self.link.received(),
            self.link.dropped(),
            self.link.duplicated(),
            self.link.reordered(),
            self.acks.received(),
            self.acks.dropped()
        );
        self.system.shutdown().await;
        Ok((redelivered, duplicates))
    }
}

/// Opens the store on the configured engine. A store just closed in this
/// process may still be releasing its file lock for a moment, so retry
/// briefly.
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

/// courier's main job: orders delivered at least once through a link that
/// drops, duplicates and reorders, with a restart halfway, and applied
/// exactly once.
///
/// The last line of standard output reads
/// `sent=N processed=N duplicates_suppressed=D redelivered=R lost=0`; the
/// exit status is non-zero if any order was lost or applied twice.
#[derive(Parser)]
#[command(name = "delivery_demo", after_help = LOGS_HELP)]
struct Args {
    /// How many orders to place.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// The TOML configuration file; the store lives in
    /// `<persistence.path>/delivery-demo`, cleared at the start.
    #[arg(long, value_name = "FILE")]
    #[arg(default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/courier.toml"))]
    config: PathBuf,
    /// Seed of the faulty link, to replay a run [default: from the clock,
    /// printed on the first line].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// The storage engine, `sled` or `fjall` (which needs the `fjall`
    /// feature) [default: the file's `persistence.engine`].
    #[arg(long, value_name = "ENGINE")]
    engine: Option<courier::config::EngineKind>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` while the demo
    /// runs, e.g. `--metrics 127.0.0.1:9000` (docs/operations.md lists
    /// them).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
}

#[path = "support/logging.rs"]
mod logging;
#[path = "support/metrics.rs"]
mod metrics;

const LOGS_HELP: &str = "Logs go to standard error, warnings and errors by default; \
set RUST_LOG to see more, e.g. RUST_LOG=courier_delivery=debug,courier_persistence=info.";

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init_tracing()?;
    if let Some(addr) = args.metrics {
        metrics::serve(addr)?;
        println!("metrics at http://{addr}/metrics");
    }
    let seed = args.seed.unwrap_or_else(clock_seed);
    let mut config = Config::from_file(&args.config)?;
    if let Some(engine) = args.engine {
        config.persistence.engine = engine;
    }
    let path = config.persistence.path.join("delivery-demo");
    if path.exists() {
        std::fs::remove_dir_all(&path).with_context(|| format!("clearing {}", path.display()))?;
    }
    println!(
        "delivering {} orders; config {}; engine {}; store {}; seed {}",
        args.messages,
        args.config.display(),
        config.persistence.engine,
        path.display(),
        seed
    );
    let started = Instant::now();
    let half = args.messages / 2;
    let mut history = History::new();

    println!("first half: orders 1..={half}");
    let store = open(&config, &path).await?;
    let node = start(&store, &config, seed)?;
    node.place(1..=half, &mut history).await?;
    let unconfirmed = node.outbox().await?.unconfirmed();
    println!("  placed {half}; {unconfirmed} still unconfirmed; restarting both sides");
    let (mut redelivered, mut duplicates) = node.stop().await?;
    drop(store);

    println!("second half: orders {}..={}", half + 1, args.messages);
    let store = open(&config, &path).await?;
    let node = start(&store, &config, seed.wrapping_add(2))?;
    node.place(half + 1..=args.messages, &mut history).await?;
    node.drain(Duration::from_secs(300)).await?;
    for (number, times) in node.warehouse.ask(WarehouseCmd::Totals, ASK).await?.applied {
        for _ in 0..times {
            history.applied(number);
        }
    }
    let sent = store.highest_seq_nr(SENDER).await?;
    let (more_redelivered, more_duplicates) = node.stop().await?;
    redelivered += more_redelivered;
    duplicates += more_duplicates;
    drop(store);

    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    let report = history.check();
    let (processed, lost) = (report.applied, report.lost.len());
    println!(
        "sent={sent} processed={processed} duplicates_suppressed={duplicates} redelivered={redelivered} lost={lost}"
    );
    if !report.is_clean() || sent != args.messages {
        bail!("delivery broke its promise: {report}; {sent} orders in the desk's journal");
    }
    Ok(())
}
