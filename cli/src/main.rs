//! `courier`: see and repair what a courier store holds, offline.
//!
//! ```text
//! courier inspect STORE                  journals, senders, parked, inboxes
//! courier pending STORE [--sender S]     unconfirmed deliveries
//! courier parked list STORE [--sender S] parked deliveries and why
//! courier parked requeue STORE --sender S ID…
//! courier parked purge STORE --sender S ID…
//! courier events STORE PID [--from N] [--to M]
//! courier verify STORE                   every record and journal checked
//! ```
//!
//! Every command takes `--json` for scripts. The reading commands never
//! write to STORE: they copy it to a temporary directory first (opening a
//! sled store writes to it). Nothing is read while another process holds the
//! store: stop the service first. Exit status: 0 when all went well, 1 when
//! `verify` found problems, 2 on an error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod commands;
mod open;
mod output;

/// See and repair what a courier store holds (offline: stop the service
/// that uses the store first).
#[derive(Parser)]
#[command(name = "courier", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Journals (persistence ids, highest sequence numbers, snapshots),
    /// senders (pending, oldest, destinations, parked) and inboxes
    /// (senders, watermarks, kept ids).
    Inspect(StoreArg),
    /// Unconfirmed deliveries, oldest first.
    Pending {
        #[command(flatten)]
        store: StoreArg,
        /// Only this sender's.
        #[arg(long)]
        sender: Option<String>,
    },
    /// Parked deliveries: list them, send them again, or delete them.
    Parked {
        #[command(subcommand)]
        action: ParkedAction,
    },
    /// A journal's events: sequence number, manifest, time, size and the
    /// payload's first bytes in hex.
    Events {
        #[command(flatten)]
        store: StoreArg,
        /// The persistence id.
        persistence_id: String,
        /// The first sequence number shown.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// The last sequence number shown.
        #[arg(long, default_value_t = u64::MAX)]
        to: u64,
    },
    /// Reads every record and checks every checksum and journal sequence;
    /// exits 1 and names each bad record if any is wrong. Never writes.
    Verify(StoreArg),
}

#[derive(Subcommand)]
enum ParkedAction {
    /// Parked deliveries with their reasons.
    List {
        #[command(flatten)]
        store: StoreArg,
        /// Only this sender's.
        #[arg(long)]
        sender: Option<String>,
    },
    /// Moves parked deliveries back into the sender's outbox under new ids;
    /// the sender sends them when it next starts.
    Requeue(Repair),
    /// Deletes parked deliveries for good.
    Purge(Repair),
}

#[derive(Args)]
struct StoreArg {
    /// The store's directory (`[persistence] path`).
    store: PathBuf,
}

#[derive(Args)]
struct Repair {
    #[command(flatten)]
    store: StoreArg,
    /// The sender whose parked deliveries these are.
    #[arg(long)]
    sender: String,
    /// The delivery ids, as `courier parked list` shows them.
    #[arg(required = true)]
    ids: Vec<u64>,
}

fn main() -> ExitCode {
    // Logs (courier's own, at WARN and above unless RUST_LOG says more) go
    // to standard error; standard output is the report.
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(e) if std::env::var_os("RUST_LOG").is_some() => {
            eprintln!("courier: invalid RUST_LOG: {e}");
            return ExitCode::from(2);
        }
        Err(_) => tracing_subscriber::EnvFilter::new("warn"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("courier: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli.command, cli.json)) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("courier: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(2)
        }
    }
}
