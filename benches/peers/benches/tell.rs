//! Tell throughput on an unbounded mailbox, 1→1 and 8→1: courier `tell`,
//! raw `mpsc::unbounded_channel`, ractor `cast`, kameo `tell(..).try_send()`.
//! 100,000 messages per iteration, timed until the actor has handled the
//! last one. courier's unbounded mailbox takes up to 64 messages per
//! wake-up, so `raw_mpsc_recv_many` (a consumer doing `recv_many(.., 64)`)
//! is the limit for a batching consumer, next to the plain `recv` one.

use courier_bench_peers::MailboxKind;
use courier_bench_peers::courier_actor::CourierPeer;
use courier_bench_peers::harness::{
    FAN_IN_SENDERS, MessageBench, TELL_MESSAGES, Workload, criterion, runtime,
};
use courier_bench_peers::kameo_actor::KameoPeer;
use courier_bench_peers::ractor_actor::RactorPeer;
use courier_bench_peers::raw_channel::{AskTimeout, Consumer, RawPeer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn tell(c: &mut Criterion) {
    let rt = runtime();
    let groups = [
        ("tell_unbounded_1to1", 1),
        ("tell_unbounded_8to1", FAN_IN_SENDERS),
    ];
    for (group_name, senders) in groups {
        let workload = Workload::Tell {
            senders,
            messages: TELL_MESSAGES,
        };
        let bench = MessageBench {
            rt: &rt,
            mailbox: MailboxKind::Unbounded,
            workload,
        };
        let batching = RawPeer::new(Consumer::RecvMany(64), AskTimeout::None);
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(workload.elements()));
        bench.run(&mut group, "courier", CourierPeer::new());
        bench.run(&mut group, "raw_mpsc", RawPeer::default());
        bench.run(&mut group, "raw_mpsc_recv_many", batching);
        bench.run(&mut group, "ractor", RactorPeer::default());
        bench.run(&mut group, "kameo", KameoPeer::default());
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = tell
}
criterion_main!(benches);
