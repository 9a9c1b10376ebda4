//! `--metrics ADDR` for the examples (each includes this file with
//! `#[path]`; so does tests/metrics_scrape.rs, which scrapes it): a
//! Prometheus endpoint at `http://ADDR/metrics` over everything courier
//! records through the `metrics` facade. Installed before any actor
//! starts, since senders, inboxes and stores register their series when
//! they start.

use std::net::SocketAddr;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusBuilder;

/// Serves the metrics at `addr` (on the current tokio runtime, or a thread
/// of its own outside one) for the rest of the process.
///
/// # Errors
///
/// The address cannot be bound, or a recorder is installed already.
pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .with_context(|| format!("serving metrics on {addr}"))
}
