//! The engines' own limit, without courier's store on top: batches of 1,
//! 10, 100 and 1,000 entries of 200 bytes, each batch applied atomically
//! and then made durable, on sled 0.34 (`apply_batch` + `flush`, through
//! the sled crate itself) and on fjall 3 (a batch `commit` +
//! `persist(SyncData)`, through courier's `FjallEngine`, which is exactly
//! those two calls), in the same run.
//!
//! Run: `cargo bench --features fjall --bench engines`. Results:
//! docs/benchmarks.md.

use std::time::Duration;

use courier::persistence::engine::{Engine, EngineOp, FjallEngine};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const VALUE: usize = 200;

fn batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_batch");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    let value = vec![7u8; VALUE];
    for size in [1u64, 10, 100, 1000] {
        // Enough batches per iteration that one iteration is a few flushes
        // at least.
        let rounds = (2000 / size).max(4);
        group.throughput(Throughput::Elements(size * rounds));
        group.bench_function(BenchmarkId::new("sled_flush", size), |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = sled::open(dir.path()).expect("open");
            let mut key = 0u64;
            b.iter(|| {
                for _ in 0..rounds {
                    let mut batch = sled::Batch::default();
                    for _ in 0..size {
                        key += 1;
                        batch.insert(&key.to_be_bytes(), value.as_slice());
                    }
                    db.apply_batch(batch).expect("batch");
                    db.flush().expect("flush");
                }
            });
        });
        group.bench_function(BenchmarkId::new("fjall_sync_data", size), |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let engine = FjallEngine::open(dir.path()).expect("open");
            let mut key = 0u64;
            b.iter(|| {
                for _ in 0..rounds {
                    let ops = (0..size)
                        .map(|_| {
                            key += 1;
                            EngineOp::Put(key.to_be_bytes().to_vec(), value.clone())
                        })
                        .collect();
                    engine.apply(ops).expect("batch");
                    engine.flush().expect("persist");
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, batches);
criterion_main!(benches);
