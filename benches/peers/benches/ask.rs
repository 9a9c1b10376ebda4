//! Ask round trips, one at a time: 10,000 sequential request–replies per
//! iteration on an unbounded mailbox. courier's `ask` always has a timeout,
//! so the peers run both with the same timeout (`*_timeout`, like for like)
//! and without (their default).
//!
//! The raw rows take courier apart: the limit (mpsc + oneshot) without and
//! with a tokio timer per ask (`_timeout`: what the timer costs), and with
//! courier's loop shape added (`raw_two_channel_loop_timeout`: courier's
//! structure without the rest of courier).

use courier_bench_peers::MailboxKind;
use courier_bench_peers::courier_actor::{ASK_TIMEOUT, CourierPeer};
use courier_bench_peers::harness::{ASK_ROUND_TRIPS, MessageBench, Workload, criterion, runtime};
use courier_bench_peers::kameo_actor::KameoPeer;
use courier_bench_peers::ractor_actor::RactorPeer;
use courier_bench_peers::raw_channel::{AskTimeout, Consumer, RawPeer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn ask(c: &mut Criterion) {
    let rt = runtime();
    let workload = Workload::Ask {
        round_trips: ASK_ROUND_TRIPS,
    };
    let bench = MessageBench {
        rt: &rt,
        mailbox: MailboxKind::Unbounded,
        workload,
    };
    let timeout = Some(ASK_TIMEOUT);
    let tokio_timer = AskTimeout::Tokio(ASK_TIMEOUT);
    let loop_shape = Consumer::SelectSys { batch: 64 };
    let ractor_timeout = RactorPeer {
        call_timeout: timeout,
    };
    let kameo_timeout = KameoPeer {
        reply_timeout: timeout,
    };
    let mut group = c.benchmark_group("ask_sequential");
    group.throughput(Throughput::Elements(workload.elements()));
    bench.run(&mut group, "courier", CourierPeer::new());
    bench.run(&mut group, "raw_mpsc_oneshot", RawPeer::default());
    let raw = |consumer, timeout| RawPeer::new(consumer, timeout);
    let name = "raw_mpsc_oneshot_timeout";
    bench.run(&mut group, name, raw(Consumer::Recv, tokio_timer));
    let name = "raw_two_channel_loop_timeout";
    bench.run(&mut group, name, raw(loop_shape, tokio_timer));
    bench.run(&mut group, "ractor", RactorPeer::default());
    bench.run(&mut group, "ractor_timeout", ractor_timeout);
    bench.run(&mut group, "kameo", KameoPeer::default());
    bench.run(&mut group, "kameo_timeout", kameo_timeout);
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = ask
}
criterion_main!(benches);
