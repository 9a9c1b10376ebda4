//! A persistent counter on the embedded sled store.
//!
//! Each run recovers the counter (newest snapshot, then the events after
//! it), increments it `--count` times, taking a snapshot every
//! `--snapshot-every` events, and prints what it did. Kill it at any moment
//! (Ctrl-C, `kill -9`) and run it again: it resumes from the last value whose
//! persist returned, and says so.
//!
//! ```text
//! cargo run --release --example durable_counter -- [--path DIR] [--count N] [--snapshot-every N]
//! ```
//!
//! `--help` lists the options. Logs go to standard error (warnings and
//! errors unless `RUST_LOG` says otherwise, e.g.
//! `RUST_LOG=courier_persistence=debug`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use courier::persistence::{Persistence, SledStore, SnapshotPolicy};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

/// Its own snapshot (it derives `Serialize` and `Deserialize`).
#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: u64,
}

enum Command {
    Increment(ReplyTo<u64>),
}

#[derive(Serialize, Deserialize)]
struct Incremented;

impl EventSourced for Counter {
    type Command = Command;
    type Event = Incremented;

    async fn handle_command(&mut self, command: Command, _ctx: &mut Ctx<Self>) -> Handled<Self> {
        let Command::Increment(reply) = command;
        Ok(Effect::persist(Incremented).reply(reply, |state: &Self| state.value))
    }

    fn apply_event(&mut self, _: Incremented) {
        self.value += 1;
    }

    async fn recovery_completed(&mut self, ctx: &mut Ctx<Self>) -> Result<(), BoxError> {
        println!("{}: recovered, counter = {}", ctx.path(), self.value);
        Ok(())
    }
}

/// A persistent counter on the embedded sled store: kill it at any moment
/// and run it again; it resumes from the last increment whose persist
/// returned.
#[derive(Parser)]
#[command(name = "durable_counter", after_help = LOGS_HELP)]
struct Args {
    /// The store directory.
    #[arg(long, value_name = "DIR", default_value = "target/durable-counter")]
    path: String,
    /// How many increments this run makes.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    count: u64,
    /// Take a snapshot every N events (keeping two, deleting the events
    /// they cover).
    #[arg(long, value_name = "N", default_value_t = 100)]
    snapshot_every: u64,
}

#[path = "support/logging.rs"]
mod logging;

const LOGS_HELP: &str = "Logs go to standard error, warnings and errors by default; \
set RUST_LOG to see more, e.g. RUST_LOG=courier_persistence=debug.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init_tracing()?;
    let store = Arc::new(
        SledStore::open(&args.path).with_context(|| format!("opening store in {}", args.path))?,
    );
    let system = ActorSystem::new("durable-counter");
    Persistence::of(&system).set_store(store);
    let snapshots = SnapshotPolicy::every(args.snapshot_every)
        .keep(2)
        .delete_events(true);
    let counter = system.spawn(
        Persistent::props("counter", Counter::default)
            .with_snapshots(snapshots)
            .with_name("counter"),
    )?;

    let started = Instant::now();
    let mut last = None;
    for _ in 0..args.count {
        // Each reply comes after the increment is flushed to disk.
        last = Some(
            counter
                .ask(Command::Increment, Duration::from_secs(30))
                .await?,
        );
    }
    let elapsed = started.elapsed();
    match last {
        Some(value) => println!(
            "incremented {} times in {:.0} ms ({:.0} durable persists/s); counter = {value} (durable)",
            args.count,
            elapsed.as_secs_f64() * 1000.0,
            args.count as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        ),
        None => println!("nothing to do (--count 0)"),
    }
    system.shutdown().await;
    Ok(())
}
