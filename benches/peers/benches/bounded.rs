//! Back-pressure on a bounded mailbox of capacity 1024, 1→1 and 8→1:
//! courier `send(..).await`, raw `mpsc::channel(1024)` `send(..).await`,
//! kameo `tell(..).send().await` on `mailbox::bounded(1024)`. ractor has no
//! bounded mailbox (its message port is always unbounded), so it is left out.
//! 100,000 messages per iteration, timed until the actor has handled the
//! last one. `raw_two_channel_loop` is a raw consumer with courier's loop
//! shape (a system channel checked before each message, a biased `select!`
//! over it and `recv_many(.., 1)`), to tell the loop's cost from the rest;
//! `raw_fast_path_loop` models the loop change suggested in
//! `docs/benchmarks.md` (a `try_recv` fast path, the mailbox polled first).

use courier_bench_peers::MailboxKind;
use courier_bench_peers::courier_actor::CourierPeer;
use courier_bench_peers::harness::{
    BOUNDED_CAPACITY, FAN_IN_SENDERS, MessageBench, TELL_MESSAGES, Workload, criterion, runtime,
};
use courier_bench_peers::kameo_actor::KameoPeer;
use courier_bench_peers::raw_channel::{AskTimeout, Consumer, RawPeer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bounded(c: &mut Criterion) {
    let rt = runtime();
    let groups = [
        ("bounded_1024_1to1", 1),
        ("bounded_1024_8to1", FAN_IN_SENDERS),
    ];
    for (group_name, senders) in groups {
        let workload = Workload::Send {
            senders,
            messages: TELL_MESSAGES,
        };
        let bench = MessageBench {
            rt: &rt,
            mailbox: MailboxKind::Bounded(BOUNDED_CAPACITY),
            workload,
        };
        let loop_shape = RawPeer::new(Consumer::SelectSys { batch: 1 }, AskTimeout::None);
        let fast_path = RawPeer::new(Consumer::FastPath { batch: 1 }, AskTimeout::None);
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(workload.elements()));
        bench.run(&mut group, "courier", CourierPeer::new());
        bench.run(&mut group, "raw_mpsc", RawPeer::default());
        bench.run(&mut group, "raw_two_channel_loop", loop_shape);
        bench.run(&mut group, "raw_fast_path_loop", fast_path);
        bench.run(&mut group, "kameo", KameoPeer::default());
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = bounded
}
criterion_main!(benches);
