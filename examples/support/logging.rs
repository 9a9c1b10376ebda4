//! Logging for the examples (each includes this file with `#[path]`):
//! standard error only, since standard output carries the examples'
//! reports, filtered by `RUST_LOG`.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Logs to standard error, filtered by `RUST_LOG` (warnings and errors by
/// default; child processes inherit it); an invalid `RUST_LOG` is an error
/// rather than ignored.
pub fn init_tracing() -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env()
        .context("RUST_LOG is not a valid filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
