//! The silent-loss paths, each through the public API: concurrent clones
//! of one deliverer, writes that finish out of order, a receiver whose
//! write fails and resumes, misaddressed and unreachable destinations,
//! redelivery timing, and deliveries that are being parked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::testkit::{ChaosJournal, History};
use courier::delivery::{
    DedupInbox, Deliverer, Delivery, DeliveryId, Error, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;
use courier_test_support::ledger::{Ledger, ledger};
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

fn memory() -> Arc<dyn Journal> {
    Arc::new(MemoryStore::memory().expect("memory store"))
}

fn settings(interval: Duration) -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed { interval },
        ..OutboxSettings::default()
    }
}

/// Starts a deliverer in `started` and hands it out.
struct Owner {
    name: &'static str,
    journal: Arc<dyn Journal>,
    settings: OutboxSettings,
    out: Option<Deliverer<u64>>,
}

impl Actor for Owner {
    type Msg = ReplyTo<Deliverer<u64>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = Deliverer::start(
            ctx,
            self.name,
            Arc::clone(&self.journal),
            self.settings.clone(),
        )
        .await?;
        self.out = Some(out);
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
    name: &'static str,
    settings: OutboxSettings,
) -> Deliverer<u64> {
    let journal = Arc::clone(journal);
    let owner = system
        .spawn(Props::new(move || Owner {
            name,
            journal: Arc::clone(&journal),
            settings: settings.clone(),
            out: None,
        }))
        .expect("spawn owner");
    owner.ask(|r| r, SECOND * 5).await.expect("deliverer")
}

/// Waits (on whatever clock the test runs) until `done` holds.
async fn eventually(what: &str, done: impl FnMut() -> bool) {
    courier_test_support::eventually(what, Duration::from_secs(60), done).await;
}

/// Every number in `expected` in the ledger exactly once, nothing else.
async fn assert_exactly_once(journal: &dyn Journal, expected: impl IntoIterator<Item = u64>) {
    let report = History::from_ledgers(expected, ledger(journal).await).check();
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_sharing_one_deliverer_lose_nothing_on_a_perfect_link() {
    const TOTAL: u64 = 10_000;
    const TASKS: u64 = 8;
    let system = ActorSystem::new("test");
    let journal = memory();
    system
        .spawn(Ledger::<u64>::props(&journal).with_name("ledger"))
        .expect("spawn ledger");
    let out = deliverer(&system, &journal, "orders", settings(SECOND / 5)).await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = task + 1;
            while n <= TOTAL {
                out.deliver("/user/ledger", |_| n).await.expect("deliver");
                n += TASKS;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    eventually("every delivery confirmed", || out.unconfirmed() == 0).await;
    assert_exactly_once(journal.as_ref(), 1..=TOTAL).await;
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_second_prepared_delivery_sent_first_does_not_settle_the_first() {
    let system = ActorSystem::new("test");
    let journal = memory();
    system
        .spawn(Ledger::<u64>::props(&journal).with_name("ledger"))
        .expect("spawn ledger");
    let out = deliverer(&system, &journal, "es-sender", settings(SECOND)).await;
    // An event-sourced sender's two commands: the second one's persist
    // finishes first.
    let first = out.prepare("/user/ledger", |_| 1).expect("prepare");
    let second = out.prepare("/user/ledger", |_| 2).expect("prepare");
    journal.write(second.writes()).await.expect("write");
    second.send();
    tokio::time::sleep(SECOND / 10).await;
    journal.write(first.writes()).await.expect("write");
    first.send();
    eventually("both confirmed", || out.unconfirmed() == 0).await;
    assert_exactly_once(journal.as_ref(), [1, 2]).await;
}

#[tokio::test(start_paused = true)]
async fn a_prepared_delivery_dropped_after_its_write_landed_is_still_sent() {
    let system = ActorSystem::new("test");
    let journal = memory();
    system
        .spawn(Ledger::<u64>::props(&journal).with_name("ledger"))
        .expect("spawn ledger");
    let out = deliverer(&system, &journal, "doubtful", settings(SECOND)).await;
    let lost_reply = out.prepare("/user/ledger", |_| 1).expect("prepare");
    // The write reached the disk, but the caller saw it fail (a timeout, a
    // lost connection) and dropped the delivery.
    journal.write(lost_reply.writes()).await.expect("write");
    drop(lost_reply);
    out.deliver("/user/ledger", |_| 2).await.expect("deliver");
    eventually("both confirmed", || out.unconfirmed() == 0).await;
    assert_exactly_once(journal.as_ref(), [1, 2]).await;
    // And one whose write never happened is skipped, not resent.
    let never = out.prepare("/user/ledger", |_| 3).expect("prepare");
    drop(never);
    out.deliver("/user/ledger", |_| 4).await.expect("deliver");
    eventually("settled", || out.unconfirmed() == 0).await;
    assert_exactly_once(journal.as_ref(), [1, 2, 4]).await;
}

/// Applies in memory; its inbox writes go through a journal that fails on
/// demand. Resumed after a failure, so its inbox in memory is what it was.
struct Fragile {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    applied: Arc<Mutex<Vec<u64>>>,
}

impl Actor for Fragile {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if self.inbox.is_none() {
            self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "fragile").await?);
        }
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        match inbox.check(&d) {
            Receipt::Duplicate => d.send_ack(),
            Receipt::New => {
                inbox.commit(&d).await?;
                self.applied.lock().expect("lock").push(d.message);
            }
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_receiver_whose_inbox_write_fails_and_resumes_applies_the_redelivery() {
    let system = ActorSystem::new("test");
    let journal = memory();
    let chaos = Arc::new(ChaosJournal::new(Arc::clone(&journal), 0.0, 0.0, 7));
    let applied: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (inner, seen) = (Arc::clone(&chaos) as Arc<dyn Journal>, Arc::clone(&applied));
    system
        .spawn(
            Props::new(move || Fragile {
                journal: Arc::clone(&inner),
                inbox: None,
                applied: Arc::clone(&seen),
            })
            .with_name("fragile")
            .with_supervisor(SupervisorStrategy::resume()),
        )
        .expect("spawn");
    let out = deliverer(&system, &journal, "to-fragile", settings(SECOND)).await;
    // The inbox is open; from now on its writes fail.
    tokio::time::sleep(SECOND / 10).await;
    chaos.set_failures(1.0, 0.0);
    out.deliver("/user/fragile", |_| 1).await.expect("deliver");
    eventually("the inbox write failed", || chaos.failures() > 0).await;
    chaos.set_failures(0.0, 0.0);
    eventually("confirmed", || out.unconfirmed() == 0).await;
    assert_eq!(*applied.lock().expect("lock"), [1]);
}

/// An actor that takes plain numbers, not deliveries.
struct Plain;

impl Actor for Plain {
    type Msg = u64;

    async fn handle(&mut self, _: u64, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_destination_that_can_never_take_the_delivery_is_refused_at_once() {
    let system = ActorSystem::new("test");
    let journal = memory();
    system
        .spawn(Props::new(|| Plain).with_name("plain"))
        .expect("spawn");
    let out = deliverer(&system, &journal, "misaddressed", settings(SECOND)).await;
    for destination in [
        "/user/plain",
        "http://example.com/user/x",
        "courier://other@127.0.0.1:1/user/x",
        "no-slash",
    ] {
        let refused = out.deliver(destination, |_| 1).await;
        assert!(
            matches!(refused, Err(Error::InvalidDestination { .. })),
            "{destination}: {refused:?}"
        );
    }
    assert_eq!(out.unconfirmed(), 0);
    assert_eq!(out.next_id(), DeliveryId(1), "no id was used");
}

#[tokio::test(start_paused = true)]
async fn a_destination_found_to_take_another_type_later_is_parked_with_the_cause() {
    let system = ActorSystem::new("test");
    let journal = memory();
    let out = deliverer(&system, &journal, "later", settings(SECOND)).await;
    // Nobody there yet: accepted, retried.
    let id = out.deliver("/user/late", |_| 1).await.expect("deliver");
    tokio::time::sleep(SECOND * 2).await;
    let pending = out.pending(None, 10);
    assert_eq!(pending.len(), 1);
    let error = pending[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("no actor at /user/late"), "{error}");
    // Then an actor of another type takes the name: parked at the next try.
    system
        .spawn(Props::new(|| Plain).with_name("late"))
        .expect("spawn");
    eventually("parked", || out.unconfirmed() == 0).await;
    let parked = out.parked().await.expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].id, id);
    assert!(parked[0].reason.contains("takes"), "{}", parked[0].reason);
}

/// Records when each attempt arrives; never acks.
struct Deaf {
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Actor for Deaf {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, _: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.arrivals.lock().expect("lock").push(Instant::now());
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn redelivery_comes_within_one_and_a_half_intervals() {
    let system = ActorSystem::new("test");
    let journal = memory();
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = Arc::clone(&arrivals);
    system
        .spawn(
            Props::new(move || Deaf {
                arrivals: Arc::clone(&seen),
            })
            .with_name("deaf"),
        )
        .expect("spawn");
    let out = deliverer(&system, &journal, "timely", settings(SECOND)).await;
    // Start off the tick grid, as a real delivery would.
    tokio::time::sleep(SECOND / 3).await;
    out.deliver("/user/deaf", |_| 1).await.expect("deliver");
    tokio::time::sleep(SECOND * 20).await;
    let arrivals = arrivals.lock().expect("lock").clone();
    assert!(arrivals.len() >= 13, "{} attempts", arrivals.len());
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= SECOND && gap <= SECOND * 3 / 2,
            "gap of {gap:?} for a 1 s interval"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn purging_an_id_that_was_never_parked_is_not_parked() {
    let system = ActorSystem::new("test");
    let journal = memory();
    let out = deliverer(&system, &journal, "purger", settings(SECOND)).await;
    let result = out.purge(DeliveryId(42)).await;
    assert!(matches!(result, Err(Error::NotParked { .. })), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn a_delivery_being_parked_stays_unconfirmed_until_its_parked_record_is_written() {
    let system = ActorSystem::new("test");
    let journal = memory();
    let chaos = Arc::new(ChaosJournal::new(Arc::clone(&journal), 0.0, 0.0, 3));
    let chaotic: Arc<dyn Journal> = chaos.clone();
    let out = deliverer(
        &system,
        &chaotic,
        "parker",
        OutboxSettings {
            max_attempts: Some(1),
            ..settings(SECOND)
        },
    )
    .await;
    out.deliver("/user/nobody", |_| 1).await.expect("deliver");
    // Every write fails from now on: the parked record cannot be written.
    chaos.set_failures(1.0, 0.0);
    tokio::time::sleep(SECOND * 5).await;
    assert_eq!(out.unconfirmed(), 1, "neither unconfirmed nor parked");
    assert!(out.parked().await.expect("parked").is_empty());
    chaos.set_failures(0.0, 0.0);
    eventually("parked", || out.unconfirmed() == 0).await;
    assert_eq!(out.parked().await.expect("parked").len(), 1);
}

/// A receiver whose effect is a ledger entry written with its inbox record;
/// while `ack` is off it applies without acking (acks lost on the way).
struct Wipeable {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    ack: Arc<std::sync::atomic::AtomicBool>,
    adopt: bool,
}

impl Actor for Wipeable {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let journal = Arc::clone(&self.journal);
        self.inbox = Some(if self.adopt {
            DedupInbox::open_adopting(journal, "wipeable").await?
        } else {
            DedupInbox::open(journal, "wipeable").await?
        });
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        let ack = self.ack.load(std::sync::atomic::Ordering::SeqCst);
        if inbox.check(&d) == Receipt::Duplicate {
            if ack {
                d.send_ack();
            }
            return Ok(());
        }
        let write = inbox.prepare(&d)?;
        let mut key = d.message.to_be_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::now_v7().as_bytes());
        let mut batch = courier::persistence::WriteBatch::new().put("applied", key, Vec::new());
        batch.extend(write.writes());
        self.journal.write(batch).await?;
        if ack {
            write.ack();
        } else {
            write.apply();
        }
        Ok(())
    }
}

async fn spawn_wipeable(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
    ack: &Arc<std::sync::atomic::AtomicBool>,
    adopt: bool,
) -> ActorRef<Delivery<u64>> {
    let (journal, ack) = (Arc::clone(journal), Arc::clone(ack));
    system
        .spawn(
            Props::new(move || Wipeable {
                journal: Arc::clone(&journal),
                inbox: None,
                ack: Arc::clone(&ack),
                adopt,
            })
            .with_name("wipeable"),
        )
        .expect("spawn receiver")
}

/// Deletes every record of the receiver's inbox, identity included.
async fn wipe_inbox(journal: &Arc<dyn Journal>) {
    let mut batch = courier::persistence::WriteBatch::new();
    for (key, _) in journal
        .kv_scan("courier.inbox/wipeable", None, 100_000)
        .await
        .expect("scan")
    {
        batch = batch.delete("courier.inbox/wipeable", key);
    }
    batch = batch.delete("courier.inbox-id", b"wipeable".to_vec());
    journal.write(batch).await.expect("wipe");
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_lost_its_inbox_refuses_instead_of_applying_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let system = ActorSystem::new("test");
    let journal = memory();
    let ack = Arc::new(AtomicBool::new(true));
    let receiver = spawn_wipeable(&system, &journal, &ack, false).await;
    let out = deliverer(&system, &journal, "to-wipeable", settings(SECOND)).await;
    let mut history = History::new();
    for n in 1..=20 {
        out.deliver("/user/wipeable", |_| n).await.expect("deliver");
        history.sent(n);
    }
    eventually("confirmed", || out.unconfirmed() == 0).await;
    // Applied, but the acks are lost: the sender keeps redelivering.
    ack.store(false, Ordering::SeqCst);
    for n in 21..=30 {
        out.deliver("/user/wipeable", |_| n).await.expect("deliver");
        history.sent(n);
    }
    tokio::time::sleep(SECOND * 3).await;
    // The receiver's inbox is lost (deleted, an old backup restored).
    receiver.stop();
    receiver.terminated().await;
    wipe_inbox(&journal).await;
    ack.store(true, Ordering::SeqCst);
    let receiver = spawn_wipeable(&system, &journal, &ack, false).await;
    for n in 31..=40 {
        out.deliver("/user/wipeable", |_| n).await.expect("deliver");
        history.maybe_sent(n);
    }
    tokio::time::sleep(SECOND * 10).await;
    // Nothing was applied twice; everything after the loss waits.
    let report = History::from_ledgers(1..=30, ledger(journal.as_ref()).await).check();
    assert!(report.is_clean(), "{report}");
    assert_eq!(out.unconfirmed(), 20);

    // The operator accepts the loss: what the lost inbox had applied but
    // not confirmed is applied again, the rest once.
    receiver.stop();
    receiver.terminated().await;
    let receiver = spawn_wipeable(&system, &journal, &ack, true).await;
    eventually("drained after adoption", || out.unconfirmed() == 0).await;
    let report = History::from_ledgers(1..=40, ledger(journal.as_ref()).await).check();
    assert!(
        report.lost.is_empty() && report.unexpected.is_empty(),
        "{report}"
    );
    assert_eq!(
        report.duplicated,
        (21..=30).map(|n| (n, 2)).collect::<Vec<_>>(),
        "{report}"
    );
    // Adopted for good: a plain open accepts the sender again.
    receiver.stop();
    receiver.terminated().await;
    spawn_wipeable(&system, &journal, &ack, false).await;
    out.deliver("/user/wipeable", |_| 41)
        .await
        .expect("deliver");
    eventually("confirmed", || out.unconfirmed() == 0).await;
    let applied = ledger(journal.as_ref()).await;
    assert_eq!(applied.iter().filter(|n| **n == 41).count(), 1);
}
