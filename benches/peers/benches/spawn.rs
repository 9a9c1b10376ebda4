//! Spawn cost, 1,000 actors per iteration on an unbounded mailbox:
//! `spawn_ready` times spawning until every actor has run its start hook
//! (the stop that follows is untimed); `spawn_lifecycle` also times stopping
//! them all and waiting until each has stopped. Every iteration stops its
//! actors, so memory does not grow. The raw limit is `tokio::spawn` of a
//! task that owns an mpsc receiver.

use courier_bench_peers::courier_actor::CourierPeer;
use courier_bench_peers::harness::{SPAWN_ACTORS, SpawnBench, SpawnTiming, criterion, runtime};
use courier_bench_peers::kameo_actor::KameoPeer;
use courier_bench_peers::ractor_actor::RactorPeer;
use courier_bench_peers::raw_channel::RawPeer;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn spawn(c: &mut Criterion) {
    let rt = runtime();
    let groups = [
        ("spawn_ready", SpawnTiming::Ready),
        ("spawn_lifecycle", SpawnTiming::Lifecycle),
    ];
    for (group_name, timing) in groups {
        let bench = SpawnBench {
            rt: &rt,
            actors: SPAWN_ACTORS,
            timing,
        };
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(SPAWN_ACTORS as u64));
        bench.run(&mut group, "courier", CourierPeer::new());
        bench.run(&mut group, "raw_task_mpsc", RawPeer::default());
        bench.run(&mut group, "ractor", RactorPeer::default());
        bench.run(&mut group, "kameo", KameoPeer::default());
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = spawn
}
criterion_main!(benches);
