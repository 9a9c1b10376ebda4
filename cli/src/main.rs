//! `courier`: see and repair what a courier store holds, offline.
//!
//! ```text
//! courier inspect STORE                  journals, senders, parked, inboxes
//! courier pending STORE [--sender S [--after ID]] [--limit N]
//!                                        unconfirmed deliveries
//! courier parked list STORE [--sender S [--after ID]] [--limit N]
//!                                        parked deliveries and why
//! courier parked requeue STORE --sender S ID…|--all
//! courier parked purge STORE --sender S ID…|--all
//! courier events STORE PID [--from N] [--to M]
//! courier verify STORE                   every record and journal checked
//! courier top STORE [--interval 2s]      per-sender pending, oldest, rates
//! ```
//!
//! With `--node courier://app@host:port --cert C --key K --ca CA
//! [--identity NAME]` the same commands (without STORE; `events PID`) ask a
//! running process's admin endpoint instead, over mutual TLS; its repairs
//! go through the running sender. `COURIER_NODE`, `COURIER_CERT`,
//! `COURIER_KEY`, `COURIER_CA` and `COURIER_IDENTITY` set them from the
//! environment.
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
mod live;
mod open;
mod output;
mod top;

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
    #[command(flatten)]
    node: NodeArgs,
}

/// A running process to ask instead of a store.
#[derive(Args, Clone)]
struct NodeArgs {
    /// Ask this running node's admin endpoint (`courier://node@host:port`)
    /// instead of reading a store.
    #[arg(long, global = true, env = "COURIER_NODE", requires_all = ["cert", "key", "ca"])]
    node: Option<String>,
    /// This tool's certificate (PEM), signed by the node's CA.
    #[arg(long, global = true, env = "COURIER_CERT")]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, global = true, env = "COURIER_KEY")]
    key: Option<PathBuf>,
    /// The CA the node's certificate must chain to (PEM).
    #[arg(long, global = true, env = "COURIER_CA")]
    ca: Option<PathBuf>,
    /// The name this tool's certificate carries (a DNS subject alternative
    /// name); the node's `[admin] repair` list names who may repair.
    #[arg(
        long,
        global = true,
        env = "COURIER_IDENTITY",
        default_value = "operator"
    )]
    identity: String,
    /// How long to wait for the node.
    #[arg(long, global = true, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
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
        #[command(flatten)]
        list: Listing,
    },
    /// Parked deliveries: list them, send them again, or delete them.
    Parked {
        #[command(subcommand)]
        action: ParkedAction,
    },
    /// A journal's events: sequence number, manifest, time, size and the
    /// payload's first bytes in hex.
    Events {
        /// The store's directory, then the persistence id (with `--node`:
        /// the persistence id only).
        #[arg(num_args = 1..=2, required = true, value_names = ["STORE", "PID"])]
        args: Vec<String>,
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
    /// Per sender: pending, oldest age, parked, and the redelivery and
    /// confirmation rates (live only), refreshed in the terminal.
    Top {
        #[command(flatten)]
        store: StoreArg,
        /// Time between refreshes.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long)]
        iterations: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ParkedAction {
    /// Parked deliveries with their reasons.
    List {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        list: Listing,
    },
    /// Moves parked deliveries back into the sender's outbox under new ids;
    /// the sender sends them when it next starts.
    Requeue(Repair),
    /// Deletes parked deliveries for good.
    Purge(Repair),
}

/// Which deliveries `pending` and `parked list` show: a page at a time
/// for a sender with many.
#[derive(Args)]
struct Listing {
    /// Only this sender's.
    #[arg(long)]
    sender: Option<String>,
    /// Only ids above this one (the last of the previous page); needs
    /// `--sender`.
    #[arg(long, requires = "sender", value_name = "ID")]
    after: Option<u64>,
    /// At most this many (default: all offline; with `--node` the node's
    /// cap, 10 000).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

impl Listing {
    /// Tells, on standard error, how to see what did not fit.
    fn more(&self, last: Option<(&str, u64)>) {
        match (&self.sender, last) {
            (Some(sender), Some((_, id))) => {
                eprintln!("courier: more follow: the next page is --sender {sender} --after {id}");
            }
            (None, Some((sender, id))) => eprintln!(
                "courier: more follow: page one sender at a time, e.g. --sender {sender} --after {id}"
            ),
            (_, None) => eprintln!("courier: more follow: give a larger --limit"),
        }
    }
}

#[derive(Args)]
struct StoreArg {
    /// The store's directory (`[persistence] path`); not with `--node`.
    store: Option<PathBuf>,
}

impl StoreArg {
    /// The directory, required without `--node`.
    fn path(&self) -> Result<&std::path::Path, String> {
        self.store
            .as_deref()
            .ok_or_else(|| "give the store's directory (or --node to ask a running process)".into())
    }
}

#[derive(Args)]
struct Repair {
    /// The sender whose parked deliveries these are.
    #[arg(long)]
    sender: String,
    /// Every delivery of the sender that is parked now, instead of ids.
    #[arg(long)]
    all: bool,
    /// The store's directory (not with `--node`), then the delivery ids as
    /// `courier parked list` shows them (none with `--all`).
    #[arg(value_name = "[STORE] ID")]
    args: Vec<String>,
}

/// Which parked deliveries a repair names.
enum Selection {
    /// These ids.
    Ids(Vec<u64>),
    /// Every one parked when the command runs.
    All,
}

impl Repair {
    /// The store (offline only) and the deliveries.
    fn split(&self, live: bool) -> Result<(Option<&std::path::Path>, Selection), String> {
        let (store, ids) = match (live, self.args.split_first()) {
            (false, Some((store, ids))) => (Some(std::path::Path::new(store.as_str())), ids),
            _ => (None, self.args.as_slice()),
        };
        if self.all {
            if let Some(id) = ids.first() {
                return Err(format!("give ids or --all, not both (got {id:?})"));
            }
            return Ok((store, Selection::All));
        }
        if ids.is_empty() {
            return Err(format!(
                "no ids given for sender {} (or --all for every parked one)",
                self.sender
            ));
        }
        let ids = ids
            .iter()
            .map(|id| {
                id.parse::<u64>()
                    .map_err(|_| format!("{id:?} is not a delivery id"))
            })
            .collect::<Result<Vec<u64>, String>>()?;
        Ok((store, Selection::Ids(ids)))
    }
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
    let result = match &cli.node.node {
        Some(_) => runtime.block_on(live::run(cli.command, cli.json, cli.node)),
        None => runtime.block_on(commands::run(cli.command, cli.json)),
    };
    match result {
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
