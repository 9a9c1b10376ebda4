//! The examples' `--metrics ADDR` wiring (examples/support/metrics.rs),
//! scraped over HTTP while a sender and a receiver run: the series carry
//! real values, under the names and labels docs/operations.md gives.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../examples/support/metrics.rs"]
mod exporter;
#[path = "metrics/scenario.rs"]
mod scenario;

/// `GET /metrics` over plain HTTP/1.1 (the exporter's own listener).
async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP response: {response:?}"))?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "scrape answered {head:?}");
    Ok(body.to_owned())
}

/// Series (name with its labels, as exposed) → value.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> anyhow::Result<f64> {
    samples.get(series).copied().ok_or_else(|| {
        let mut names: Vec<_> = samples.keys().collect();
        names.sort();
        anyhow::anyhow!("no series {series}; exposed: {names:#?}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_real_delivery_and_store_series() -> anyhow::Result<()> {
    // A free port, then the exporter on it (nothing else binds it between).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    exporter::serve(addr)?;
    let dir = tempfile::tempdir()?;
    let orders = 20;
    let (system, _store) = scenario::run(dir.path(), orders).await?;

    // Scraped while the sender, the receiver and the store still run.
    let body = scrape(addr).await?;
    let s = samples(&body);
    let confirmed = value(&s, r#"courier_delivery_confirmed_total{sender="orders"}"#)?;
    assert_eq!(confirmed, orders as f64, "every order confirmed once");
    assert_eq!(
        value(&s, r#"courier_delivery_delivered_total{sender="orders"}"#)?,
        orders as f64
    );
    assert_eq!(
        value(
            &s,
            r#"courier_delivery_applied_total{receiver="warehouse"}"#
        )?,
        orders as f64
    );
    assert_eq!(
        value(&s, r#"courier_delivery_unconfirmed{sender="orders"}"#)?,
        0.0
    );
    // Histograms are exposed as summaries: a count and quantiles.
    assert_eq!(
        value(
            &s,
            r#"courier_delivery_latency_seconds_count{sender="orders"}"#
        )?,
        orders as f64
    );
    let writes = value(
        &s,
        r#"courier_persistence_write_seconds_count{engine="sled"}"#,
    )?;
    assert!(
        writes >= 2.0 * orders as f64,
        "outbox and inbox writes: {writes}"
    );
    let flushes = value(
        &s,
        r#"courier_persistence_flush_seconds_count{engine="sled"}"#,
    )?;
    assert!(flushes >= 1.0, "flushes: {flushes}");
    let grouped = value(&s, r#"courier_persistence_group_size_sum{engine="sled"}"#)?;
    assert!(
        grouped >= writes,
        "every write answered by a flush: {grouped} < {writes}"
    );
    let dead = value(
        &s,
        r#"courier_dead_letters_total{reason="actor_stopped",message_type="u64"}"#,
    )?;
    assert!(dead >= 1.0, "the dead letter: {dead}");
    system.shutdown().await;
    Ok(())
}
