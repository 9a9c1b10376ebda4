//! courier against a plain tokio channel, one process per contender, rounds
//! interleaved: the harness behind the actor-core targets in
//! `docs/benchmarks.md`.
//!
//! ```sh
//! cargo build --profile bench --example ratios
//! chrt -f 10 target/release/examples/ratios 7 2000000   # 7 rounds, 2,000,000 messages
//! ```
//!
//! `chrt -f 10` (root) keeps other processes of a shared machine off the
//! cores during a burst; without it the figures follow the machine's load.
//!
//! Each round starts one child process per contender and workload (this
//! binary again, `ratios child CONTENDER WORKLOAD MESSAGES`), alternating
//! which contender goes first, and reads the load average before it. A
//! ratio is courier's throughput over raw's in the same round; the summary
//! gives each workload's median ratio and its spread over the rounds.
//!
//! The raw contenders are written the way a user would write them, with
//! nothing of the criterion harness: a `tokio::sync::mpsc` channel of
//! `u64` (`unbounded_channel()` or `channel(1024)`) and a consumer task
//! doing `while let Some(m) = rx.recv().await { .. }`. The courier
//! contender is an actor whose `Msg` is that same `u64`, sent with
//! `tell` or `send(..).await`. Both consumers do the same work per message
//! (add it up, count it) and signal a oneshot when the last one is handled,
//! which stops the clock.
//!
//! In a child: a tokio multi-thread runtime with two workers (the machine
//! has two cores), the sender in a task spawned on it; one untimed burst of
//! a tenth of the messages to warm up, then three timed bursts of all of
//! them, each with a fresh channel or actor; the child prints the median
//! of the three.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier::{Actor, ActorRef, ActorSystem, BoxError, Context, Mailbox, Props};
use tokio::sync::{mpsc, oneshot};

const CAPACITY: usize = 1024;
const CONTENDERS: [&str; 2] = ["courier", "raw"];
const WORKLOADS: [&str; 2] = ["tell", "send"];
const TIMED_BURSTS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => {
            let [_, _, contender, workload, messages] = args.as_slice() else {
                usage();
            };
            let messages = messages.parse().unwrap_or_else(|_| usage());
            let (per_second, cpu_ns) = child(contender, workload, messages);
            println!("{per_second:.0} {cpu_ns:.1}");
        }
        _ => {
            let rounds = args.get(1).map_or(Ok(7), |a| a.parse());
            let messages = args.get(2).map_or(Ok(2_000_000), |a| a.parse());
            let (Ok(rounds), Ok(messages)) = (rounds, messages) else {
                usage();
            };
            parent(rounds, messages);
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: ratios [ROUNDS [MESSAGES]] | ratios child courier|raw tell|send MESSAGES");
    std::process::exit(2);
}

fn parent(rounds: usize, messages: u64) {
    let exe = std::env::current_exe().expect("the path of this binary");
    let mut ratios: Vec<(&str, Vec<f64>, Vec<f64>)> = WORKLOADS
        .iter()
        .map(|w| (*w, Vec::new(), Vec::new()))
        .collect();
    println!(
        "round | load (1, 5, 15 min) | workload | courier M/s | raw M/s | courier ÷ raw \
         | CPU ns/msg courier | raw | raw ÷ courier"
    );
    for round in 0..rounds {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        for (workload, ratios, cpu_ratios) in &mut ratios {
            let mut order = CONTENDERS;
            if round % 2 == 1 {
                order.reverse();
            }
            let mut rate = [0.0; 2];
            let mut cpu = [0.0; 2];
            for contender in order {
                let output = Command::new(&exe)
                    .args(["child", contender, workload, &messages.to_string()])
                    .output()
                    .expect("cannot start a child");
                assert!(
                    output.status.success(),
                    "child {contender} {workload} failed"
                );
                let text = String::from_utf8_lossy(&output.stdout);
                let mut fields = text.split_whitespace().map(str::parse::<f64>);
                let (Some(Ok(per_second)), Some(Ok(cpu_ns))) = (fields.next(), fields.next())
                else {
                    panic!("a child prints its rate and CPU time, not {text:?}");
                };
                rate[usize::from(contender == "raw")] = per_second;
                cpu[usize::from(contender == "raw")] = cpu_ns;
            }
            let ratio = rate[0] / rate[1];
            let cpu_ratio = cpu[1] / cpu[0];
            ratios.push(ratio);
            cpu_ratios.push(cpu_ratio);
            println!(
                "{round} | {} | {workload} | {:.2} | {:.2} | {ratio:.2} | {:.0} | {:.0} | {cpu_ratio:.2}",
                load.join(" "),
                rate[0] / 1e6,
                rate[1] / 1e6,
                cpu[0],
                cpu[1],
            );
        }
    }
    println!();
    println!(
        "workload | throughput courier ÷ raw: median, min – max \
         | CPU per message raw ÷ courier: median, min – max | rounds"
    );
    for (workload, ratios, cpu_ratios) in ratios {
        println!(
            "{workload} | {} | {} | {}",
            spread(ratios),
            spread(cpu_ratios),
            rounds
        );
    }
}

/// "median, min – max" of `values`.
fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let (min, max) = (values[0], values[values.len() - 1]);
    format!("{median:.2}, {min:.2} – {max:.2}")
}

/// Runs the bursts of one contender and returns its median rate (messages
/// per second) and median CPU time per message (ns, all threads).
fn child(contender: &str, workload: &str, messages: u64) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime");
    let bounded = match workload {
        "tell" => false,
        "send" => true,
        _ => usage(),
    };
    // `RATIOS_SENDER=main` sends from the thread that `block_on`s (as in
    // a `#[tokio::main]` function) instead of from a task on a worker.
    let on_main = std::env::var("RATIOS_SENDER").is_ok_and(|v| v == "main");
    let system = ActorSystem::new("ratios");
    let burst = |n: u64| -> Duration {
        let system = system.clone();
        let contender = contender.to_owned();
        let run = async move {
            match contender.as_str() {
                "raw" => raw_burst(bounded, n).await,
                "courier" => courier_burst(&system, bounded, n).await,
                _ => usage(),
            }
        };
        if on_main {
            rt.block_on(run)
        } else {
            rt.block_on(async move { tokio::spawn(run).await.expect("the burst panicked") })
        }
    };
    burst(messages / 10);
    let mut timed: Vec<(Duration, Duration)> = (0..TIMED_BURSTS)
        .map(|_| {
            let cpu = process_cpu_time();
            let wall = burst(messages);
            (wall, process_cpu_time() - cpu)
        })
        .collect();
    rt.block_on(system.shutdown());
    timed.sort();
    let wall = timed[TIMED_BURSTS / 2].0;
    timed.sort_by_key(|(_, cpu)| *cpu);
    let cpu = timed[TIMED_BURSTS / 2].1;
    (
        messages as f64 / wall.as_secs_f64(),
        cpu.as_nanos() as f64 / messages as f64,
    )
}

/// CPU time used by all threads of this process so far: under load it
/// varies less than wall time, as time spent waiting for a core is not in it.
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What both consumers do per message; signals `done` after the `n`th.
struct Summer {
    sum: u64,
    count: u64,
    n: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Summer {
    fn add(&mut self, m: u64) {
        self.sum = self.sum.wrapping_add(m);
        self.count += 1;
        if self.count == self.n
            && let Some(done) = self.done.take()
        {
            let _ = done.send(self.sum);
        }
    }
}

async fn raw_burst(bounded: bool, n: u64) -> Duration {
    let (done, finished) = oneshot::channel();
    let mut summer = Summer {
        sum: 0,
        count: 0,
        n,
        done: Some(done),
    };
    let start = Instant::now();
    if bounded {
        let (tx, mut rx) = mpsc::channel::<u64>(CAPACITY);
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                summer.add(m);
            }
        });
        for m in 0..n {
            tx.send(m).await.expect("the consumer is gone");
        }
    } else {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                summer.add(m);
            }
        });
        for m in 0..n {
            tx.send(m).expect("the consumer is gone");
        }
    }
    finished.await.expect("the consumer stopped early");
    start.elapsed()
}

impl Actor for Summer {
    type Msg = u64;

    async fn handle(&mut self, m: u64, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.add(m);
        Ok(())
    }
}

async fn courier_burst(system: &ActorSystem, bounded: bool, n: u64) -> Duration {
    let (done, finished) = oneshot::channel();
    // The factory is `Fn`: it hands the one `done` to the first instance.
    let done = Arc::new(Mutex::new(Some(done)));
    let mailbox = if bounded {
        Mailbox::bounded(CAPACITY)
    } else {
        Mailbox::unbounded()
    };
    let props = Props::new(move || Summer {
        sum: 0,
        count: 0,
        n,
        done: done.lock().expect("not poisoned").take(),
    })
    .with_mailbox(mailbox);
    let start = Instant::now();
    let actor: ActorRef<u64> = system.spawn(props).expect("courier spawn failed");
    if bounded {
        for m in 0..n {
            actor.send(m).await.expect("the actor stopped");
        }
    } else {
        for m in 0..n {
            actor.tell(m);
        }
    }
    finished.await.expect("the actor stopped early");
    let elapsed = start.elapsed();
    actor.stop();
    actor.terminated().await;
    elapsed
}
