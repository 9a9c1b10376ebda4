//! Pipelined delivery: concurrent `deliver` calls of one sender and
//! `deliver_all` batches share store writes, and still lose nothing, apply
//! nothing twice, never reuse an id and never send what a failed write did
//! not make durable. The interleavings of concurrent callers, of writes
//! that complete out of order and of failed writes are explored under
//! fixed seeds (printed on failure), on tokio's current-thread runtime with
//! paused time, so each seed replays the same schedule.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::testkit::History;
use courier::delivery::{
    Ack, AtLeastOnce, DedupInbox, Deliverer, Delivery, DeliveryId, Error, ExactlyOnce,
    OutboxSettings, Receipt, Redelivery, SenderId,
};
use courier::persistence::{Journal, MemoryStore, WriteBatch};
use courier::prelude::*;
use courier_test_support::Rng;
use courier_test_support::ledger::{Ledger, ledger};
use support::Recording;

const SECOND: Duration = Duration::from_secs(1);

fn settings(max_unconfirmed: usize) -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed { interval: SECOND },
        max_unconfirmed,
        ..OutboxSettings::default()
    }
}

/// Starts a deliverer in `started` and hands it out.
struct Owner {
    journal: Arc<dyn Journal>,
    settings: OutboxSettings,
    out: Option<Deliverer<u64>>,
}

impl Actor for Owner {
    type Msg = ReplyTo<Deliverer<u64>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, "orders", journal, self.settings.clone()).await?);
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
    journal: &Arc<dyn Journal>,
    settings: OutboxSettings,
) -> (ActorRef<ReplyTo<Deliverer<u64>>>, Deliverer<u64>) {
    let journal = Arc::clone(journal);
    let owner = system
        .spawn(Props::new(move || Owner {
            journal: Arc::clone(&journal),
            settings: settings.clone(),
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

#[tokio::test(start_paused = true)]
async fn deliver_all_numbers_a_batch_consecutively_in_one_write_and_delivers_each_once() {
    let system = ActorSystem::new("test");
    let store = memory();
    let recording = Arc::new(Recording::new(Arc::clone(&store), None));
    let journal: Arc<dyn Journal> = recording.clone();
    system
        .spawn(Ledger::<u64>::props(&store).with_name("ledger"))
        .expect("spawn ledger");
    let (_owner, out) = deliverer(&system, &journal, settings(1000)).await;
    let first = out.deliver("/user/ledger", |_| 0).await.expect("deliver");
    let before = recording.writes().len();
    let ids = out
        .deliver_all("/user/ledger", 1..=100)
        .await
        .expect("deliver_all");
    let expected: Vec<DeliveryId> = (first.get() + 1..=first.get() + 100)
        .map(DeliveryId)
        .collect();
    assert_eq!(ids, expected);
    // The 100 entries went to the store as one write (with, at most, the
    // confirm of the first delivery riding along).
    let batch_writes: Vec<usize> = recording.writes()[before..]
        .iter()
        .copied()
        .filter(|n| *n >= 100)
        .collect();
    assert_eq!(batch_writes.len(), 1, "writes: {:?}", recording.writes());
    eventually("all confirmed", || out.unconfirmed() == 0).await;
    let report = History::from_ledgers(0..=100, ledger(store.as_ref()).await).check();
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        out.deliver_all("/user/ledger", []).await.expect("empty"),
        []
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn deliver_all_accepts_all_of_a_batch_or_none_of_it() {
    let system = ActorSystem::new("test");
    let journal = memory();
    // Nobody at the destination: nothing is confirmed.
    let (_owner, out) = deliverer(&system, &journal, settings(10)).await;
    out.deliver_all("/user/nobody", 1..=4).await.expect("fits");
    let next = out.next_id();
    let refused = out.deliver_all("/user/nobody", 5..=11).await;
    assert!(
        matches!(
            refused,
            Err(Error::OutboxFull {
                max_unconfirmed: 10,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(out.next_id(), next, "no id was used");
    assert_eq!(out.unconfirmed(), 4);
    let ids = out
        .deliver_all("/user/nobody", 5..=10)
        .await
        .expect("fits exactly");
    assert_eq!(ids.first().copied(), Some(next));
    assert_eq!(out.unconfirmed(), 10);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_fails_every_caller_in_its_group_and_sends_none_of_them() {
    const CALLERS: u64 = 8;
    let system = ActorSystem::new("test");
    let store = memory();
    let recording = Arc::new(Recording::new(Arc::clone(&store), None));
    let journal: Arc<dyn Journal> = recording.clone();
    system
        .spawn(Ledger::<u64>::props(&store).with_name("ledger"))
        .expect("spawn ledger");
    let (_owner, out) = deliverer(&system, &journal, settings(1000)).await;
    recording.fail.store(true, Ordering::Relaxed);
    let before = recording.writes().len();
    // On the current-thread runtime the first caller's write goes straight
    // to the store (no other delivery is in flight), and the others queue
    // theirs while it is in flight: the sender's writer takes them as one
    // group, one write.
    let callers: Vec<_> = (1..=CALLERS)
        .map(|n| {
            let out = out.clone();
            tokio::spawn(async move { out.deliver("/user/ledger", |_| n).await })
        })
        .collect();
    for caller in callers {
        let result = caller.await.expect("caller");
        assert!(
            matches!(result, Err(Error::Store { .. })),
            "every caller fails with a typed error: {result:?}"
        );
    }
    let writes = recording.writes()[before..].to_vec();
    assert_eq!(
        writes,
        [1, CALLERS as usize - 1],
        "the first alone, then one write for the group"
    );
    recording.fail.store(false, Ordering::Relaxed);
    // Ticks find out that none of them is durable; none is ever sent.
    eventually("settled", || out.unconfirmed() == 0).await;
    tokio::time::sleep(SECOND * 5).await;
    assert_eq!(ledger(store.as_ref()).await, Vec::<u64>::new());
    // The next delivery goes through.
    out.deliver("/user/ledger", |_| 100).await.expect("deliver");
    eventually("confirmed", || out.unconfirmed() == 0).await;
    assert_eq!(ledger(store.as_ref()).await, [100]);
    system.shutdown().await;
}

/// One seed of concurrent callers on one sender: several tasks deliver one
/// at a time or in batches, writes fail at random and complete out of
/// order, the sender restarts twice; returns what must hold.
async fn interleaving(seed: u64) {
    const TASKS: u64 = 6;
    const PER_TASK: u64 = 30;
    let system = ActorSystem::new("test");
    let store = memory();
    let recording = Arc::new(Recording::new(Arc::clone(&store), Some(seed)));
    recording.fail_percent.store(15, Ordering::Relaxed);
    let journal: Arc<dyn Journal> = recording.clone();
    system
        .spawn(Ledger::<u64>::props(&store).with_name("ledger"))
        .expect("spawn ledger");
    let mut rng = Rng::new(seed);
    // Every id handed out with Ok, with its payload.
    let mut given: BTreeMap<DeliveryId, u64> = BTreeMap::new();
    let mut accepted = BTreeSet::new();
    let mut tried = BTreeSet::new();
    for round in 0..3u64 {
        let (owner, out) = deliverer(&system, &journal, settings(64)).await;
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let out = out.clone();
            let pauses: Vec<u64> = (0..PER_TASK).map(|_| rng.below(3)).collect();
            let batch = rng.below(3) == 0;
            tasks.push(tokio::spawn(async move {
                let mut results = Vec::new();
                let base = 1 + round * TASKS * PER_TASK + task * PER_TASK;
                if batch {
                    let payloads: Vec<u64> = (base..base + PER_TASK).collect();
                    for chunk in payloads.chunks(5) {
                        let got = out.deliver_all("/user/ledger", chunk.to_vec()).await;
                        match got {
                            Ok(ids) => {
                                results.extend(chunk.iter().zip(ids).map(|(p, id)| (*p, Some(id))))
                            }
                            Err(_) => results.extend(chunk.iter().map(|p| (*p, None))),
                        }
                    }
                } else {
                    for (n, pause) in pauses.into_iter().enumerate() {
                        for _ in 0..pause {
                            tokio::task::yield_now().await;
                        }
                        let payload = base + n as u64;
                        let got = out.deliver("/user/ledger", |_| payload).await;
                        results.push((payload, got.ok()));
                    }
                }
                results
            }));
        }
        for task in tasks {
            for (payload, id) in task.await.expect("task") {
                tried.insert(payload);
                if let Some(id) = id {
                    accepted.insert(payload);
                    if let Some(earlier) = given.insert(id, payload) {
                        panic!("seed {seed}: id {id} given to {earlier} and to {payload}");
                    }
                }
            }
        }
        // Restart the sender part-way through its confirmations.
        for _ in 0..rng.below(20) {
            tokio::task::yield_now().await;
        }
        owner.stop();
        owner.terminated().await;
    }
    // Heal, restart, drain.
    recording.fail_percent.store(0, Ordering::Relaxed);
    let (_owner, out) = deliverer(&system, &journal, settings(64)).await;
    eventually(&format!("seed {seed}: drained"), || out.unconfirmed() == 0).await;
    // Every accepted payload applied once; a failed one (whose write did
    // not land) never.
    let mut history = History::new();
    for payload in &tried {
        if accepted.contains(payload) {
            history.sent(*payload);
        }
    }
    for payload in ledger(store.as_ref()).await {
        history.applied(payload);
    }
    let report = history.check();
    assert!(report.is_clean(), "seed {seed}: {report}");
    system.shutdown().await;
}

#[test]
fn concurrent_callers_under_seeded_interleavings_lose_nothing_and_never_reuse_an_id() {
    let seeds: Vec<u64> = match std::env::var("COURIER_PIPELINE_SEED") {
        Ok(seed) => vec![seed.parse().expect("COURIER_PIPELINE_SEED is a number")],
        Err(_) => (1..=24).collect(),
    };
    for seed in seeds {
        println!("seed {seed} (replay with COURIER_PIPELINE_SEED={seed})");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime")
            .block_on(interleaving(seed));
    }
}

/// Delivers each batch it is given through its `AtLeastOnce` field.
struct Feed {
    out: AtLeastOnce<u64>,
}

impl Actor for Feed {
    type Msg = (Vec<u64>, ReplyTo<Vec<DeliveryId>>);

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.out.start(ctx).await?;
        Ok(())
    }

    async fn handle(
        &mut self,
        (batch, reply): (Vec<u64>, ReplyTo<Vec<DeliveryId>>),
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        reply.reply(self.out.deliver_all("/user/ledger", batch).await?);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn at_least_once_delivers_a_batch_once_started() {
    let system = ActorSystem::new("test");
    let journal = memory();
    system
        .spawn(Ledger::<u64>::props(&journal).with_name("ledger"))
        .expect("spawn ledger");
    let out = AtLeastOnce::new("feed", Arc::clone(&journal), settings(100));
    let early = out.deliver_all("/user/ledger", [1]).await;
    assert!(matches!(early, Err(Error::NotStarted { .. })), "{early:?}");
    let field = out.clone();
    let feed = system
        .spawn(Props::new(move || Feed { out: field.clone() }))
        .expect("spawn feed");
    let ids = feed
        .ask(|r| (vec![1, 2, 3], r), SECOND)
        .await
        .expect("batch");
    assert_eq!(ids, [DeliveryId(1), DeliveryId(2), DeliveryId(3)]);
    eventually("confirmed", || out.unconfirmed() == 0).await;
    let report = History::from_ledgers(1..=3, ledger(journal.as_ref()).await).check();
    assert!(report.is_clean(), "{report}");
    system.shutdown().await;
}

/// Collects the acks it gets.
struct Acks(Arc<Mutex<Vec<DeliveryId>>>);

impl Actor for Acks {
    type Msg = Ack;

    async fn handle(&mut self, ack: Ack, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.0.lock().expect("lock").push(ack.id);
        Ok(())
    }
}

/// Commits deliveries 1..=`n` of one sender to one inbox from `n` tasks at
/// once; returns each task's result, the writes made, the acks seen.
async fn commit_concurrently(
    n: u64,
    fail: bool,
) -> (
    Vec<Result<Receipt, Error>>,
    Vec<usize>,
    Vec<DeliveryId>,
    Arc<DedupInbox>,
) {
    let system = ActorSystem::new("test");
    let recording = Arc::new(Recording::new(memory(), None));
    let journal: Arc<dyn Journal> = recording.clone();
    let inbox = Arc::new(DedupInbox::open(journal, "inbox").await.expect("open"));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&acked);
    let ack_to = system
        .spawn(Props::new(move || Acks(Arc::clone(&seen))))
        .expect("spawn acks");
    let sender = SenderId {
        name: "s".into(),
        incarnation: uuid::Uuid::from_u128(1),
    };
    recording.fail.store(fail, Ordering::Relaxed);
    let before = recording.writes().len();
    // On the current-thread runtime every task queues its commit before
    // the inbox's commit task runs: one group.
    let tasks: Vec<_> = (1..=n)
        .map(|id| {
            let inbox = Arc::clone(&inbox);
            let delivery = Delivery {
                sender: sender.clone(),
                id: DeliveryId(id),
                attempt: 1,
                settled_below: DeliveryId(1),
                expected_inbox: None,
                message: id,
                ack_to: ack_to.clone(),
            };
            tokio::spawn(async move {
                inbox
                    .process(&delivery, |m| {
                        WriteBatch::new().put("effects", m.to_be_bytes().to_vec(), Vec::new())
                    })
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    tokio::time::sleep(SECOND).await;
    let writes = recording.writes()[before..].to_vec();
    let acks = acked.lock().expect("lock").clone();
    system.shutdown().await;
    (results, writes, acks, inbox)
}

fn delivery_of(id: u64) -> Delivery<u64> {
    let system = ActorSystem::new("probe");
    let ack_to = system
        .spawn(Props::new(|| Acks(Arc::default())))
        .expect("spawn");
    Delivery {
        sender: SenderId {
            name: "s".into(),
            incarnation: uuid::Uuid::from_u128(1),
        },
        id: DeliveryId(id),
        attempt: 2,
        settled_below: DeliveryId(1),
        expected_inbox: None,
        message: id,
        ack_to,
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_commits_of_one_inbox_share_one_write() {
    const N: u64 = 8;
    let (results, writes, mut acks, inbox) = commit_concurrently(N, false).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(Receipt::New))),
        "{results:?}"
    );
    // One write: 8 effects and the watermark (ids 1..=8 in order).
    assert_eq!(writes, [N as usize + 1]);
    acks.sort_unstable();
    assert_eq!(acks, (1..=N).map(DeliveryId).collect::<Vec<_>>());
    for id in 1..=N {
        assert_eq!(inbox.check(&delivery_of(id)), Receipt::Duplicate);
    }
    assert_eq!(inbox.kept(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_shared_inbox_write_applies_and_acks_none_of_its_deliveries() {
    const N: u64 = 8;
    let (results, writes, acks, inbox) = commit_concurrently(N, true).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::Store { .. }))),
        "{results:?}"
    );
    assert_eq!(writes, [N as usize + 1]);
    assert_eq!(acks, []);
    for id in 1..=N {
        assert_eq!(inbox.check(&delivery_of(id)), Receipt::New);
    }
}

#[tokio::test(start_paused = true)]
async fn a_clone_kept_past_its_senders_stop_writes_nothing_and_takes_no_id_of_the_restarted_sender()
{
    let system = ActorSystem::new("test");
    let store = memory();
    system
        .spawn(Ledger::<u64>::props(&store).with_name("ledger"))
        .expect("spawn ledger");
    let (owner, old) = deliverer(&system, &store, settings(100)).await;
    old.deliver("/user/ledger", |_| 1).await.expect("deliver");
    eventually("confirmed", || old.unconfirmed() == 0).await;
    owner.stop();
    owner.terminated().await;
    // The owner starts again under the same sender name; a clone of the
    // stopped sender's deliverer is still held somewhere (another task).
    let (_owner, new) = deliverer(&system, &store, settings(100)).await;
    let late = old.deliver("/user/ledger", |_| 2).await;
    assert!(
        matches!(late, Err(Error::SenderStopped { .. })),
        "a stopped sender writes nothing: {late:?}"
    );
    let id = new.deliver("/user/ledger", |_| 3).await.expect("deliver");
    eventually("confirmed", || new.unconfirmed() == 0).await;
    // Had the stopped clone written and sent 2 under the id the restarted
    // sender gives 3, the receiver would take 3 for a duplicate of it.
    assert_eq!(ledger(store.as_ref()).await, [1, 3], "3 went out as {id}");
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_resend_racing_its_cancel_never_settles_an_id_that_a_restart_hands_out_again() {
    let system = ActorSystem::new("test");
    let store = memory();
    let recording = Arc::new(Recording::new(Arc::clone(&store), None));
    let journal: Arc<dyn Journal> = recording.clone();
    let (owner, out) = deliverer(&system, &journal, settings(100)).await;
    // 1 waits for its receiver, which is not there yet.
    let first = out.deliver("/user/ledger", |_| 1).await.expect("deliver");
    // 2's write fails: its id is skipped once a tick finds it not durable.
    recording.fail.store(true, Ordering::Relaxed);
    let failed = out.deliver("/user/ledger", |_| 2).await;
    assert!(matches!(failed, Err(Error::Store { .. })), "{failed:?}");
    recording.fail.store(false, Ordering::Relaxed);
    eventually("2 settled as never written", || out.unconfirmed() == 1).await;
    // A tick reads 1 back to send it again; meanwhile the sender cancels it.
    recording.hold_outbox_reads.store(true, Ordering::SeqCst);
    system
        .spawn(Ledger::<u64>::props(&store).with_name("ledger"))
        .expect("spawn ledger");
    eventually("a resend is reading", || {
        recording.held_reads.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(out.cancel(first), "1 was pending");
    tokio::time::sleep(SECOND / 10).await;
    recording.hold_outbox_reads.store(false, Ordering::SeqCst);
    tokio::time::sleep(SECOND * 3).await;
    // The sender restarts, and delivers 3.
    owner.stop();
    owner.terminated().await;
    let (_owner, out) = deliverer(&system, &journal, settings(100)).await;
    let id = out.deliver("/user/ledger", |_| 3).await.expect("deliver");
    eventually("3 confirmed", || out.unconfirmed() == 0).await;
    let applied = ledger(store.as_ref()).await;
    // The cancelled 1 is not sent again, and 3 is applied: had the resend
    // of 1 gone out telling the receiver that every id below 3 was settled,
    // the restarted sender's next id, 2, would be taken for a duplicate.
    assert_eq!(applied, [3], "3 went out as {id}");
    system.shutdown().await;
}

/// A receiver that makes its `ExactlyOnce` in its factory (each incarnation
/// opens the inbox afresh) and streams deliveries with `submit`; `Fail`
/// makes it fail, so its supervisor restarts it.
enum Streamed {
    Deliver(Delivery<u64>),
    Fail,
}

struct Streaming {
    inbox: ExactlyOnce,
    receipts: Arc<Mutex<Vec<(DeliveryId, Receipt)>>>,
}

impl Actor for Streaming {
    type Msg = Streamed;

    async fn handle(&mut self, msg: Streamed, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Streamed::Deliver(d) => {
                let effect = |m: &u64| {
                    WriteBatch::new().put("effects", m.to_be_bytes().to_vec(), Vec::new())
                };
                let submitted = self.inbox.submit(&d, effect).await?;
                let receipts = Arc::clone(&self.receipts);
                let id = d.id;
                tokio::spawn(async move {
                    if let Ok(receipt) = submitted.await {
                        receipts.lock().expect("lock").push((id, receipt));
                    }
                });
                Ok(())
            }
            Streamed::Fail => Err("failing on purpose".into()),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_receiver_does_not_apply_again_a_delivery_whose_commit_was_in_flight() {
    let system = ActorSystem::new("test");
    let recording = Arc::new(Recording::new(memory(), None));
    let journal: Arc<dyn Journal> = recording.clone();
    let receipts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&receipts);
    let receiver = system
        .spawn(Props::new(move || Streaming {
            inbox: ExactlyOnce::new("streaming", Arc::clone(&journal)),
            receipts: Arc::clone(&seen),
        }))
        .expect("spawn receiver");
    // The inbox is open (delivery 1 applied); delivery 2 is submitted and
    // its commit is in flight, not yet landed.
    receiver.tell(Streamed::Deliver(delivery_of(1)));
    eventually("1 applied", || receipts.lock().expect("lock").len() == 1).await;
    recording.hold_writes.store(true, Ordering::SeqCst);
    receiver.tell(Streamed::Deliver(delivery_of(2)));
    eventually("the commit of 2 in flight", || {
        recording.held_writes.load(Ordering::SeqCst) == 1
    })
    .await;
    // The receiver restarts meanwhile, and 2 comes again (its ack had not
    // come in time): the new incarnation opens the inbox afresh.
    receiver.tell(Streamed::Fail);
    receiver.tell(Streamed::Deliver(delivery_of(2)));
    tokio::time::sleep(SECOND).await;
    recording.hold_writes.store(false, Ordering::SeqCst);
    eventually("all answered", || receipts.lock().expect("lock").len() == 3).await;
    let receipts = receipts.lock().expect("lock").clone();
    let applied = receipts
        .iter()
        .filter(|(id, r)| *id == DeliveryId(2) && *r == Receipt::New)
        .count();
    assert_eq!(
        applied, 1,
        "delivery 2 applied {applied} times: {receipts:?}"
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_delivery_refused_as_for_a_lost_inbox_is_refused_before_its_effect_is_called() {
    let inbox = ExactlyOnce::new("refusing", memory());
    let mut delivery = delivery_of(1);
    // Its sender had acks from another inbox identity: this one lost them.
    delivery.expected_inbox = Some(uuid::Uuid::from_u128(7));
    let mut called = false;
    let refused = inbox
        .process(&delivery, |_| {
            called = true;
            WriteBatch::new()
        })
        .await;
    assert!(
        matches!(refused, Err(Error::InboxLost { .. })),
        "{refused:?}"
    );
    assert!(!called, "the effect of a refused delivery was called");
    let mut called = false;
    let refused = match inbox
        .submit(&delivery, |_| {
            called = true;
            WriteBatch::new()
        })
        .await
    {
        Ok(submitted) => submitted.await,
        Err(e) => Err(e),
    };
    assert!(
        matches!(refused, Err(Error::InboxLost { .. })),
        "{refused:?}"
    );
    assert!(!called, "the effect of a refused delivery was called");
}
