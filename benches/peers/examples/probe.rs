//! Runs one workload of one implementation for a fixed count, outside
//! criterion, so that `perf stat` / `perf record` can attribute costs per
//! message:
//!
//! ```sh
//! cargo build --release --example probe
//! perf stat -e task-clock,context-switches target/release/examples/probe courier ask 200000
//! ```
//!
//! Implementations: courier, ractor, ractor_timeout, kameo, kameo_timeout,
//! and raw variants `raw[_many|_select|_fast|_systry][_timeout]` (see
//! `raw_peer`).
//! Workloads: ask, tell, tell8, send, send8. With `PROBE_KEEPER=1` a task
//! keeps a 1 s sleep armed throughout (see `run`).

use std::time::Instant;

use courier_bench_peers::courier_actor::{ASK_TIMEOUT, CourierPeer};
use courier_bench_peers::harness::{BOUNDED_CAPACITY, FAN_IN_SENDERS, Workload, runtime};
use courier_bench_peers::kameo_actor::KameoPeer;
use courier_bench_peers::ractor_actor::RactorPeer;
use courier_bench_peers::raw_channel::{AskTimeout, Consumer, RawPeer};
use courier_bench_peers::{MailboxKind, Peer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, implementation, workload, count] = args.as_slice() else {
        eprintln!("usage: probe IMPLEMENTATION WORKLOAD COUNT");
        std::process::exit(2);
    };
    let count: u64 = count.parse().expect("COUNT must be a number");
    let (workload, mailbox) = match workload.as_str() {
        "ask" => (Workload::Ask { round_trips: count }, MailboxKind::Unbounded),
        "tell" => (
            Workload::Tell {
                senders: 1,
                messages: count,
            },
            MailboxKind::Unbounded,
        ),
        "tell8" => (
            Workload::Tell {
                senders: FAN_IN_SENDERS,
                messages: count,
            },
            MailboxKind::Unbounded,
        ),
        "send" => (
            Workload::Send {
                senders: 1,
                messages: count,
            },
            MailboxKind::Bounded(BOUNDED_CAPACITY),
        ),
        "send8" => (
            Workload::Send {
                senders: FAN_IN_SENDERS,
                messages: count,
            },
            MailboxKind::Bounded(BOUNDED_CAPACITY),
        ),
        other => panic!("unknown workload {other}"),
    };
    let timeout = Some(ASK_TIMEOUT);
    match implementation.as_str() {
        "courier" => run(CourierPeer::new(), mailbox, workload),
        raw if raw.starts_with("raw") => run(raw_peer(raw, mailbox), mailbox, workload),
        "ractor" => run(RactorPeer::default(), mailbox, workload),
        "ractor_timeout" => run(
            RactorPeer {
                call_timeout: timeout,
            },
            mailbox,
            workload,
        ),
        "kameo" => run(KameoPeer::default(), mailbox, workload),
        "kameo_timeout" => run(
            KameoPeer {
                reply_timeout: timeout,
            },
            mailbox,
            workload,
        ),
        other => panic!("unknown implementation {other}"),
    }
}

/// `raw[_SHAPE][_TIMING]`: SHAPE is `many` (`recv_many(.., 64)`), `select`
/// (courier's loop shape), `fast` (that shape with a `try_recv` fast path)
/// or `systry` (a system channel checked, but parking on the mailbox only);
/// TIMING is `timeout` (a tokio timer per ask).
fn raw_peer(name: &str, mailbox: MailboxKind) -> RawPeer {
    // courier's batch: 64 on an unbounded mailbox, 1 on a bounded one.
    let batch = if mailbox == MailboxKind::Unbounded {
        64
    } else {
        1
    };
    let mut consumer = Consumer::Recv;
    let mut timeout = AskTimeout::None;
    for part in name.split('_').skip(1) {
        match part {
            "many" => consumer = Consumer::RecvMany(64),
            "select" => consumer = Consumer::SelectSys { batch },
            "fast" => consumer = Consumer::FastPath { batch },
            "systry" => consumer = Consumer::SysTryOnly,
            "timeout" => timeout = AskTimeout::Tokio(ASK_TIMEOUT),
            other => panic!("unknown raw variant {other}"),
        }
    }
    RawPeer::new(consumer, timeout)
}

fn run<P: Peer>(peer: P, mailbox: MailboxKind, workload: Workload) {
    let rt = runtime();
    rt.block_on(async move {
        if std::env::var_os("PROBE_KEEPER").is_some() {
            // A timer that is always armed and due before any ask's
            // deadline: with it, tokio's time driver never sees an ask's
            // timer as its earliest and so never has to be woken for one.
            tokio::spawn(async {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            });
        }
        let (target, handle) = peer.spawn(mailbox, None).await;
        let measured = target.clone();
        let elapsed = tokio::spawn(async move {
            let start = Instant::now();
            workload.run(&measured).await;
            start.elapsed()
        })
        .await
        .expect("probe task panicked");
        let n = workload.elements();
        println!(
            "{n} in {elapsed:?}: {:.0} /s, {:.1} ns each",
            n as f64 / elapsed.as_secs_f64(),
            elapsed.as_nanos() as f64 / n as f64
        );
        peer.stop_all(vec![(target, handle)]).await;
        peer.finish().await;
    });
}
