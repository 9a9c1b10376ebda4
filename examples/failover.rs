//! Failover on a shared PostgreSQL journal: node A dies, node B takes over.
//!
//! Two OS processes (this program, run again with `--node`) share one
//! PostgreSQL schema. Node A runs an event-sourced order desk (each order
//! an event, committed with its delivery's outbox entry) and a
//! deduplicating warehouse receiver (each order's effect committed with its
//! inbox record), and is SIGKILLed mid-stream. Node B starts the same
//! actors under the same names on the same database: it recovers the desk's
//! journal and outbox and the warehouse's inbox, redelivers what A left
//! unconfirmed, and places the rest. The warehouse's records are then
//! checked with a `History`: every order applied exactly once.
//!
//! ```text
//! scripts/postgres.sh run cargo run --features postgres,testkit --example failover -- \
//!     [--messages N] [--kill-after K]
//! ```
//!
//! The database is `COURIER_POSTGRES_URL` (password in
//! `COURIER_POSTGRES_PASSWORD`, if any), as `scripts/postgres.sh` exports
//! them; each run uses a new schema. Logs go to standard error. The last
//! line reads `sent=N processed=N duplicates_suppressed=D redelivered=R lost=0`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use courier::delivery::testkit::History;
use courier::delivery::{Delivery, OutboxSettings, Receipt, Redelivery};
use courier::persistence::postgres::{Password, PostgresSettings, PostgresStore};
use courier::persistence::{Journal, Persistence, SnapshotPolicy, Snapshots, WriteBatch};
use courier::prelude::*;

#[path = "support/logging.rs"]
mod logging;

const ASK: Duration = Duration::from_secs(30);
const APPLIED: &str = "failover.applied";

#[derive(Parser)]
#[command(
    name = "failover",
    after_help = "Logs go to standard error; set RUST_LOG to see more."
)]
struct Args {
    /// How many orders to place.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    messages: u64,
    /// Kill node A once it has placed this many (default: a third).
    #[arg(long, value_name = "K")]
    kill_after: Option<u64>,
    /// Internal: run as this node, on this schema.
    #[arg(long, hide = true, requires = "schema")]
    node: Option<String>,
    #[arg(long, hide = true)]
    schema: Option<String>,
}

// ---- the sender ----

struct Desk {
    out: AtLeastOnce<u64>,
    placed: u64,
}

enum DeskCmd {
    PlaceNext(ReplyTo<u64>),
    Unconfirmed(ReplyTo<(usize, u64)>),
}

impl EventSourced for Desk {
    type Command = DeskCmd;
    type Event = u64;

    async fn handle_command(&mut self, cmd: DeskCmd, _ctx: &mut Ctx<Self>) -> Handled<Self> {
        Ok(match cmd {
            DeskCmd::PlaceNext(reply) => {
                let order = self.placed + 1;
                // The event and the outbox entry in one transaction; sent
                // once it committed.
                let prepared = self.out.prepare("/user/warehouse", |_| order)?;
                Effect::persist(order)
                    .and_deliver(prepared)
                    .reply(reply, |s: &Self| s.placed)
            }
            DeskCmd::Unconfirmed(reply) => {
                let redelivered = self.out.deliverer()?.redelivered();
                reply.reply((self.out.unconfirmed(), redelivered));
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, order: u64) {
        self.placed = order;
    }

    async fn recovery_completed(&mut self, ctx: &mut Ctx<Self>) -> Result<(), BoxError> {
        self.out.start(ctx).await?;
        Ok(())
    }
}

impl Snapshots for Desk {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.placed
    }

    fn apply_snapshot(&mut self, placed: u64) {
        self.placed = placed;
    }
}

// ---- the receiver ----

/// Applies each order once: its record and its inbox record in one write,
/// then the ack.
struct Warehouse {
    inbox: ExactlyOnce,
    duplicates: Arc<AtomicU64>,
}

impl Actor for Warehouse {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let record = |order: &u64| {
            // A unique suffix, so that an order applied twice would show twice.
            let mut key = order.to_be_bytes().to_vec();
            key.extend_from_slice(uuid::Uuid::now_v7().as_bytes());
            WriteBatch::new().put(APPLIED, key, Vec::new())
        };
        if self.inbox.process(&d, record).await? == Receipt::Duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn settings(schema: &str) -> anyhow::Result<PostgresSettings> {
    let url = std::env::var("COURIER_POSTGRES_URL")
        .context("COURIER_POSTGRES_URL is not set (run under scripts/postgres.sh run …)")?;
    let mut settings = PostgresSettings::new(&url)?.with_schema(schema)?;
    if let Ok(password) = Password::from_env("COURIER_POSTGRES_PASSWORD") {
        settings = settings.with_password(password);
    }
    Ok(settings)
}

/// One node: the desk and the warehouse, placing orders up to `messages`
/// and waiting for every ack. Prints `placed K` as it goes, and
/// `done redelivered=R duplicates=D` at the end.
async fn node(name: &str, schema: &str, messages: u64) -> anyhow::Result<()> {
    let store = Arc::new(PostgresStore::open(settings(schema)?.with_application_name(name)).await?);
    let journal: Arc<dyn Journal> = store.clone();
    let duplicates = Arc::new(AtomicU64::new(0));
    let system = ActorSystem::new(name);
    // The shared store: the journal and snapshots of the desk below.
    Persistence::of(&system).set_store(store);
    let inbox = ExactlyOnce::new("warehouse", Arc::clone(&journal));
    let dups = Arc::clone(&duplicates);
    system.spawn(
        Props::new(move || Warehouse {
            inbox: inbox.clone(),
            duplicates: Arc::clone(&dups),
        })
        .with_name("warehouse"),
    )?;
    let settings = OutboxSettings {
        redelivery: Redelivery::Fixed {
            interval: Duration::from_millis(200),
        },
        ..OutboxSettings::default()
    };
    let out = AtLeastOnce::new("desk", journal, settings);
    let make = move || Desk {
        out: out.clone(),
        placed: 0,
    };
    let snapshots = SnapshotPolicy::every(250).keep(2).delete_events(true);
    let desk = system.spawn(
        Persistent::props("desk", make)
            .with_snapshots(snapshots)
            .with_name("desk"),
    )?;
    let mut placed = 0;
    while placed < messages {
        placed = desk.ask(DeskCmd::PlaceNext, ASK).await?;
        println!("placed {placed}");
    }
    let redelivered = loop {
        let (unconfirmed, redelivered) = desk.ask(DeskCmd::Unconfirmed, ASK).await?;
        if unconfirmed == 0 {
            break redelivered;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "done redelivered={redelivered} duplicates={}",
        duplicates.load(Ordering::Relaxed)
    );
    system.shutdown().await;
    Ok(())
}

/// Runs this program as node `name`; hands each line it prints to
/// `on_line`, which returns `true` to have the node SIGKILLed.
fn run_node(
    name: &str,
    schema: &str,
    messages: u64,
    mut on_line: impl FnMut(&str) -> bool,
) -> anyhow::Result<std::process::ExitStatus> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "--node",
            name,
            "--schema",
            schema,
            "--messages",
            &messages.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting node {name}"))?;
    let stdout = child.stdout.take().context("the node's standard output")?;
    for line in BufReader::new(stdout).lines() {
        if on_line(&line?) {
            // SIGKILL: no shutdown hook, no flush, as a machine dying.
            child.kill()?;
            break;
        }
    }
    Ok(child.wait()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init_tracing()?;
    if let (Some(name), Some(schema)) = (&args.node, &args.schema) {
        return node(name, schema, args.messages).await;
    }
    let kill_after = args
        .kill_after
        .unwrap_or(args.messages / 3)
        .min(args.messages);
    let schema = format!("failover_{}", uuid::Uuid::now_v7().simple());
    println!(
        "{} orders on schema {schema}; node a dies after {kill_after}",
        args.messages
    );

    let mut acknowledged = 0;
    let status = run_node("a", &schema, args.messages, |line| {
        if let Some(n) = line
            .strip_prefix("placed ")
            .and_then(|n| n.parse::<u64>().ok())
        {
            acknowledged = n;
        }
        acknowledged >= kill_after
    })?;
    println!("node a: SIGKILLed after {acknowledged} orders placed ({status})");

    let (mut redelivered, mut duplicates) = (0, 0);
    let status = run_node("b", &schema, args.messages, |line| {
        if let Some(rest) = line.strip_prefix("done ") {
            for pair in rest.split_whitespace() {
                match pair.split_once('=') {
                    Some(("redelivered", n)) => redelivered = n.parse().unwrap_or(0),
                    Some(("duplicates", n)) => duplicates = n.parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        false
    })?;
    if !status.success() {
        bail!("node b failed: {status}");
    }
    println!("node b: took over and finished");

    let store = PostgresStore::open(settings(&schema)?).await?;
    let sent = store.highest_seq_nr("desk").await?;
    let mut history = History::new();
    for order in 1..=args.messages {
        history.sent(order);
    }
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.kv_scan(APPLIED, after.as_deref(), 1000).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (key, _) in &page {
            let number: [u8; 8] = key
                .get(..8)
                .and_then(|k| k.try_into().ok())
                .context("a ledger key")?;
            history.applied(u64::from_be_bytes(number));
        }
    }
    let report = history.check();
    println!(
        "sent={sent} processed={} duplicates_suppressed={duplicates} redelivered={redelivered} lost={}",
        report.applied,
        report.lost.len()
    );
    if !report.is_clean() || sent != args.messages {
        bail!("failover broke its promise: {report}; {sent} orders in the desk's journal");
    }
    Ok(())
}
