//! Akka's AtLeastOnceDelivery scenarios, through the public API, plus the
//! event-sourced sender and receiver, parking, and the chaos journal.
//! All on tokio's paused clock, so redelivery intervals cost no real time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::testkit::{ChaosJournal, Faults, FaultyLink, History};
use courier::delivery::{
    DedupInbox, Deliverer, Delivery, DeliveryId, OutboxSettings, Receipt, Redelivery,
    UnconfirmedWarning,
};
use courier::persistence::{
    Effect, EventSourced, Journal, Persistent, PersistentContext, PersistentSettings,
    SnapshotPolicy, SnapshotStore,
};
use courier::prelude::*;
use courier::{DeadLetter, DeadLetterReason};
use courier_test_support::ledger::{Ledger, ledger};
use courier_test_support::store::{ScenarioStore, scenario_store};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

fn settings() -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed { interval: SECOND },
        ..OutboxSettings::default()
    }
}

/// What a receiver saw: every delivery (id, attempt, when) and every message
/// it applied.
#[derive(Clone, Default)]
struct Seen {
    deliveries: Arc<Mutex<Vec<(DeliveryId, u32, Instant)>>>,
    applied: Arc<Mutex<Vec<u64>>>,
}

impl Seen {
    fn applied(&self) -> Vec<u64> {
        self.applied.lock().expect("lock").clone()
    }

    fn deliveries(&self) -> Vec<(DeliveryId, u32, Instant)> {
        self.deliveries.lock().expect("lock").clone()
    }
}

/// A deduplicating receiver that applies messages in memory (its commit
/// cannot fail on a healthy memory store).
struct Receiver {
    name: String,
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    seen: Seen,
    ack: bool,
}

impl Actor for Receiver {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), &self.name).await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.seen
            .deliveries
            .lock()
            .expect("lock")
            .push((d.id, d.attempt, Instant::now()));
        if !self.ack {
            return Ok(());
        }
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        match inbox.check(&d) {
            Receipt::Duplicate => d.send_ack(),
            Receipt::New => {
                inbox.commit(&d).await?;
                self.seen.applied.lock().expect("lock").push(d.message);
            }
        }
        Ok(())
    }
}

fn receiver(system: &ActorSystem, journal: &Arc<dyn Journal>, name: &str, ack: bool) -> Seen {
    let seen = Seen::default();
    let (journal, inner, owner) = (Arc::clone(journal), seen.clone(), name.to_owned());
    system
        .spawn(
            Props::new(move || Receiver {
                name: owner.clone(),
                journal: Arc::clone(&journal),
                inbox: None,
                seen: inner.clone(),
                ack,
            })
            .with_name(name),
        )
        .expect("spawn receiver");
    seen
}

/// A plain (not event-sourced) sender: delivers what it is told to, and
/// hands out its `Deliverer` for the parked-delivery API.
struct Client {
    name: &'static str,
    journal: Arc<dyn Journal>,
    settings: OutboxSettings,
    warnings: Arc<Mutex<Vec<UnconfirmedWarning>>>,
    out: Option<Deliverer<u64>>,
}

enum ClientCmd {
    Deliver(String, u64, ReplyTo<Result<DeliveryId, String>>),
    Outbox(ReplyTo<Deliverer<u64>>),
}

impl Actor for Client {
    type Msg = ClientCmd;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = Deliverer::start(
            ctx,
            self.name,
            Arc::clone(&self.journal),
            self.settings.clone(),
        )
        .await?;
        let warnings = Arc::clone(&self.warnings);
        out.on_warning(move |w| warnings.lock().expect("lock").push(w));
        self.out = Some(out);
        Ok(())
    }

    async fn handle(&mut self, msg: ClientCmd, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = self.out.as_ref().ok_or("not started")?;
        match msg {
            ClientCmd::Deliver(to, n, reply) => {
                let result = out.deliver(&to, |_| n).await;
                reply.reply(result.map_err(|e| e.to_string()));
            }
            ClientCmd::Outbox(reply) => reply.reply(out.clone()),
        }
        Ok(())
    }
}

struct ClientHandle {
    actor: ActorRef<ClientCmd>,
    warnings: Arc<Mutex<Vec<UnconfirmedWarning>>>,
}

fn client(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
    settings: OutboxSettings,
    strategy: SupervisorStrategy,
) -> ClientHandle {
    let warnings: Arc<Mutex<Vec<UnconfirmedWarning>>> = Arc::default();
    let (journal, shared) = (Arc::clone(journal), Arc::clone(&warnings));
    let actor = system
        .spawn(
            Props::new(move || Client {
                name: "client",
                journal: Arc::clone(&journal),
                settings: settings.clone(),
                warnings: Arc::clone(&shared),
                out: None,
            })
            .with_name("client")
            .with_supervisor(strategy.clone()),
        )
        .expect("spawn client");
    ClientHandle { actor, warnings }
}

impl ClientHandle {
    async fn deliver(&self, to: &str, n: u64) -> Result<DeliveryId, String> {
        self.actor
            .ask(|r| ClientCmd::Deliver(to.to_owned(), n, r), 10 * SECOND)
            .await
            .map_err(|e| e.to_string())?
    }

    async fn outbox(&self) -> Deliverer<u64> {
        self.actor
            .ask(ClientCmd::Outbox, 10 * SECOND)
            .await
            .expect("outbox")
    }

    async fn drained(&self) {
        let out = self.outbox().await;
        for _ in 0..10_000 {
            if out.unconfirmed() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("outbox did not drain: {} left", out.unconfirmed());
    }
}

/// The memory store, or the engine `COURIER_TEST_ENGINE` names.
fn memory() -> Arc<ScenarioStore> {
    Arc::new(scenario_store())
}

#[tokio::test(start_paused = true)]
async fn three_destinations_through_links_dropping_every_2nd_5th_3rd_all_arrive() {
    let system = ActorSystem::new("test");
    let store = memory();
    let journal: Arc<dyn Journal> = store;
    let mut seen = Vec::new();
    for (name, every) in [("a", 2), ("b", 5), ("c", 3)] {
        let s = receiver(&system, &journal, name, true);
        let target = system
            .lookup::<Delivery<u64>>(&format!("/user/{name}"))
            .expect("receiver");
        FaultyLink::spawn_for_deliveries(
            &system,
            &format!("link-{name}"),
            target,
            Faults::seeded(1).drop_every(every),
            Faults::seeded(2),
        )
        .expect("link");
        seen.push(s);
    }
    let client = client(&system, &journal, settings(), SupervisorStrategy::restart());
    for n in 1..=100 {
        for name in ["a", "b", "c"] {
            client
                .deliver(&format!("/user/link-{name}"), n)
                .await
                .expect("deliver");
        }
    }
    client.drained().await;
    for (s, name) in seen.iter().zip(["a", "b", "c"]) {
        let report = History::from_ledgers(1..=100, s.applied()).check();
        assert!(report.is_clean(), "receiver {name}: {report}");
        let redelivered = s.deliveries().iter().filter(|(_, a, _)| *a > 1).count();
        assert!(redelivered > 0, "some were dropped and redelivered");
    }
}

#[tokio::test(start_paused = true)]
async fn burst_limit_lets_exactly_that_many_through_per_round() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    // Never acks: every round redelivers.
    let seen = receiver(&system, &journal, "sink", false);
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            burst_limit: 2,
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    for n in 1..=6 {
        client.deliver("/user/sink", n).await.expect("deliver");
    }
    tokio::time::sleep(SECOND * 4 + SECOND / 2).await;
    let mut rounds: BTreeMap<Instant, Vec<u64>> = BTreeMap::new();
    let deliveries = seen.deliveries();
    assert_eq!(deliveries.iter().filter(|(_, a, _)| *a == 1).count(), 6);
    for (id, attempt, at) in deliveries {
        if attempt > 1 {
            rounds.entry(at).or_default().push(id.0);
        }
    }
    let rounds: Vec<Vec<u64>> = rounds.into_values().collect();
    assert!(rounds.len() >= 4, "four rounds in 4.5 s: {rounds:?}");
    assert_eq!(
        rounds[..4],
        [vec![1, 2], vec![3, 4], vec![5, 6], vec![1, 2]]
    );
}

#[tokio::test(start_paused = true)]
async fn one_warning_covers_several_destinations_with_ids_global_to_the_sender() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    // Nothing exists at these paths: every attempt is lost.
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            warn_after_attempts: 2,
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    for (n, to) in [(10, "/user/x"), (20, "/user/y"), (30, "/user/z")] {
        client.deliver(to, n).await.expect("deliver");
    }
    tokio::time::sleep(SECOND * 6).await;
    let warnings = client.warnings.lock().expect("lock").clone();
    assert_eq!(warnings.len(), 1, "one warning, not one per delivery");
    let listed: Vec<(u64, &str)> = warnings[0]
        .deliveries
        .iter()
        .map(|(id, to, _)| (id.0, to.as_str()))
        .collect();
    assert_eq!(listed, [(1, "/user/x"), (2, "/user/y"), (3, "/user/z")]);
    assert!(
        warnings[0]
            .deliveries
            .iter()
            .all(|(_, _, attempts)| *attempts >= 2)
    );
}

#[tokio::test(start_paused = true)]
async fn parked_deliveries_are_reported_listed_requeued_and_purged() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            max_attempts: Some(3),
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    client.deliver("/user/later", 7).await.expect("deliver");
    client.deliver("/user/later", 8).await.expect("deliver");
    tokio::time::sleep(SECOND * 5).await;

    let out = client.outbox().await;
    assert_eq!(out.unconfirmed(), 0, "parked ones leave the outbox");
    let parked = out.parked().await.expect("parked");
    let listed: Vec<(u64, u64)> = parked
        .iter()
        .map(|p| (p.id.0, p.message.unwrap_or_default()))
        .collect();
    assert_eq!(listed, [(1, 7), (2, 8)]);
    assert!(
        parked[0].reason.contains("3 attempts"),
        "{}",
        parked[0].reason
    );
    let mut reported = 0;
    while let Ok(letter) = dead_letters.try_recv() {
        if let DeadLetterReason::Other(reason) = &letter.reason {
            if reason.contains("parked") {
                assert_eq!(letter.recipient.to_string(), "/user/later");
                reported += 1;
            }
        }
    }
    assert_eq!(reported, 2, "each parked delivery is a dead letter");

    // The receiver appears; one is re-queued (under a new id), one purged.
    let seen = receiver(&system, &journal, "later", true);
    let requeued = out.requeue(DeliveryId(1)).await.expect("requeue");
    assert_eq!(requeued, DeliveryId(3));
    out.purge(DeliveryId(2)).await.expect("purge");
    client.drained().await;
    assert_eq!(seen.applied(), [7]);
    assert!(out.parked().await.expect("parked").is_empty());
    assert!(matches!(
        out.requeue(DeliveryId(2)).await,
        Err(courier::delivery::Error::NotParked { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn expired_deliveries_are_parked() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            expire_after: Some(SECOND * 3),
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    client.deliver("/user/nobody", 1).await.expect("deliver");
    tokio::time::sleep(SECOND * 2).await;
    let out = client.outbox().await;
    assert_eq!(out.unconfirmed(), 1, "not yet expired");
    tokio::time::sleep(SECOND * 2).await;
    assert_eq!(out.unconfirmed(), 0);
    let parked = out.parked().await.expect("parked");
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("after 3s"),
        "{}",
        parked[0].reason
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_recovery_sends_nothing() {
    let system = ActorSystem::new("test");
    let store = memory();
    let chaos = Arc::new(ChaosJournal::new(store, 0.0, 0.0, 3));
    let journal: Arc<dyn Journal> = chaos.clone();
    let first = client(&system, &journal, settings(), SupervisorStrategy::restart());
    for n in 1..=3 {
        first.deliver("/user/shop", n).await.expect("deliver");
    }
    first.actor.stop();
    first.actor.terminated().await;

    // Every read fails now: the outbox cannot be loaded.
    chaos.set_failures(0.0, 1.0);
    let seen = receiver(&system, &memory_journal(), "shop", true);
    let second = client(
        &system,
        &journal,
        settings(),
        SupervisorStrategy::restart().with_max_restarts(3, SECOND * 60),
    );
    tokio::time::sleep(SECOND * 30).await;
    assert!(seen.deliveries().is_empty(), "nothing may be sent");
    assert!(
        second.actor.is_terminated(),
        "it gave up after its restarts"
    );

    // Healed, the next start sends all three.
    chaos.set_failures(0.0, 0.0);
    let third = client(&system, &journal, settings(), SupervisorStrategy::restart());
    third.drained().await;
    assert_eq!(seen.applied(), [1, 2, 3]);
}

fn memory_journal() -> Arc<dyn Journal> {
    memory()
}

#[tokio::test(start_paused = true)]
async fn chaos_journals_and_dropped_acks_still_apply_exactly_1_to_10() {
    for seed in [11, 12, 13] {
        let system = ActorSystem::new("test");
        let (sender_store, receiver_store) = (memory(), memory());
        let sender_chaos = Arc::new(ChaosJournal::new(sender_store, 0.2, 0.2, seed));
        let receiver_chaos = Arc::new(ChaosJournal::new(
            receiver_store.clone(),
            0.3,
            0.3,
            seed + 100,
        ));
        let sender_journal: Arc<dyn Journal> = sender_chaos.clone();
        let receiver_journal: Arc<dyn Journal> = receiver_chaos.clone();
        let never_give_up = SupervisorStrategy::restart()
            .with_max_restarts(u32::MAX, SECOND)
            .with_backoff(Duration::from_millis(10), Duration::from_millis(100));
        let target = system
            .spawn(
                Ledger::<u64>::props(&receiver_journal)
                    .with_name("ledger")
                    .with_supervisor(never_give_up.clone()),
            )
            .expect("receiver");
        FaultyLink::spawn_for_deliveries(
            &system,
            "link",
            target,
            Faults::seeded(seed).drop(0.2),
            Faults::seeded(seed + 1).drop(0.3),
        )
        .expect("link");
        let client = client(&system, &sender_journal, settings(), never_give_up);
        for n in 1..=10 {
            // A failed deliver accepted nothing: try again.
            let mut tries = 0;
            while client.deliver("/user/link", n).await.is_err() {
                tries += 1;
                assert!(tries < 100, "seed {seed}: deliver keeps failing");
            }
        }
        client.drained().await;
        // Each number's ledger entries, straight from the receiver's store.
        let report = History::from_ledgers(1..=10, ledger(&*receiver_store).await).check();
        assert!(report.is_clean(), "seed {seed}: {report}");
        assert!(
            sender_chaos.failures() > 0 && receiver_chaos.failures() > 0,
            "seed {seed}: {} {}",
            sender_chaos.failures(),
            receiver_chaos.failures()
        );
        system.shutdown().await;
    }
}

// ---- event-sourced sender and receiver ----

#[derive(Clone, Debug, Serialize, Deserialize)]
enum BookEvent {
    Placed { order: u64, delivery: u64 },
}

/// An event-sourced sender: each order is an event, and its delivery's
/// outbox entry commits in the same write.
struct OrderBook {
    journal: Arc<dyn Journal>,
    placed: Vec<(u64, u64)>,
    out: Option<Deliverer<u64>>,
}

enum BookCmd {
    Place(u64, ReplyTo<u64>),
    Placed(ReplyTo<Vec<(u64, u64)>>),
    Outbox(ReplyTo<Deliverer<u64>>),
}

impl EventSourced for OrderBook {
    type Command = BookCmd;
    type Event = BookEvent;
    type Snapshot = Vec<(u64, u64)>;

    async fn handle_command(
        &mut self,
        cmd: BookCmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        let out = self.out.as_ref().ok_or("not recovered")?;
        Ok(match cmd {
            BookCmd::Place(order, reply) => {
                let prepared = out.prepare("/user/stock", |_| order)?;
                let delivery = prepared.id().get();
                Effect::persist(BookEvent::Placed { order, delivery })
                    .with_writes(prepared.writes())
                    .then(move |_: &Self, _| {
                        prepared.send();
                    })
                    .reply(reply, move |_: &Self| delivery)
            }
            BookCmd::Placed(reply) => {
                reply.reply(self.placed.clone());
                Effect::none()
            }
            BookCmd::Outbox(reply) => {
                reply.reply(out.clone());
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, event: BookEvent) {
        let BookEvent::Placed { order, delivery } = event;
        self.placed.push((order, delivery));
    }

    fn to_snapshot(&self) -> Vec<(u64, u64)> {
        self.placed.clone()
    }

    fn apply_snapshot(&mut self, snapshot: Vec<(u64, u64)>) {
        self.placed = snapshot;
    }

    async fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        self.out =
            Some(Deliverer::start(ctx, "order-book", Arc::clone(&self.journal), settings()).await?);
        Ok(())
    }
}

fn order_book(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
    snapshots: &Arc<dyn SnapshotStore>,
    policy: SnapshotPolicy,
) -> ActorRef<BookCmd> {
    let inner = Arc::clone(journal);
    system
        .spawn(
            Persistent::props_with(
                "order-book",
                move || OrderBook {
                    journal: Arc::clone(&inner),
                    placed: Vec::new(),
                    out: None,
                },
                Arc::clone(journal),
                Arc::clone(snapshots),
                PersistentSettings {
                    snapshots: policy,
                    ..PersistentSettings::default()
                },
            )
            .with_name("order-book"),
        )
        .expect("spawn order book")
}

/// An event-sourced receiver: the applied order is an event, and its inbox
/// record commits in the same write; the ack follows.
struct Stock {
    journal: Arc<dyn Journal>,
    received: Vec<u64>,
    inbox: Option<DedupInbox>,
    duplicates: Arc<Mutex<u64>>,
}

enum StockCmd {
    Deliver(Delivery<u64>),
    Received(ReplyTo<Vec<u64>>),
}

impl EventSourced for Stock {
    type Command = StockCmd;
    type Event = u64;
    type Snapshot = Vec<u64>;

    async fn handle_command(
        &mut self,
        cmd: StockCmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not recovered")?;
        Ok(match cmd {
            StockCmd::Deliver(d) => match inbox.check(&d) {
                Receipt::Duplicate => {
                    *self.duplicates.lock().expect("lock") += 1;
                    d.send_ack();
                    Effect::none()
                }
                Receipt::New => {
                    let write = inbox.prepare(&d)?;
                    Effect::persist(d.message)
                        .with_writes(write.writes())
                        .then(move |_: &Self, _| write.ack())
                }
            },
            StockCmd::Received(reply) => {
                reply.reply(self.received.clone());
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, order: u64) {
        self.received.push(order);
    }

    fn to_snapshot(&self) -> Vec<u64> {
        self.received.clone()
    }

    fn apply_snapshot(&mut self, snapshot: Vec<u64>) {
        self.received = snapshot;
    }

    async fn recovery_completed(
        &mut self,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "stock").await?);
        Ok(())
    }
}

/// Spawns the stock at `/user/stock-actor` and an adapter at `/user/stock`
/// that turns deliveries into its commands, behind a lossy link.
fn stock(
    system: &ActorSystem,
    store: &Arc<ScenarioStore>,
    faults: Faults,
) -> (ActorRef<StockCmd>, Arc<Mutex<u64>>) {
    let duplicates: Arc<Mutex<u64>> = Arc::default();
    let (journal, dups): (Arc<dyn Journal>, _) = (store.clone(), Arc::clone(&duplicates));
    let actor = system
        .spawn(
            Persistent::props(
                "stock",
                move || Stock {
                    journal: Arc::clone(&journal),
                    received: Vec::new(),
                    inbox: None,
                    duplicates: Arc::clone(&dups),
                },
                store.clone(),
                store.clone(),
            )
            .with_name("stock-actor"),
        )
        .expect("spawn stock");
    let adapter = system
        .spawn(
            Props::new({
                let actor = actor.clone();
                move || Forward { to: actor.clone() }
            })
            .with_name("stock-in"),
        )
        .expect("adapter");
    FaultyLink::spawn_for_deliveries(
        system,
        "stock",
        adapter,
        faults,
        Faults::seeded(9).drop(0.2),
    )
    .expect("link");
    (actor, duplicates)
}

/// Wraps deliveries into the stock's command type.
struct Forward {
    to: ActorRef<StockCmd>,
}

impl Actor for Forward {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.to.tell(StockCmd::Deliver(d));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn event_sourced_sender_and_receiver_apply_each_order_once() {
    let system = ActorSystem::new("test");
    let store = memory();
    let journal: Arc<dyn Journal> = store.clone();
    let snapshots: Arc<dyn SnapshotStore> = store.clone();
    let (stock_ref, duplicates) = stock(
        &system,
        &store,
        Faults::seeded(5)
            .drop(0.2)
            .duplicate(0.2)
            .reorder(0.2, SECOND / 10),
    );
    let book = order_book(&system, &journal, &snapshots, SnapshotPolicy::default());
    for n in 1..=50 {
        let id = book
            .ask(|r| BookCmd::Place(n, r), 5 * SECOND)
            .await
            .expect("place");
        assert_eq!(id, n, "delivery ids are gap-free from 1");
    }
    let out = book.ask(BookCmd::Outbox, 5 * SECOND).await.expect("outbox");
    for _ in 0..1000 {
        if out.unconfirmed() == 0 {
            break;
        }
        tokio::time::sleep(SECOND / 2).await;
    }
    assert_eq!(out.unconfirmed(), 0);
    let received = stock_ref
        .ask(StockCmd::Received, 5 * SECOND)
        .await
        .expect("received");
    let report = History::from_ledgers(1..=50, received).check();
    assert!(report.is_clean(), "{report}");
    assert!(
        *duplicates.lock().expect("lock") > 0,
        "the link duplicated some"
    );
    // The orders are events; the receiver's state replays to the same set.
    assert_eq!(
        journal.highest_seq_nr("order-book").await.expect("highest"),
        50
    );
    assert_eq!(journal.highest_seq_nr("stock").await.expect("highest"), 50);
}

#[tokio::test(start_paused = true)]
async fn a_failed_persist_writes_neither_event_nor_outbox_entry_and_burns_no_id() {
    let system = ActorSystem::new("test");
    let store = memory();
    let chaos = Arc::new(ChaosJournal::new(store.clone(), 0.0, 0.0, 4));
    let journal: Arc<dyn Journal> = chaos.clone();
    let snapshots: Arc<dyn SnapshotStore> = store.clone();
    let book = order_book(&system, &journal, &snapshots, SnapshotPolicy::default());
    assert_eq!(
        book.ask(|r| BookCmd::Place(100, r), 5 * SECOND)
            .await
            .expect("place"),
        1
    );

    chaos.set_failures(1.0, 0.0);
    assert!(
        book.ask(|r| BookCmd::Place(200, r), 5 * SECOND)
            .await
            .is_err(),
        "the persist failed, so no reply"
    );
    // As in Akka, a failed persist stops the actor: its state is unknown.
    book.terminated().await;
    chaos.set_failures(0.0, 0.0);
    let book = order_book(&system, &journal, &snapshots, SnapshotPolicy::default());
    let placed = book.ask(BookCmd::Placed, 5 * SECOND).await.expect("placed");
    assert_eq!(placed, [(100, 1)]);
    let out = book.ask(BookCmd::Outbox, 5 * SECOND).await.expect("outbox");
    assert_eq!(out.unconfirmed(), 1, "only the first order's entry exists");
    assert_eq!(
        store.highest_seq_nr("order-book").await.expect("highest"),
        1
    );
    // The failed order's id was not used up.
    assert_eq!(
        book.ask(|r| BookCmd::Place(300, r), 5 * SECOND)
            .await
            .expect("place"),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn unconfirmed_deliveries_survive_a_snapshot_that_deleted_their_events() {
    let system = ActorSystem::new("test");
    let store = memory();
    let journal: Arc<dyn Journal> = store.clone();
    let snapshots: Arc<dyn SnapshotStore> = store.clone();
    let policy = SnapshotPolicy {
        every: Some(2),
        keep: 1,
        delete_events: true,
    };
    // No receiver yet: nothing is confirmed.
    let book = order_book(&system, &journal, &snapshots, policy.clone());
    for n in 1..=5 {
        book.ask(|r| BookCmd::Place(n, r), 5 * SECOND)
            .await
            .expect("place");
    }
    book.stop();
    book.terminated().await;
    assert!(store.deleted_to("order-book").await.expect("deleted") >= 2);

    let (stock_ref, _) = stock(&system, &store, Faults::seeded(6));
    let book = order_book(&system, &journal, &snapshots, policy);
    let placed = book.ask(BookCmd::Placed, 5 * SECOND).await.expect("placed");
    assert_eq!(
        placed.len(),
        5,
        "state from the snapshot and the events after it"
    );
    let out = book.ask(BookCmd::Outbox, 5 * SECOND).await.expect("outbox");
    for _ in 0..100 {
        if out.unconfirmed() == 0 {
            break;
        }
        tokio::time::sleep(SECOND / 2).await;
    }
    assert_eq!(out.unconfirmed(), 0);
    let received = stock_ref
        .ask(StockCmd::Received, 5 * SECOND)
        .await
        .expect("received");
    assert_eq!(received, [1, 2, 3, 4, 5], "redelivered in order");
}

/// An actor that only owns a `Deliverer<M>` under the sender name "typed".
struct Typed<M> {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<M>>,
}

impl<M: courier::delivery::Outgoing> Actor for Typed<M> {
    type Msg = ReplyTo<Deliverer<M>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.out =
            Some(Deliverer::start(ctx, "typed", Arc::clone(&self.journal), settings()).await?);
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

async fn typed<M: courier::delivery::Outgoing>(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
) -> (ActorRef<ReplyTo<Deliverer<M>>>, Deliverer<M>) {
    let journal = Arc::clone(journal);
    let actor = system
        .spawn(Props::new(move || Typed::<M> {
            journal: Arc::clone(&journal),
            out: None,
        }))
        .expect("spawn");
    let out = actor.ask(|r| r, 5 * SECOND).await.expect("deliverer");
    (actor, out)
}

#[tokio::test(start_paused = true)]
async fn a_stored_message_that_no_longer_decodes_is_parked_not_retried_forever() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();
    // Version 1 of the sender sends text that nobody confirms.
    let (v1, out) = typed::<String>(&system, &journal).await;
    out.deliver("/user/nobody", |_| "not a number".to_owned())
        .await
        .expect("deliver");
    v1.stop();
    v1.terminated().await;

    // Version 2 sends numbers: the stored text no longer decodes.
    // The restored entry is resent at once: it is parked then.
    let (_v2, out) = typed::<u64>(&system, &journal).await;
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 0, "parked at its first resend");
    let mut reported = false;
    while let Ok(letter) = dead_letters.try_recv() {
        if let DeadLetterReason::Other(reason) = &letter.reason {
            reported |= reason.contains("undecodable");
        }
    }
    assert!(reported, "reported as a dead letter with the reason");
    // Listed without its message (it cannot be decoded); purge works.
    let listed = out.parked().await.expect("parked");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].message), (DeliveryId(1), None));
    out.purge(DeliveryId(1)).await.expect("purge");
    assert!(out.parked().await.expect("parked").is_empty());
}

/// Keeps every delivery without acking, for tests that ack by hand.
struct Keeper {
    kept: Arc<Mutex<Vec<Delivery<u64>>>>,
}

impl Actor for Keeper {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.kept.lock().expect("lock").push(d);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn stale_foreign_and_repeated_acks_never_confirm_another_delivery() {
    use courier::delivery::{Ack, SenderId};
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let kept: Arc<Mutex<Vec<Delivery<u64>>>> = Arc::default();
    let k = Arc::clone(&kept);
    system
        .spawn(
            Props::new(move || Keeper {
                kept: Arc::clone(&k),
            })
            .with_name("keeper"),
        )
        .expect("spawn");
    let client = client(&system, &journal, settings(), SupervisorStrategy::restart());
    client.deliver("/user/keeper", 1).await.expect("deliver");
    client.deliver("/user/keeper", 2).await.expect("deliver");
    tokio::time::sleep(SECOND / 10).await;
    let first = kept.lock().expect("lock")[0].clone();
    let out = client.outbox().await;
    assert_eq!(out.unconfirmed(), 2);

    // Another incarnation of the same sender, an id never sent, and an ack
    // of delivery 1 twice: only delivery 1 is confirmed.
    let foreign = Ack {
        sender: SenderId {
            name: first.sender.name.clone(),
            incarnation: uuid::Uuid::now_v7(),
        },
        id: DeliveryId(2),
        inbox: None,
    };
    first.ack_to.tell(foreign);
    first.ack_to.tell(Ack {
        sender: first.sender.clone(),
        id: DeliveryId(99),
        inbox: None,
    });
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 2, "neither confirmed anything");
    first.send_ack();
    first.send_ack();
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 1, "delivery 2 is still pending");
    tokio::time::sleep(SECOND * 2).await;
    let resent: Vec<u64> = kept
        .lock()
        .expect("lock")
        .iter()
        .filter(|d| d.attempt > 1)
        .map(|d| d.id.0)
        .collect();
    assert!(
        !resent.is_empty() && resent.iter().all(|id| *id == 2),
        "{resent:?}"
    );
}
