//! Where a group commit's time goes when 100 event-sourced actors persist
//! concurrently (the `persist/100_actors` workload of `benches/persistence.rs`),
//! against the raw engine writing batches of the group size courier
//! actually reached, in the same run.
//!
//! Not a criterion bench: it reads the store's own histograms
//! (`courier_persistence_*`, through a debugging recorder) to split one
//! group's cycle into its steps, which a throughput figure cannot show:
//!
//! - **apply**: the group's writes applied to the engine (I/O thread);
//! - **engine flush**: the engine's durable flush (sled's `flush`,
//!   fjall's `persist(SyncData)`);
//! - **commit record**: the record's write and `fdatasync`, after the
//!   engine's flush and before any answer (rollback detection);
//! - **rest**: everything else in the cycle, measured as the cycle minus
//!   the three: answering the group's waiters, waking the actors, their
//!   replies and next commands, and the writer's hand-offs to the I/O
//!   thread and back.
//!
//! Run: `cargo bench --features fjall --bench persist_profile -- [SECONDS]`
//! (default 5 seconds per contender). Results: docs/benchmarks.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::persistence::{DurableStore, EngineKind, StoreOptions};
use courier::prelude::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

#[path = "common/persist.rs"]
mod common;

use common::{Cmd, spawn_sinks, stored_event_size};

const ACTORS: u64 = 100;

/// Sum and count of one histogram, per `engine` label.
#[derive(Default, Clone, Copy)]
struct Sums {
    sum: f64,
    count: u64,
}

impl Sums {
    fn mean(self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// The store histograms of one engine, read from the recorder.
fn histograms(snapshotter: &Snapshotter, engine: &str) -> HashMap<String, Sums> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if !key
            .labels()
            .any(|l| l.key() == "engine" && l.value() == engine)
        {
            continue;
        }
        if let DebugValue::Histogram(values) = value {
            let sums: &mut Sums = out.entry(key.name().to_owned()).or_default();
            sums.count += values.len() as u64;
            sums.sum += values.iter().map(|v| v.into_inner()).sum::<f64>();
        }
    }
    out
}

/// Runs 100 actors, each awaiting its own persist, for `run`; events per
/// second.
fn courier_run(rt: &tokio::runtime::Runtime, kind: EngineKind, run: Duration) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let store = Arc::new(
            DurableStore::open_engine(kind, dir.path(), None, StoreOptions::new()).expect("open"),
        );
        let system = ActorSystem::new("profile");
        let actors = spawn_sinks(&system, &store, ACTORS);
        let started = Instant::now();
        let tasks: Vec<_> = actors
            .into_iter()
            .map(|actor| {
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while started.elapsed() < run {
                        actor
                            .ask(Cmd::Write, Duration::from_secs(30))
                            .await
                            .expect("persist");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut events = 0;
        for t in tasks {
            events += t.await.expect("task");
        }
        let rate = events as f64 / started.elapsed().as_secs_f64();
        system.shutdown().await;
        store.close().await.expect("close");
        rate
    })
}

/// The keys of a raw loop.
#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// One counter, big-endian: every put appends (the `persistence` bench's
    /// raw loops).
    Sequential,
    /// courier's event keys: a tag byte, the length-prefixed persistence id
    /// (`sink-0` … `sink-99`), the sequence number; one put per actor per
    /// batch, so each batch puts into 100 places of the key space.
    Courier,
}

/// The `n`th key of batch `batch` in `keys`' layout.
fn raw_key(keys: Keys, counter: &mut u64, batch: u64, n: usize) -> Vec<u8> {
    match keys {
        Keys::Sequential => {
            *counter += 1;
            counter.to_be_bytes().to_vec()
        }
        Keys::Courier => {
            let pid = format!("sink-{}", n as u64 % ACTORS);
            let mut key = vec![0x01];
            key.extend_from_slice(&(pid.len() as u16).to_be_bytes());
            key.extend_from_slice(pid.as_bytes());
            key.extend_from_slice(&(batch + 1).to_be_bytes());
            key
        }
    }
}

/// The raw engine writing batches of `batch` entries of `value_len` bytes,
/// each applied and made durable, for `run`: (entries per second, seconds
/// per batch).
fn raw_run(
    kind: EngineKind,
    keys: Keys,
    batch: usize,
    value_len: usize,
    run: Duration,
) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let value = vec![7u8; value_len];
    let mut counter = 0u64;
    let mut batches = 0u64;
    let started = Instant::now();
    match kind {
        EngineKind::Sled => {
            let db = sled::open(dir.path()).expect("open");
            while started.elapsed() < run {
                let mut b = sled::Batch::default();
                for n in 0..batch {
                    b.insert(raw_key(keys, &mut counter, batches, n), value.as_slice());
                }
                db.apply_batch(b).expect("batch");
                db.flush().expect("flush");
                batches += 1;
            }
        }
        _ => {
            #[cfg(feature = "fjall")]
            {
                use courier::persistence::engine::{Engine, EngineOp, FjallEngine};
                let engine = FjallEngine::open(dir.path()).expect("open");
                while started.elapsed() < run {
                    let ops = (0..batch)
                        .map(|n| {
                            EngineOp::Put(raw_key(keys, &mut counter, batches, n), value.clone())
                        })
                        .collect();
                    engine.apply(ops).expect("batch");
                    engine.flush().expect("persist");
                    batches += 1;
                }
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    (
        (batches * batch as u64) as f64 / took,
        took / batches.max(1) as f64,
    )
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let run = Duration::from_secs(seconds);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let value_len = stored_event_size();
    let mut kinds = vec![(EngineKind::Sled, "sled")];
    if EngineKind::Fjall.available() {
        kinds.push((EngineKind::Fjall, "fjall"));
    }
    println!(
        "100 actors persisting concurrently, {seconds} s per contender, {value_len}-byte entries"
    );
    println!();
    println!(
        "| engine | courier events/s | mean group | applies per group | cycle µs | apply µs | engine flush µs | commit record µs | rest µs |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut raws = Vec::new();
    for (kind, engine) in kinds {
        // Warm the engine's files and the runtime, then start clean.
        let _ = courier_run(&rt, kind, Duration::from_millis(500));
        let before = histograms(&snapshotter, engine);
        let rate = courier_run(&rt, kind, run);
        let after = histograms(&snapshotter, engine);
        let delta = |name: &str| {
            let a = after.get(name).copied().unwrap_or_default();
            let b = before.get(name).copied().unwrap_or_default();
            Sums {
                sum: a.sum - b.sum,
                count: a.count - b.count,
            }
        };
        let group = delta("courier_persistence_group_size");
        let flush = delta("courier_persistence_flush_seconds");
        let record = delta("courier_persistence_commit_record_seconds");
        let apply = delta("courier_persistence_apply_seconds");
        let mean_group = group.mean();
        let cycle = mean_group / rate;
        // Per group: applies per flush can be more than one (a group that
        // arrives in parts is applied in parts), so apply time is summed
        // per flush.
        let apply_per_group = apply.sum / flush.count.max(1) as f64;
        let engine_flush = flush.mean() - record.mean();
        let rest = cycle - apply_per_group - flush.mean();
        let us = |s: f64| s * 1e6;
        println!(
            "| {engine} | {rate:.0} | {mean_group:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            apply.count as f64 / flush.count.max(1) as f64,
            us(cycle),
            us(apply_per_group),
            us(engine_flush),
            us(record.mean()),
            us(rest),
        );
        let batch = mean_group.round().max(1.0) as usize;
        for keys in [Keys::Sequential, Keys::Courier] {
            let (raw_rate, raw_batch) = raw_run(kind, keys, batch, value_len, run);
            raws.push((engine, keys, batch, raw_rate, raw_batch, rate));
        }
    }
    println!();
    println!("| engine | raw keys | batch | raw entries/s | raw batch µs | courier ÷ raw |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (engine, keys, batch, raw_rate, raw_batch, rate) in raws {
        let keys = match keys {
            Keys::Sequential => "sequential",
            Keys::Courier => "courier's",
        };
        println!(
            "| {engine} | {keys} | {batch} | {raw_rate:.0} | {:.0} | {:.2} |",
            raw_batch * 1e6,
            rate / raw_rate
        );
    }
}
