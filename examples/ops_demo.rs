//! A running service with something stuck, for the operator: the live
//! runbook of docs/operations.md runs against it, in CI.
//!
//! An order desk delivers each order to a warehouse (sender `orders`) and
//! its invoice to billing (sender `invoices`), both at least once, both
//! receivers deduplicating through their inboxes. Two things go wrong:
//!
//! - **A poison message.** Order 7's item is `poison`: the warehouse fails
//!   on it every time, so after `max_attempts` (from the config) it is
//!   parked.
//! - **A destination that is down.** Billing starts only after
//!   `--billing-after`; the invoices sent before run out of attempts and
//!   park. Once billing is up they stay parked until an operator requeues
//!   them (`courier parked requeue --sender invoices --all`).
//!
//! The process serves the admin endpoint on its gRPC listener over mutual
//! TLS, with a throwaway CA and certificates generated into `--certs DIR`:
//! `ca.crt`, `ops.crt`/`ops.key` (the node), `operator.crt`/`.key` (allowed
//! to repair by the config's `[admin] repair`) and `reader.crt`/`.key`
//! (read-only). It prints `admin at courier://ops@HOST:PORT`, then writes
//! `DIR/env` (`COURIER_NODE`, `COURIER_CERT`, `COURIER_KEY`, `COURIER_CA`
//! for the operator) for `source`, so that `courier inspect` and the rest
//! ask this process:
//!
//! ```text
//! cargo run --features admin --example ops_demo -- --certs /tmp/ops &
//! set -a; . /tmp/ops/env; set +a
//! courier inspect
//! ```
//!
//! It runs until SIGTERM or Ctrl-C (or `--run-for`), then prints, last,
//! `orders=N applied=A invoices=N billed=B billed_twice=0 pending=P parked=Q`
//! and exits non-zero if anything was applied twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use courier::admin::AdminService;
use courier::config::Config;
use courier::delivery::Deliverer;
use courier::persistence::{Journal, WriteBatch};
use courier::prelude::*;
use courier::remote::{Node, Registry, RemoteSettings, TlsSettings, Transport};
use serde::{Deserialize, Serialize};

const ASK: Duration = Duration::from_secs(10);
/// The order the warehouse can never take.
const POISON: u64 = 7;
/// The namespaces of the receivers' effects: key → times applied.
const PICKED: &str = "picked";
const BILLED: &str = "billed";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    number: u64,
    item: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Invoice {
    order: u64,
    cents: u64,
}

// ---- the order desk: two outboxes, named once each ----

enum DeskMsg {
    Place(u64, ReplyTo<Result<(), String>>),
    Outboxes(ReplyTo<(Deliverer<Order>, Deliverer<Invoice>)>),
}

struct Desk {
    warehouse: AtLeastOnce<Order>,
    billing: AtLeastOnce<Invoice>,
}

impl Actor for Desk {
    type Msg = DeskMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.warehouse.start(ctx).await?;
        self.billing.start(ctx).await?;
        Ok(())
    }

    async fn handle(&mut self, msg: DeskMsg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            DeskMsg::Place(number, reply) => {
                let item = if number == POISON { "poison" } else { "books" };
                let order = Order {
                    number,
                    item: item.to_owned(),
                };
                let invoice = Invoice {
                    order: number,
                    cents: 250,
                };
                let sent = async {
                    self.warehouse.deliver("/user/warehouse", |_| order).await?;
                    self.billing.deliver("/user/billing", |_| invoice).await
                };
                reply.reply(sent.await.map(drop).map_err(|e| e.to_string()));
            }
            DeskMsg::Outboxes(reply) => {
                reply.reply((self.warehouse.deliverer()?, self.billing.deliverer()?));
            }
        }
        Ok(())
    }
}

// ---- the receivers: plain actors with their own enums ----

/// Counts how often each key's effect was applied, in the same atomic
/// write as the inbox record.
async fn count_once<M>(
    inbox: &ExactlyOnce,
    journal: &Arc<dyn Journal>,
    namespace: &'static str,
    key: u64,
    delivery: &Delivery<M>,
) -> Result<(), BoxError> {
    let key = key.to_be_bytes().to_vec();
    let before = match journal.kv_get(namespace, &key).await? {
        Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into()?),
        None => 0,
    };
    inbox
        .process(delivery, |_| {
            WriteBatch::new().put(namespace, key, (before + 1).to_be_bytes().to_vec())
        })
        .await?;
    Ok(())
}

enum WarehouseMsg {
    Order(Delivery<Order>),
}

impl From<Delivery<Order>> for WarehouseMsg {
    fn from(d: Delivery<Order>) -> Self {
        WarehouseMsg::Order(d)
    }
}

struct Warehouse {
    journal: Arc<dyn Journal>,
    inbox: ExactlyOnce,
}

impl Actor for Warehouse {
    type Msg = WarehouseMsg;

    async fn handle(&mut self, msg: WarehouseMsg, _: &mut Context<Self>) -> Result<(), BoxError> {
        let WarehouseMsg::Order(d) = msg;
        if d.message.item == "poison" {
            // Fails every time: never acked, parked after max_attempts.
            return Err(format!("order {} cannot be picked", d.message.number).into());
        }
        let number = d.message.number;
        count_once(&self.inbox, &self.journal, PICKED, number, &d).await
    }
}

enum BillingMsg {
    Invoice(Delivery<Invoice>),
}

impl From<Delivery<Invoice>> for BillingMsg {
    fn from(d: Delivery<Invoice>) -> Self {
        BillingMsg::Invoice(d)
    }
}

struct Billing {
    journal: Arc<dyn Journal>,
    inbox: ExactlyOnce,
}

impl Actor for Billing {
    type Msg = BillingMsg;

    async fn handle(&mut self, msg: BillingMsg, _: &mut Context<Self>) -> Result<(), BoxError> {
        let BillingMsg::Invoice(d) = msg;
        let order = d.message.order;
        count_once(&self.inbox, &self.journal, BILLED, order, &d).await
    }
}

// ---- the service ----

/// A service with a poison message and a destination that is down, serving
/// the admin endpoint over mutual TLS until SIGTERM or Ctrl-C.
///
/// The last line of standard output reads
/// `orders=N applied=A invoices=N billed=B billed_twice=0 pending=P parked=Q`.
#[derive(Parser)]
#[command(name = "ops_demo", after_help = LOGS_HELP)]
struct Args {
    /// How many orders to place (order 7, if placed, is poison).
    #[arg(long, value_name = "N", default_value_t = 20)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=100_000))]
    orders: u64,
    /// The TOML configuration file (its `[delivery.actor.*]` and `[admin]`
    /// sections); the store lives in `<persistence.path>/ops-demo`,
    /// cleared at the start.
    #[arg(long, value_name = "FILE")]
    #[arg(default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ops.toml"))]
    config: PathBuf,
    /// Where to write the certificates and the `env` file.
    #[arg(long, value_name = "DIR")]
    certs: PathBuf,
    /// The admin endpoint's (the node's) address; port 0 picks one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// How long billing is down after the start.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    billing_after: Duration,
    /// Stop on its own after this long [default: only on SIGTERM or Ctrl-C].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    run_for: Option<Duration>,
}

#[path = "support/certs.rs"]
mod certs;
#[path = "support/logging.rs"]
mod logging;

const LOGS_HELP: &str = "Logs go to standard error, warnings and errors by default; \
set RUST_LOG to see more, e.g. RUST_LOG=courier_delivery=debug.";

const NODE: &str = "ops";

/// Waits for SIGTERM, Ctrl-C or the end of `run_for`.
async fn until_stopped(run_for: Option<Duration>) -> anyhow::Result<&'static str> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let timer = async {
        match run_for {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        r = tokio::signal::ctrl_c() => { r?; "Ctrl-C" }
        () = timer => "--run-for",
    })
}

/// The keys of `namespace` and how many were applied more than once.
async fn tally(journal: &Arc<dyn Journal>, namespace: &str) -> anyhow::Result<(u64, u64)> {
    let (mut keys, mut twice) = (0, 0);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = journal.kv_scan(namespace, after.as_deref(), 1000).await?;
        let Some((last, _)) = page.last() else {
            return Ok((keys, twice));
        };
        after = Some(last.clone());
        for (_, value) in &page {
            let times = u64::from_be_bytes(value.as_slice().try_into()?);
            keys += 1;
            if times > 1 {
                twice += 1;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init_tracing()?;
    let config = Config::from_file(&args.config)?;
    let path = config.persistence.path.join("ops-demo");
    if path.exists() {
        std::fs::remove_dir_all(&path).with_context(|| format!("clearing {}", path.display()))?;
    }
    let mut persistence = config.persistence.clone();
    persistence.path.clone_from(&path);
    let store = Arc::new(persistence.open()?);
    let journal: Arc<dyn Journal> = store.clone();
    let system = ActorSystem::new("ops-demo");

    // The node, serving the admin endpoint with the config's `[admin]`.
    certs::generate(
        &args.certs,
        "ops_demo throwaway CA",
        &[NODE, "operator", "reader"],
    )?;
    let certs = args.certs.canonicalize()?;
    let tls = TlsSettings::from_files(
        certs.join(format!("{NODE}.crt")),
        certs.join(format!("{NODE}.key")),
        certs.join("ca.crt"),
    );
    let admin = AdminService::new(&system, Arc::clone(&journal), config.admin_settings())
        .with_store((*store).clone());
    let node = Node::start_with_services(
        &system,
        RemoteSettings::with_tls(NODE, tls),
        Registry::new(),
        Transport::tcp(args.listen).await?,
        move |routes| admin.mount(routes),
    )
    .await?;
    let address = format!("courier://{NODE}@{}", node.address());
    println!("admin at {address}; certificates in {}", certs.display());

    let warehouse_journal = Arc::clone(&journal);
    system.spawn(
        Props::new(move || Warehouse {
            journal: Arc::clone(&warehouse_journal),
            inbox: ExactlyOnce::new("warehouse", Arc::clone(&warehouse_journal)),
        })
        .with_name("warehouse")
        .with_adapter::<Delivery<Order>>(),
    )?;
    let warehouse = config.at_least_once::<Order>("orders", Arc::clone(&journal));
    let billing = config.at_least_once::<Invoice>("invoices", Arc::clone(&journal));
    let desk = system.spawn(
        Props::new(move || Desk {
            warehouse: warehouse.clone(),
            billing: billing.clone(),
        })
        .with_name("desk"),
    )?;
    config.warn_unused_overrides();
    for number in 1..=args.orders {
        if let Err(e) = desk.ask(|r| DeskMsg::Place(number, r), ASK).await? {
            bail!("order {number} was not accepted: {e}");
        }
    }
    println!(
        "placed {} orders; order {POISON} is poison; billing is down for {:?}",
        args.orders, args.billing_after
    );
    // Only now may an operator's tool ask: everything above is in place.
    let env = format!(
        "COURIER_NODE={address}\nCOURIER_CERT={}\nCOURIER_KEY={}\nCOURIER_CA={}\n",
        certs.join("operator.crt").display(),
        certs.join("operator.key").display(),
        certs.join("ca.crt").display(),
    );
    std::fs::write(certs.join("env.tmp"), env)?;
    std::fs::rename(certs.join("env.tmp"), certs.join("env"))?;

    let stopped = {
        let run = until_stopped(args.run_for);
        tokio::pin!(run);
        tokio::select! {
            stopped = &mut run => stopped?,
            () = tokio::time::sleep(args.billing_after) => {
                let billing_journal = Arc::clone(&journal);
                system.spawn(
                    Props::new(move || Billing {
                        journal: Arc::clone(&billing_journal),
                        inbox: ExactlyOnce::new("billing", Arc::clone(&billing_journal)),
                    })
                    .with_name("billing")
                    .with_adapter::<Delivery<Invoice>>(),
                )?;
                println!("billing is up");
                run.await?
            }
        }
    };
    println!("stopping ({stopped})");

    let (orders, invoices) = desk.ask(DeskMsg::Outboxes, ASK).await?;
    let pending = orders.unconfirmed() + invoices.unconfirmed();
    let parked = orders.parked().await?.len() + invoices.parked().await?.len();
    let (applied, applied_twice) = tally(&journal, PICKED).await?;
    let (billed, billed_twice) = tally(&journal, BILLED).await?;
    node.shutdown().await;
    system.shutdown().await;
    store.close().await?;
    println!(
        "orders={} applied={applied} invoices={} billed={billed} billed_twice={billed_twice} pending={pending} parked={parked}",
        args.orders, args.orders
    );
    if applied_twice > 0 || billed_twice > 0 {
        bail!("applied twice: {applied_twice} orders, {billed_twice} invoices");
    }
    Ok(())
}
