//! `courier::delivery::inspect`: what senders and inboxes keep, read from
//! the journal with no actor running, and the offline repairs of parked
//! deliveries (re-queue under a new id, purge).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::inspect::{self, SenderReport};
use courier::delivery::{
    DedupInbox, Deliverer, Delivery, DeliveryId, Error, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;

/// A sender that delivers `(destination, n)` on command.
struct Desk {
    name: &'static str,
    journal: Arc<dyn Journal>,
    settings: OutboxSettings,
    out: Option<Deliverer<u64>>,
}

enum DeskCmd {
    Send(&'static str, u64, ReplyTo<()>),
    Unconfirmed(ReplyTo<usize>),
}

impl Actor for Desk {
    type Msg = DeskCmd;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, self.name, journal, self.settings.clone()).await?);
        Ok(())
    }

    async fn handle(&mut self, msg: DeskCmd, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = self.out.as_ref().ok_or("not started")?;
        match msg {
            DeskCmd::Send(to, n, done) => {
                out.deliver(to, |_| n).await?;
                done.reply(());
            }
            DeskCmd::Unconfirmed(reply) => reply.reply(out.unconfirmed()),
        }
        Ok(())
    }
}

/// Applies each delivery once and remembers the messages.
struct Store {
    name: &'static str,
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    applied: Arc<Mutex<Vec<u64>>>,
}

impl Actor for Store {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), self.name).await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        match inbox.check(&d) {
            Receipt::Duplicate => d.send_ack(),
            Receipt::New => {
                self.applied.lock().expect("lock").push(d.message);
                inbox.commit(&d).await?;
            }
        }
        Ok(())
    }
}

fn settings(max_attempts: Option<u32>) -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed {
            interval: Duration::from_millis(20),
        },
        max_attempts,
        ..OutboxSettings::default()
    }
}

fn spawn_desk(
    system: &ActorSystem,
    name: &'static str,
    journal: &Arc<dyn Journal>,
    max_attempts: Option<u32>,
) -> ActorRef<DeskCmd> {
    let journal = Arc::clone(journal);
    system
        .spawn(
            Props::new(move || Desk {
                name,
                journal: Arc::clone(&journal),
                settings: settings(max_attempts),
                out: None,
            })
            .with_name(name),
        )
        .expect("spawn desk")
}

fn spawn_store(
    system: &ActorSystem,
    name: &'static str,
    journal: &Arc<dyn Journal>,
) -> Arc<Mutex<Vec<u64>>> {
    let applied = Arc::new(Mutex::new(Vec::new()));
    let (journal, seen) = (Arc::clone(journal), Arc::clone(&applied));
    system
        .spawn(
            Props::new(move || Store {
                name,
                journal: Arc::clone(&journal),
                inbox: None,
                applied: Arc::clone(&seen),
            })
            .with_name(name),
        )
        .expect("spawn store");
    applied
}

async fn send(desk: &ActorRef<DeskCmd>, to: &'static str, n: u64) {
    desk.ask(|r| DeskCmd::Send(to, n, r), Duration::from_secs(5))
        .await
        .expect("deliver");
}

async fn unconfirmed(desk: &ActorRef<DeskCmd>) -> usize {
    desk.ask(DeskCmd::Unconfirmed, Duration::from_secs(5))
        .await
        .expect("ask")
}

/// Polls `check` until it holds, failing after 5 seconds (the asynchronous
/// form of `courier_test_support::eventually`).
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn report<'a>(reports: &'a [SenderReport], name: &str) -> &'a SenderReport {
    reports
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no sender {name} in {reports:?}"))
}

#[tokio::test]
async fn senders_inboxes_and_parked_deliveries_are_read_and_repaired_offline() {
    let store = MemoryStore::memory().expect("store");
    let journal: Arc<dyn Journal> = Arc::new(store.clone());

    // "till" has 4 deliveries confirmed by the warehouse and 2 unconfirmed
    // to an actor that does not exist yet; "desk" parks its 3 after one
    // attempt each.
    let system = ActorSystem::new("before");
    let warehouse = spawn_store(&system, "warehouse", &journal);
    let till = spawn_desk(&system, "till", &journal, None);
    for n in 1..=4 {
        send(&till, "/user/warehouse", n).await;
    }
    until("till confirmed", || async { unconfirmed(&till).await == 0 }).await;
    send(&till, "/user/later", 5).await;
    send(&till, "/user/later", 6).await;
    let desk = spawn_desk(&system, "desk", &journal, Some(1));
    for n in [10, 20, 30] {
        send(&desk, "/user/later", n).await;
    }
    until("desk settled", || async { unconfirmed(&desk).await == 0 }).await;
    system.shutdown().await;
    assert_eq!(*warehouse.lock().expect("lock"), vec![1, 2, 3, 4]);

    let senders = inspect::senders(&journal).await.expect("senders");
    let till_report = report(&senders, "till");
    assert_eq!(till_report.pending, 2);
    assert_eq!(till_report.parked, 0);
    assert_eq!(
        till_report.destinations.get("/user/later").copied(),
        Some(2)
    );
    assert!(till_report.oldest_pending_ms.is_some());
    let desk_report = report(&senders, "desk");
    assert_eq!((desk_report.pending, desk_report.parked), (0, 3));

    let pending = inspect::pending(&journal, "till").await.expect("pending");
    assert_eq!(
        pending.iter().map(|d| d.id).collect::<Vec<_>>(),
        [DeliveryId(5), DeliveryId(6)]
    );
    let parked = inspect::parked(&journal, "desk").await.expect("parked");
    assert_eq!(parked.len(), 3);
    assert!(parked.iter().all(|d| d.reason.is_some() && d.size > 0));

    let inboxes = inspect::inboxes(&journal).await.expect("inboxes");
    assert_eq!(inboxes.len(), 1);
    assert_eq!(inboxes[0].receiver, "warehouse");
    assert_eq!(inboxes[0].senders.len(), 1);
    assert_eq!(inboxes[0].senders[0].sender, "till");
    assert_eq!(inboxes[0].senders[0].watermark, 4);

    // Offline repairs: purge the first, re-queue the second under a new id
    // above every id the sender used; an unknown id is refused.
    inspect::purge_offline(&journal, "desk", parked[0].id)
        .await
        .expect("purge");
    let requeued = inspect::requeue_offline(&journal, "desk", parked[1].id)
        .await
        .expect("requeue");
    assert!(requeued > parked[2].id, "{requeued:?}");
    for id in [parked[0].id, DeliveryId(99)] {
        let err = inspect::purge_offline(&journal, "desk", id)
            .await
            .expect_err("not parked");
        assert!(matches!(err, Error::NotParked { .. }), "{err}");
    }
    let senders = inspect::senders(&journal).await.expect("senders");
    let desk_report = report(&senders, "desk");
    assert_eq!((desk_report.pending, desk_report.parked), (1, 1));

    // The sender sends the re-queued delivery when it next starts, and the
    // receiver takes it as new.
    let system = ActorSystem::new("after");
    let later = spawn_store(&system, "later", &journal);
    let desk = spawn_desk(&system, "desk", &journal, None);
    let _till = spawn_desk(&system, "till", &journal, None);
    until("the re-queued delivery arrives", || async {
        later.lock().expect("lock").contains(&20)
    })
    .await;
    until("desk settled", || async { unconfirmed(&desk).await == 0 }).await;
    system.shutdown().await;
    let mut applied = later.lock().expect("lock").clone();
    applied.sort_unstable();
    assert_eq!(applied, vec![5, 6, 20]);
    let senders = inspect::senders(&journal).await.expect("senders");
    assert_eq!(report(&senders, "desk").parked, 1);
    assert_eq!(report(&senders, "desk").pending, 0);
    assert_eq!(report(&senders, "till").pending, 0);
}

#[tokio::test]
async fn pages_of_pending_deliveries_list_each_once_in_id_order() {
    let store = MemoryStore::memory().expect("store");
    let journal: Arc<dyn Journal> = Arc::new(store);
    let system = ActorSystem::new("pages");
    // Nobody at the destination: every delivery stays pending.
    let desk = spawn_desk(&system, "pager", &journal, None);
    for n in 0..2_500 {
        send(&desk, "/user/nobody", n).await;
    }
    let all = inspect::pending(&journal, "pager").await.expect("pending");
    assert_eq!(all.len(), 2_500);

    for limit in [1, 999, 1_500, 2_500, 10_000] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = inspect::pending_page(&journal, "pager", after, limit)
                .await
                .expect("page");
            assert!(page.deliveries.len() <= limit, "limit {limit}");
            seen.extend(page.deliveries.iter().cloned());
            if !page.more {
                break;
            }
            assert_eq!(
                page.deliveries.len(),
                limit,
                "a short page with more after it"
            );
            after = seen.last().map(|d| d.id);
            if limit == 1 && seen.len() >= 3 {
                // Three single steps are enough to see the cursor move.
                let rest = inspect::pending_page(&journal, "pager", after, usize::MAX)
                    .await
                    .expect("rest");
                assert!(!rest.more);
                seen.extend(rest.deliveries);
                break;
            }
        }
        assert_eq!(seen, all, "pages of {limit}");
    }
    let none = inspect::parked_page(&journal, "pager", None, 10)
        .await
        .expect("parked page");
    assert!(none.deliveries.is_empty() && !none.more);
    let past = inspect::pending_page(&journal, "pager", Some(DeliveryId(2_500)), 10)
        .await
        .expect("past the end");
    assert!(past.deliveries.is_empty() && !past.more);
    system.shutdown().await;
}

/// Applies each delivery once, but holds the ack of message 1 until
/// message 99 arrives, and never applies nor acks 99 (so that it parks
/// while 1 is confirmed with 99 pending above it).
struct Holder {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    held: Option<Delivery<u64>>,
    applied: Arc<Mutex<Vec<u64>>>,
}

impl Actor for Holder {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "holder").await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        if d.message == 99 {
            if let Some(held) = self.held.take() {
                inbox.commit(&held).await?;
            }
            return Ok(());
        }
        if self.held.as_ref().is_some_and(|h| h.id == d.id) {
            return Ok(());
        }
        match inbox.check(&d) {
            Receipt::Duplicate => d.send_ack(),
            Receipt::New => {
                let first = {
                    let mut applied = self.applied.lock().expect("lock");
                    applied.push(d.message);
                    applied.len() == 1
                };
                if first && d.message == 1 {
                    self.held = Some(d);
                } else {
                    inbox.commit(&d).await?;
                }
            }
        }
        Ok(())
    }
}

fn spawn_holder(system: &ActorSystem, journal: &Arc<dyn Journal>, applied: &Arc<Mutex<Vec<u64>>>) {
    let (journal, applied) = (Arc::clone(journal), Arc::clone(applied));
    system
        .spawn(
            Props::new(move || Holder {
                journal: Arc::clone(&journal),
                inbox: None,
                held: None,
                applied: Arc::clone(&applied),
            })
            .with_name("holder"),
        )
        .expect("spawn holder");
}

#[tokio::test]
async fn a_delivery_after_an_offline_purge_is_not_taken_for_one_the_receiver_settled() {
    let store = MemoryStore::memory().expect("store");
    let journal: Arc<dyn Journal> = Arc::new(store);
    let applied = Arc::new(Mutex::new(Vec::new()));

    // Delivery 1 is applied and confirmed while delivery 2 is pending
    // above it (so the sender's delete of 1 writes no id mark: the stored
    // 2 keeps the next id above it); then 2 parks after one attempt.
    let system = ActorSystem::new("before");
    spawn_holder(&system, &journal, &applied);
    let desk_journal = Arc::clone(&journal);
    let desk = system
        .spawn(
            Props::new(move || Desk {
                name: "desk",
                journal: Arc::clone(&desk_journal),
                settings: OutboxSettings {
                    redelivery: Redelivery::Fixed {
                        interval: Duration::from_millis(300),
                    },
                    max_attempts: Some(1),
                    ..OutboxSettings::default()
                },
                out: None,
            })
            .with_name("desk"),
        )
        .expect("spawn desk");
    send(&desk, "/user/holder", 1).await;
    send(&desk, "/user/holder", 99).await;
    until("desk settled", || async { unconfirmed(&desk).await == 0 }).await;
    system.shutdown().await;
    let parked = inspect::parked(&journal, "desk").await.expect("parked");
    assert_eq!(
        parked.iter().map(|d| d.id).collect::<Vec<_>>(),
        [DeliveryId(2)]
    );
    assert_eq!(*applied.lock().expect("lock"), vec![1]);

    // The operator purges 2 offline: ids 1 and 2 stay used.
    inspect::purge_offline(&journal, "desk", DeliveryId(2))
        .await
        .expect("purge");

    // A new delivery after the restart must get an id the receiver has not
    // settled, or it is acked as a duplicate without being applied.
    let system = ActorSystem::new("after");
    spawn_holder(&system, &journal, &applied);
    let desk = spawn_desk(&system, "desk", &journal, None);
    send(&desk, "/user/holder", 7).await;
    until("desk settled", || async { unconfirmed(&desk).await == 0 }).await;
    system.shutdown().await;
    assert_eq!(*applied.lock().expect("lock"), vec![1, 7]);
}
