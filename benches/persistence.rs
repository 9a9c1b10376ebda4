//! Persistence benchmarks, each against its limit in the same run:
//!
//! - `persist/one_actor`: one event-sourced actor awaiting each persist,
//!   against raw sled inserting one entry of the same size + `flush_async`;
//! - `persist/100_actors`: 100 actors persisting concurrently (group commit),
//!   against raw sled writing batches of 100 entries + `flush_async`;
//! - `recovery/1m_events`: recovering an actor from 1,000,000 events, with
//!   and without a snapshot near the end.
//!
//! With feature `fjall`, `persist` also runs courier on fjall
//! (`courier_fjall`) against raw fjall doing the same writes (a batch
//! commit + `persist(SyncData)` through `FjallEngine`, `raw_fjall_*`).
//!
//! Run: `cargo bench --bench persistence` (add `--features fjall` for the
//! fjall rows). Results: docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use courier::persistence::{
    DurableStore, EngineKind, EventRecord, EventSourced, Journal, Manifest, Persistent, SledStore,
    Snapshot, SnapshotMetadata, SnapshotPolicy, SnapshotStore, Snapshots, StoreOptions, WriteBatch,
    encode_payload, now_millis,
};
use courier::prelude::*;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "common/persist.rs"]
mod common;

use common::{Cmd, PAYLOAD, Sink, event, spawn_sinks, stored_event_size, uuid_like};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The engines `persist` runs courier on, with their benchmark ids.
fn engines() -> Vec<(EngineKind, &'static str)> {
    let mut out = vec![(EngineKind::Sled, "courier")];
    if EngineKind::Fjall.available() {
        out.push((EngineKind::Fjall, "courier_fjall"));
    }
    out
}

fn open(kind: EngineKind, dir: &std::path::Path) -> DurableStore {
    DurableStore::open_engine(kind, dir, None, StoreOptions::new()).expect("open")
}

#[cfg(feature = "fjall")]
fn fjall_engine(dir: &std::path::Path) -> courier::persistence::engine::FjallEngine {
    courier::persistence::engine::FjallEngine::open(dir).expect("open")
}

/// One atomic fjall batch of `n` entries, then `persist(SyncData)`.
#[cfg(feature = "fjall")]
fn raw_fjall_batch(
    engine: &courier::persistence::engine::FjallEngine,
    key: &mut u64,
    n: u64,
    value_len: usize,
) {
    use courier::persistence::engine::{Engine, EngineOp};
    let ops = (0..n)
        .map(|_| {
            *key += 1;
            EngineOp::Put(key.to_be_bytes().to_vec(), vec![7u8; value_len])
        })
        .collect();
    engine.apply(ops).expect("batch");
    engine.flush().expect("persist");
}

fn persist(c: &mut Criterion) {
    let rt = runtime();
    let value_len = stored_event_size();
    let mut group = c.benchmark_group("persist");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));

    // (a) one actor, each persist awaited.
    const SEQUENTIAL: u64 = 200;
    group.throughput(Throughput::Elements(SEQUENTIAL));
    for (kind, id) in engines() {
        group.bench_function(BenchmarkId::new("one_actor", id), |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (system, actor) = rt.block_on(async {
                let store = Arc::new(open(kind, dir.path()));
                let system = ActorSystem::new("bench");
                let actor = system
                    .spawn(Persistent::props("sink-0", Sink::default).with_store(store))
                    .expect("spawn");
                (system, actor)
            });
            b.to_async(&rt).iter(|| async {
                for _ in 0..SEQUENTIAL {
                    actor
                        .ask(Cmd::Write, Duration::from_secs(30))
                        .await
                        .expect("persist");
                }
            });
            rt.block_on(system.shutdown());
        });
    }
    #[cfg(feature = "fjall")]
    group.bench_function(BenchmarkId::new("one_actor", "raw_fjall_sync_each"), |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = fjall_engine(dir.path());
        let mut key = 0u64;
        b.iter(|| {
            for _ in 0..SEQUENTIAL {
                raw_fjall_batch(&engine, &mut key, 1, value_len);
            }
        });
    });
    group.bench_function(BenchmarkId::new("one_actor", "raw_sled_flush_each"), |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("open");
        let value = vec![7u8; value_len];
        let key = AtomicU64::new(0);
        b.to_async(&rt).iter(|| async {
            for _ in 0..SEQUENTIAL {
                let k = key.fetch_add(1, Ordering::Relaxed);
                db.insert(k.to_be_bytes(), value.as_slice())
                    .expect("insert");
                db.flush_async().await.expect("flush");
            }
        });
    });

    // (b) 100 actors persisting concurrently: group commit.
    const ACTORS: u64 = 100;
    const PER_ACTOR: u64 = 20;
    group.throughput(Throughput::Elements(ACTORS * PER_ACTOR));
    for (kind, id) in engines() {
        group.bench_function(BenchmarkId::new("100_actors", id), |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (system, actors) = rt.block_on(async {
                let store = Arc::new(open(kind, dir.path()));
                let system = ActorSystem::new("bench");
                let actors = spawn_sinks(&system, &store, ACTORS);
                (system, actors)
            });
            b.to_async(&rt).iter(|| async {
                let tasks: Vec<_> = actors
                    .iter()
                    .cloned()
                    .map(|actor| {
                        tokio::spawn(async move {
                            for _ in 0..PER_ACTOR {
                                actor
                                    .ask(Cmd::Write, Duration::from_secs(30))
                                    .await
                                    .expect("persist");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
            });
            rt.block_on(system.shutdown());
        });
    }
    #[cfg(feature = "fjall")]
    group.bench_function(BenchmarkId::new("100_actors", "raw_fjall_batch_100"), |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = fjall_engine(dir.path());
        let mut key = 0u64;
        b.iter(|| {
            for _ in 0..PER_ACTOR {
                raw_fjall_batch(&engine, &mut key, ACTORS, value_len);
            }
        });
    });
    group.bench_function(BenchmarkId::new("100_actors", "raw_sled_batch_100"), |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("open");
        let value = vec![7u8; value_len];
        let key = AtomicU64::new(0);
        b.to_async(&rt).iter(|| async {
            for _ in 0..PER_ACTOR {
                let mut batch = sled::Batch::default();
                for _ in 0..ACTORS {
                    let k = key.fetch_add(1, Ordering::Relaxed);
                    batch.insert(&k.to_be_bytes(), value.as_slice());
                }
                db.apply_batch(batch).expect("batch");
                db.flush_async().await.expect("flush");
            }
        });
    });
    group.finish();
}

fn recovery(c: &mut Criterion) {
    const EVENTS: u64 = 1_000_000;
    const SNAPSHOT_AT: u64 = EVENTS - 10_000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(async {
        let store = Arc::new(SledStore::open(dir.path()).expect("open"));
        let started = Instant::now();
        let payload = encode_payload(&event()).expect("encode");
        let manifest: Manifest = <Sink as EventSourced>::event_manifest();
        let writer_id = uuid_like();
        for pid in ["no-snapshot", "with-snapshot"] {
            let mut seq = 0;
            while seq < EVENTS {
                let mut batch = WriteBatch::new();
                for _ in 0..10_000 {
                    seq += 1;
                    batch = batch.event(EventRecord {
                        persistence_id: pid.into(),
                        seq_nr: seq,
                        manifest: manifest.clone(),
                        payload: payload.clone(),
                        writer_id,
                        timestamp: 0,
                    });
                }
                store.write(batch).await.expect("write");
            }
        }
        store
            .save_snapshot(Snapshot {
                metadata: SnapshotMetadata {
                    persistence_id: "with-snapshot".into(),
                    seq_nr: SNAPSHOT_AT,
                    timestamp: now_millis(),
                },
                manifest: <Sink as Snapshots>::snapshot_manifest(),
                payload: encode_payload(&(SNAPSHOT_AT, SNAPSHOT_AT * PAYLOAD as u64))
                    .expect("encode"),
            })
            .await
            .expect("snapshot");
        eprintln!("wrote 2 x {EVENTS} events in {:?}", started.elapsed());
        store
    });

    let mut group = c.benchmark_group("recovery");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(EVENTS));
    for pid in ["no-snapshot", "with-snapshot"] {
        group.bench_function(BenchmarkId::new("1m_events", pid), |b| {
            b.to_async(&rt).iter(|| {
                let store = store.clone();
                async move {
                    let system = ActorSystem::new("recovery");
                    // A policy that takes no snapshots but recovers from them.
                    let props = Persistent::props(pid, Sink::default)
                        .with_store(store)
                        .with_snapshots(SnapshotPolicy::default());
                    let actor = system.spawn(props).expect("spawn");
                    let n = actor
                        .ask(Cmd::Count, Duration::from_secs(120))
                        .await
                        .expect("count");
                    assert_eq!(n, EVENTS);
                    system.shutdown().await;
                }
            });
        });
    }
    group.finish();
    rt.block_on(async move { drop(store) });
}

criterion_group!(benches, persist, recovery);
criterion_main!(benches);
