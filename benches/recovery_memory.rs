//! Recovery of 1,000,000 events: speed and peak memory, per engine and per
//! engine cache size (`[persistence] cache_capacity`).
//!
//! Each measurement runs in a fresh child process (this binary re-executed),
//! so that its peak resident set size (`VmHWM`) is its own: one child writes
//! the journal, then, per round, one child recovers an event-sourced actor
//! from it and one iterates the engine's records without courier's decoding
//! (`raw`: the engine's own scan, the limit of any recovery). Rounds are
//! interleaved (raw, courier, raw, courier, …) and each line is printed as
//! measured; the summary gives each median and the ratio courier / raw of
//! the same rounds.
//!
//! Run: `cargo bench --features fjall --bench recovery_memory` (without
//! `fjall`, sled only). Results: docs/benchmarks.md. Linux only (reads
//! `/proc/self/status`).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::persistence::engine::{DurableEngine, Engine};
use courier::persistence::{
    DurableStore, Effect, EngineKind, EventRecord, EventSourced, Journal, Manifest, Persistent,
    PersistentContext, Snapshots, StoreOptions, WriteBatch, encode_payload,
};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

const EVENTS: u64 = 1_000_000;
const PID: &str = "account";
const ROUNDS: usize = 3;
/// The bounded cache measured beside each engine's default.
const SMALL_CACHE: u64 = 64 * 1024 * 1024;
const CHILD: &str = "COURIER_BENCH_CHILD";

/// About 200 encoded bytes, as the persistence benches write.
#[derive(Serialize, Deserialize)]
struct Written {
    id: u64,
    note: String,
}

#[derive(Default)]
struct Sink {
    events: u64,
}

impl EventSourced for Sink {
    type Command = ReplyTo<u64>;
    type Event = Written;

    async fn handle_command(
        &mut self,
        reply: ReplyTo<u64>,
        _: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        reply.reply(self.events);
        Ok(Effect::none())
    }

    fn apply_event(&mut self, _: Written) {
        self.events += 1;
    }
}

impl Snapshots for Sink {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.events
    }

    fn apply_snapshot(&mut self, events: u64) {
        self.events = events;
    }
}

fn kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn kind(name: &str) -> EngineKind {
    match name {
        "sled" => EngineKind::Sled,
        "fjall" => EngineKind::Fjall,
        other => panic!("unknown engine {other}"),
    }
}

fn cache(text: &str) -> Option<u64> {
    (text != "default").then(|| text.parse().expect("cache bytes"))
}

fn write(kind: EngineKind, dir: &Path) {
    runtime().block_on(async {
        let store = DurableStore::open_engine(kind, dir, None, StoreOptions::new()).expect("open");
        let payload = encode_payload(&Written {
            id: 42,
            note: "x".repeat(190),
        })
        .expect("encode");
        let manifest: Manifest = Sink::event_manifest();
        let writer_id = uuid::Uuid::now_v7();
        let mut seq = 0;
        while seq < EVENTS {
            let mut batch = WriteBatch::new();
            for _ in 0..10_000 {
                seq += 1;
                batch = batch.event(EventRecord {
                    persistence_id: PID.into(),
                    seq_nr: seq,
                    manifest: manifest.clone(),
                    payload: payload.clone(),
                    writer_id,
                    timestamp: 0,
                });
            }
            store.write(batch).await.expect("write");
        }
        store.close().await.expect("close");
    });
    // The same three fields as the other children: time, RSS, peak.
    println!("0 {} {}", kib("VmRSS:"), kib("VmHWM:"));
}

/// Recovers the actor; prints `secs rss_open_kib peak_kib`.
fn recover(kind: EngineKind, cache: Option<u64>, dir: &Path) {
    runtime().block_on(async {
        let store = Arc::new(
            DurableStore::open_engine(kind, dir, cache, StoreOptions::new()).expect("open"),
        );
        let opened = kib("VmRSS:");
        let started = Instant::now();
        let system = ActorSystem::new("recovery");
        let actor = system
            .spawn(Persistent::props(PID, Sink::default).with_store(store.clone()))
            .expect("spawn");
        let n = actor
            .ask(|r| r, Duration::from_secs(600))
            .await
            .expect("count");
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(n, EVENTS);
        println!("{secs} {opened} {}", kib("VmHWM:"));
        system.shutdown().await;
    });
}

/// Iterates every record through the engine alone; prints the same.
fn raw(kind: EngineKind, cache: Option<u64>, dir: &Path) {
    let engine = DurableEngine::open(kind, dir, cache).expect("open");
    let opened = kib("VmRSS:");
    let started = Instant::now();
    let mut records = 0u64;
    let mut bytes = 0u64;
    engine
        .visit(&[], None, usize::MAX, &mut |key, value| {
            records += 1;
            bytes += (key.len() + value.len()) as u64;
            Ok(())
        })
        .expect("visit");
    let secs = started.elapsed().as_secs_f64();
    assert!(records >= EVENTS, "{records} records, {bytes} bytes");
    println!("{secs} {opened} {}", kib("VmHWM:"));
}

/// Runs this binary as a child; its `secs rss_open_kib peak_kib`.
fn child(args: &str) -> (f64, u64, u64) {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .env(CHILD, args)
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "child {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    let mut next = || fields.next().expect("a field").to_owned();
    (
        next().parse().expect("secs"),
        next().parse().expect("kib"),
        next().parse().expect("kib"),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if let Ok(args) = std::env::var(CHILD) {
        let parts: Vec<&str> = args.split(' ').collect();
        match parts.as_slice() {
            ["write", engine, dir] => write(kind(engine), Path::new(dir)),
            ["recover", engine, cache_text, dir] => {
                recover(kind(engine), cache(cache_text), Path::new(dir));
            }
            ["raw", engine, cache_text, dir] => {
                raw(kind(engine), cache(cache_text), Path::new(dir))
            }
            _ => panic!("bad child arguments {args:?}"),
        }
        return;
    }
    let mut engines = vec!["sled"];
    if EngineKind::Fjall.available() {
        engines.push("fjall");
    }
    let mut summary = Vec::new();
    for engine in engines {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().display().to_string();
        let started = Instant::now();
        child(&format!("write {engine} {path}"));
        eprintln!(
            "{engine}: wrote {EVENTS} events in {:.1?}",
            started.elapsed()
        );
        for cache_text in ["default".to_owned(), SMALL_CACHE.to_string()] {
            let (mut raw_rates, mut rates, mut peaks, mut raw_peaks) =
                (vec![], vec![], vec![], vec![]);
            for round in 1..=ROUNDS {
                let (raw_secs, _, raw_peak) = child(&format!("raw {engine} {cache_text} {path}"));
                let (secs, opened, peak) = child(&format!("recover {engine} {cache_text} {path}"));
                println!(
                    "engine={engine} cache={cache_text} round={round} raw_events_per_s={:.0} \
                     courier_events_per_s={:.0} ratio={:.2} raw_peak_rss_mib={:.0} \
                     courier_rss_after_open_mib={:.0} courier_peak_rss_mib={:.0}",
                    EVENTS as f64 / raw_secs,
                    EVENTS as f64 / secs,
                    raw_secs / secs,
                    raw_peak as f64 / 1024.0,
                    opened as f64 / 1024.0,
                    peak as f64 / 1024.0,
                );
                raw_rates.push(EVENTS as f64 / raw_secs);
                rates.push(EVENTS as f64 / secs);
                peaks.push(peak as f64 / 1024.0);
                raw_peaks.push(raw_peak as f64 / 1024.0);
            }
            let ratios: Vec<f64> = rates.iter().zip(&raw_rates).map(|(c, r)| c / r).collect();
            summary.push(format!(
                "| {engine} | {cache_text} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} |",
                median(raw_rates),
                median(rates),
                median(ratios),
                median(raw_peaks),
                median(peaks),
            ));
        }
    }
    println!(
        "\n| engine | cache_capacity | raw events/s | courier events/s | courier / raw | raw peak RSS MiB | courier peak RSS MiB |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for line in summary {
        println!("{line}");
    }
}
