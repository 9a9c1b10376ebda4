//! A delivery confirmed while, or shortly after, it is parked is not left
//! parked: a parked record of a delivery the receiver applied invites an
//! operator to `requeue` it, which sends it under a new id and applies it a
//! second time. Each scenario checks the parked store, the dead letters and
//! the parked gauge (through a recorder installed for this binary: the
//! scenarios run one at a time, since reading the recorder resets it), and
//! that a restart does not hand the id out again.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use courier::delivery::{
    DedupInbox, Deliverer, Delivery, DeliveryId, Error, OutboxSettings, Redelivery,
};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;
use courier::{DeadLetter, DeadLetterReason};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::Recording;

const SECOND: Duration = Duration::from_secs(1);

/// One send, then parked when the next would be due (after 1 s).
fn parking() -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed { interval: SECOND },
        max_attempts: Some(1),
        ..OutboxSettings::default()
    }
}

/// This binary's recorder, installed on first use.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        snapshotter
    })
}

/// The `courier_delivery_parked` gauge of `sender`. Reading resets every
/// metric of the recorder.
fn parked_gauge(sender: &str) -> f64 {
    let wanted = format!("sender={sender}");
    let values: HashMap<String, DebugValue> = snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, _, _, _)| key.key().name() == "courier_delivery_parked")
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (labels.join(","), value)
        })
        .collect();
    match values.get(&wanted) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("courier_delivery_parked{{{wanted}}}: {other:?}"),
    }
}

/// Runs one scenario on a current-thread runtime with paused time, after
/// the scenarios before it (they share the recorder).
fn scenario(run: impl std::future::Future<Output = ()>) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one: MutexGuard<'_, ()> = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    snapshotter();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
        .block_on(run);
}

/// Starts a deliverer in `started` and hands it out.
struct Owner {
    name: &'static str,
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<u64>>,
}

impl Actor for Owner {
    type Msg = ReplyTo<Deliverer<u64>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, self.name, journal, parking()).await?);
        Ok(())
    }

    async fn handle(
        &mut self,
        reply: ReplyTo<Deliverer<u64>>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

async fn deliverer(
    system: &ActorSystem,
    name: &'static str,
    journal: &Arc<dyn Journal>,
) -> (ActorRef<ReplyTo<Deliverer<u64>>>, Deliverer<u64>) {
    let journal = Arc::clone(journal);
    let owner = system
        .spawn(Props::new(move || Owner {
            name,
            journal: Arc::clone(&journal),
            out: None,
        }))
        .expect("spawn owner");
    let out = owner.ask(|r| r, SECOND * 5).await.expect("deliverer");
    (owner, out)
}

async fn eventually(what: &str, done: impl FnMut() -> bool) {
    courier_test_support::eventually(what, Duration::from_secs(600), done).await;
}

fn memory() -> Arc<dyn Journal> {
    Arc::new(MemoryStore::memory().expect("memory store"))
}

/// How many dead letters report a parked delivery.
fn parked_letters(letters: &mut tokio::sync::broadcast::Receiver<DeadLetter>) -> usize {
    let mut parked = 0;
    while let Ok(letter) = letters.try_recv() {
        if matches!(&letter.reason, DeadLetterReason::Other(r) if r.contains("parked")) {
            parked += 1;
        }
    }
    parked
}

/// Stops the sending actor, starts it again on the same store, and returns
/// the id its restarted sender hands out next.
async fn next_id_after_restart(
    system: &ActorSystem,
    owner: ActorRef<ReplyTo<Deliverer<u64>>>,
    name: &'static str,
    journal: &Arc<dyn Journal>,
) -> DeliveryId {
    owner.stop();
    owner.terminated().await;
    let (_owner, out) = deliverer(system, name, journal).await;
    out.next_id()
}

#[test]
fn a_delivery_confirmed_while_its_park_is_written_is_not_left_parked() {
    const NAME: &str = "confirmed-while-parking";
    scenario(async {
        let system = ActorSystem::new("test");
        let store = memory();
        let recording = Arc::new(Recording::new(Arc::clone(&store), None));
        let journal: Arc<dyn Journal> = recording.clone();
        let mut letters = system.event_stream().subscribe::<DeadLetter>();
        let (owner, out) = deliverer(&system, NAME, &journal).await;
        // Nobody at the destination: its one attempt goes unacked.
        let id = out.deliver("/user/nobody", |_| 1).await.expect("deliver");
        // The park reads the entry back first; hold it there, and confirm
        // the delivery meanwhile (as its ack would, or `cancel`).
        recording.hold_outbox_reads.store(true, Ordering::SeqCst);
        eventually("the park is reading the entry back", || {
            recording.held_reads.load(Ordering::SeqCst) > 0
        })
        .await;
        assert!(
            out.confirm(id),
            "pending until its parked record is durable"
        );
        recording.hold_outbox_reads.store(false, Ordering::SeqCst);
        tokio::time::sleep(SECOND * 3).await;

        let parked = out.parked().await.expect("parked");
        assert!(
            parked.is_empty(),
            "a confirmed delivery is not parked: {parked:?}"
        );
        assert_eq!(parked_letters(&mut letters), 0, "nor a dead letter");
        assert_eq!(out.unconfirmed(), 0);
        assert_eq!(
            parked_gauge(NAME),
            0.0,
            "the parked gauge is back where it started"
        );
        let next = next_id_after_restart(&system, owner, NAME, &journal).await;
        assert!(next > id, "{id} is not handed out again: next is {next}");
        system.shutdown().await;
    });
}

/// Applies each delivery, and acks it, only `delay` after it came (the
/// inbox is named `"slow"`).
struct Slow {
    journal: Arc<dyn Journal>,
    delay: Duration,
    inbox: Option<DedupInbox>,
    applied: Arc<Mutex<Vec<u64>>>,
}

impl Actor for Slow {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "slow").await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        tokio::time::sleep(self.delay).await;
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        if inbox.check(&d) == courier::delivery::Receipt::New {
            inbox.commit(&d).await?;
            self.applied.lock().expect("lock").push(d.message);
        } else {
            d.send_ack();
        }
        Ok(())
    }
}

#[test]
fn a_delivery_acked_after_it_was_parked_is_not_left_parked() {
    const NAME: &str = "acked-after-parking";
    scenario(async {
        let system = ActorSystem::new("test");
        let journal = memory();
        let mut letters = system.event_stream().subscribe::<DeadLetter>();
        let applied = Arc::new(Mutex::new(Vec::new()));
        let (j, seen) = (Arc::clone(&journal), Arc::clone(&applied));
        system
            .spawn(
                Props::new(move || Slow {
                    journal: Arc::clone(&j),
                    delay: SECOND * 3,
                    inbox: None,
                    applied: Arc::clone(&seen),
                })
                .with_name("slow"),
            )
            .expect("spawn receiver");
        let (owner, out) = deliverer(&system, NAME, &journal).await;
        let id = out.deliver("/user/slow", |_| 7).await.expect("deliver");
        // Its one attempt is unacked when the next would be due: parked.
        eventually("parked", || out.unconfirmed() == 0).await;
        tokio::time::sleep(SECOND / 10).await;
        assert_eq!(out.parked().await.expect("parked").len(), 1);
        assert_eq!(parked_letters(&mut letters), 1, "reported when parked");
        // Then the receiver applies it and acks.
        eventually("applied", || !applied.lock().expect("lock").is_empty()).await;
        tokio::time::sleep(SECOND).await;

        let parked = out.parked().await.expect("parked");
        assert!(
            parked.is_empty(),
            "an applied delivery is not left parked: {parked:?}"
        );
        assert!(
            matches!(out.requeue(id).await, Err(Error::NotParked { .. })),
            "nothing to send twice"
        );
        assert_eq!(
            parked_gauge(NAME),
            0.0,
            "the parked gauge is back where it started"
        );
        assert_eq!(*applied.lock().expect("lock"), [7]);
        let next = next_id_after_restart(&system, owner, NAME, &journal).await;
        assert!(next > id, "{id} is not handed out again: next is {next}");
        system.shutdown().await;
    });
}

/// Keeps each delivery it is sent, unapplied and unacked.
struct Capture {
    kept: Arc<Mutex<Vec<Delivery<u64>>>>,
}

impl Actor for Capture {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.kept.lock().expect("lock").push(d);
        Ok(())
    }
}

/// An ack of a parked delivery that comes after a later delivery told the
/// receiver ids below it are done proves nothing: the receiver acks a late
/// attempt below its watermark as a repeat, without applying it (over a
/// network, that attempt can arrive after the later delivery). So the
/// parked record stays for the operator.
#[test]
fn an_ack_after_a_later_delivery_let_the_receiver_forget_it_leaves_it_parked() {
    const NAME: &str = "acked-after-forgetting";
    scenario(async {
        let system = ActorSystem::new("test");
        let journal = memory();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::clone(&kept);
        system
            .spawn(
                Props::new(move || Capture {
                    kept: Arc::clone(&held),
                })
                .with_name("capture"),
            )
            .expect("spawn receiver");
        let (_owner, out) = deliverer(&system, NAME, &journal).await;
        let first = out.deliver("/user/capture", |_| 7).await.expect("deliver");
        eventually("parked", || out.unconfirmed() == 0).await;
        let second = out.deliver("/user/capture", |_| 8).await.expect("deliver");
        eventually("both sent", || kept.lock().expect("lock").len() == 2).await;
        let (late, later) = {
            let mut kept = kept.lock().expect("lock");
            let later = kept.pop().expect("the second");
            (kept.pop().expect("the first"), later)
        };
        assert_eq!((late.id, later.id), (first, second));
        assert!(
            later.settled_below > first,
            "the later delivery lets the receiver forget the parked one"
        );
        // The receiver takes the first's attempt for a repeat and acks it.
        late.send_ack();
        tokio::time::sleep(SECOND / 10).await;

        let parked: Vec<DeliveryId> = out
            .parked()
            .await
            .expect("parked")
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(
            parked,
            [first],
            "an ack that proves nothing unparks nothing"
        );
        system.shutdown().await;
    });
}
