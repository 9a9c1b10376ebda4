//! System messages (stop, watch, `Terminated`) under concurrent use: on a
//! multi-thread runtime, with senders keeping the mailbox busy, so that a
//! system message finds its actor sometimes handling, sometimes parked on
//! an empty mailbox, sometimes parked because a bounded mailbox is empty
//! after a full one. They travel apart from the mailbox and wake the actor
//! through their own waker (`core/src/system_channel.rs`): a lost wake-up
//! would leave an actor running after its stop (the test hangs), a
//! stranded message would lose a `Terminated`, and a stop that did not
//! overtake would let the actor handle a message sent after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use courier_core::{Actor, ActorRef, BoxError, Context, Mailbox, Props, Terminated};
use support::system;
use tokio::sync::mpsc;

mod support;

const TARGETS: u64 = 16;
const ROUNDS: u64 = 12;

enum Msg {
    Work(u64),
    /// Sent right after a stop, by the same task: must never be handled.
    AfterStop,
}

struct Target {
    handled: Arc<AtomicU64>,
    after_stop: Arc<AtomicBool>,
}

impl Actor for Target {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Msg::Work(n) => {
                self.handled.fetch_add(1, Ordering::Relaxed);
                // Now and then give the worker away mid-handler, so that
                // the senders run while this actor is busy.
                if n % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            Msg::AfterStop => self.after_stop.store(true, Ordering::SeqCst),
        }
        Ok(())
    }
}

/// Watches every target it is told about and reports each `Terminated`.
struct Watcher {
    seen: mpsc::UnboundedSender<String>,
}

impl Actor for Watcher {
    type Msg = ActorRef<Msg>;

    async fn handle(
        &mut self,
        target: ActorRef<Msg>,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        ctx.watch(&target);
        Ok(())
    }

    async fn terminated(
        &mut self,
        t: Terminated,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let _ = self.seen.send(t.path.to_string());
        Ok(())
    }
}

/// `fut`, or a panic naming `stage` after a minute (a hang in CI otherwise
/// only shows as a run out of time).
async fn within<F: std::future::Future>(stage: String, fut: F) -> F::Output {
    match tokio::time::timeout(std::time::Duration::from_secs(60), fut).await {
        Ok(out) => out,
        Err(_) => panic!("hung for 60 s: {stage}"),
    }
}

/// Keeps `target` busy until it stops: `tell` (unbounded) or
/// `send(..).await` (bounded), yielding now and then so that the mailbox
/// also runs empty.
async fn keep_busy(target: ActorRef<Msg>, bounded: bool, salt: u64) {
    for n in 0.. {
        if bounded {
            if target.send(Msg::Work(n)).await.is_err() {
                return;
            }
        } else if target.try_tell(Msg::Work(n)).is_err() {
            return;
        }
        if (n + salt) % 13 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stops_and_watches_reach_busy_and_parked_actors() {
    let system = system();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let watcher = system
        .spawn(Props::new(move || Watcher {
            seen: seen_tx.clone(),
        }))
        .expect("spawn");
    for round in 0..ROUNDS {
        let mut targets = Vec::new();
        let mut flags = Vec::new();
        for t in 0..TARGETS {
            let bounded = t % 2 == 0;
            let mailbox = if bounded {
                Mailbox::bounded(8)
            } else {
                Mailbox::unbounded()
            };
            let handled = Arc::new(AtomicU64::new(0));
            let after_stop = Arc::new(AtomicBool::new(false));
            let props = {
                let (handled, after_stop) = (Arc::clone(&handled), Arc::clone(&after_stop));
                Props::new(move || Target {
                    handled: Arc::clone(&handled),
                    after_stop: Arc::clone(&after_stop),
                })
                .with_mailbox(mailbox)
            };
            let target = system.spawn(props).expect("spawn");
            watcher.tell(target.clone());
            for salt in 0..2 {
                tokio::spawn(keep_busy(target.clone(), bounded, salt + t));
            }
            targets.push(target);
            flags.push((handled, after_stop));
        }
        // Stop each target after it has handled a varying number of
        // messages (sometimes none), from a task of its own, and send a
        // message right behind the stop.
        let stoppers: Vec<_> = targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let target = target.clone();
                let handled = Arc::clone(&flags[i].0);
                let wait_for = (i as u64 * 37 + round * 11) % 200;
                tokio::spawn(async move {
                    while handled.load(Ordering::Relaxed) < wait_for {
                        tokio::task::yield_now().await;
                    }
                    target.stop();
                    let _ = target.try_tell(Msg::AfterStop);
                })
            })
            .collect();
        // Each wait is bounded, so that a hang names its stage.
        for stopper in stoppers {
            within(
                format!("round {round}: a target never handled enough"),
                stopper,
            )
            .await
            .expect("stopper panicked");
        }
        for (i, target) in targets.iter().enumerate() {
            // A stop that did not wake a parked actor hangs here.
            within(
                format!("round {round}, target {i}: stopped, never terminated"),
                target.terminated(),
            )
            .await;
        }
        let mut expected: Vec<String> = targets.iter().map(|t| t.path().to_string()).collect();
        let mut got = Vec::new();
        while got.len() < expected.len() {
            // A watch stranded in a closed system channel hangs here.
            let next = within(
                format!(
                    "round {round}: {} of {} Terminated arrived",
                    got.len(),
                    expected.len()
                ),
                seen.recv(),
            );
            got.push(next.await.expect("the watcher lives"));
        }
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "round {round}: one Terminated per target");
        for (i, (_, after_stop)) in flags.iter().enumerate() {
            assert!(
                !after_stop.load(Ordering::SeqCst),
                "round {round}, target {i}: a message sent after the stop was handled"
            );
        }
    }
    // Nothing beyond one Terminated per target: every watch was answered
    // once.
    watcher.stop();
    watcher.terminated().await;
    assert!(seen.try_recv().is_err(), "a Terminated came twice");
    system.shutdown().await;
}
