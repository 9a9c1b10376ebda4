//! Wrapping existing actors: a receiver keeps its own message type (a
//! `Delivery<M>` adapter under its path), a sender is a plain field
//! started in `started`, and the dedup inbox processes a delivery exactly
//! once in one call, for plain and event-sourced receivers alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{
    AtLeastOnce, Delivery, Error as DeliveryError, ExactlyOnce, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, MemoryStore, WriteBatch};
use courier::prelude::*;
use courier_test_support::eventually;
use serde::{Deserialize, Serialize};

const SECOND: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Charge {
    order: u64,
    cents: u64,
}

// ---- a plain receiver with its own enum ----

enum Payments {
    Charge(Delivery<Charge>),
    /// (charges applied, times each order was applied)
    Totals(ReplyTo<(u64, BTreeMap<u64, u32>)>),
}

impl From<Delivery<Charge>> for Payments {
    fn from(d: Delivery<Charge>) -> Self {
        Payments::Charge(d)
    }
}

struct Ledger {
    inbox: ExactlyOnce,
    charged: u64,
    applied: BTreeMap<u64, u32>,
}

impl Actor for Ledger {
    type Msg = Payments;

    async fn handle(&mut self, msg: Payments, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Payments::Charge(d) => {
                let key = d.message.order.to_be_bytes().to_vec();
                let receipt = self
                    .inbox
                    .process(&d, |c| {
                        WriteBatch::new().put("charges", key, c.cents.to_be_bytes().to_vec())
                    })
                    .await?;
                if receipt == Receipt::New {
                    self.charged += d.message.cents;
                    *self.applied.entry(d.message.order).or_insert(0) += 1;
                }
            }
            Payments::Totals(reply) => reply.reply((self.charged, self.applied.clone())),
        }
        Ok(())
    }
}

fn payments(journal: &Arc<dyn Journal>) -> Props<Ledger> {
    let journal = Arc::clone(journal);
    Props::new(move || Ledger {
        inbox: ExactlyOnce::new("payments", Arc::clone(&journal)),
        charged: 0,
        applied: BTreeMap::new(),
    })
    .with_name("payments")
    .with_adapter::<Delivery<Charge>>()
}

// ---- a plain sender with its own enum ----

enum Desk {
    Order(u64, ReplyTo<Result<u64, String>>),
}

struct OrderDesk {
    out: AtLeastOnce<Charge>,
}

impl Actor for OrderDesk {
    type Msg = Desk;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.out.start(ctx).await?;
        Ok(())
    }

    async fn handle(&mut self, msg: Desk, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let Desk::Order(order, reply) = msg;
        let sent = self
            .out
            .deliver("/user/payments", |_| Charge { order, cents: 100 })
            .await;
        reply.reply(sent.map(|id| id.get()).map_err(|e| e.to_string()));
        Ok(())
    }
}

fn fast() -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed {
            interval: Duration::from_millis(50),
        },
        ..OutboxSettings::default()
    }
}

fn store() -> Arc<dyn Journal> {
    Arc::new(MemoryStore::memory().expect("store"))
}

#[tokio::test(start_paused = true)]
async fn a_receiver_with_its_own_enum_takes_deliveries_across_a_restart_and_answers_queries() {
    let journal = store();
    let system = ActorSystem::new("wrap");
    let receiver = system.spawn(payments(&journal)).expect("spawn");
    let out = AtLeastOnce::<Charge>::new("order-desk", Arc::clone(&journal), fast());
    let desk = system
        .spawn(Props::new({
            let out = out.clone();
            move || OrderDesk { out: out.clone() }
        }))
        .expect("spawn");
    for order in 1..=10 {
        let id = desk
            .ask(|r| Desk::Order(order, r), SECOND)
            .await
            .expect("ask");
        assert_eq!(id, Ok(order));
    }
    eventually("first ten confirmed", 10 * SECOND, || {
        out.unconfirmed() == 0
    })
    .await;
    // The receiver goes away; deliveries wait in the outbox.
    receiver.stop();
    receiver.terminated().await;
    for order in 11..=20 {
        desk.ask(|r| Desk::Order(order, r), SECOND)
            .await
            .expect("ask")
            .expect("accepted");
    }
    assert!(out.unconfirmed() > 0);
    // Back under the same path, with its inbox: the adapter is there from
    // the spawn on, and the redeliveries find it by path.
    let receiver = system.spawn(payments(&journal)).expect("respawn");
    eventually("all confirmed", 10 * SECOND, || out.unconfirmed() == 0).await;
    let (charged, applied) = receiver
        .ask(Payments::Totals, SECOND)
        .await
        .expect("the receiver answers its own queries");
    // The new incarnation's memory holds what it applied since (11..=20);
    // each was applied once.
    assert_eq!(charged, 1000);
    assert_eq!(
        applied.keys().copied().collect::<Vec<_>>(),
        (11..=20).collect::<Vec<_>>()
    );
    assert!(applied.values().all(|n| *n == 1), "{applied:?}");
    // The store holds every charge, once.
    let stored = journal.kv_scan("charges", None, 100).await.expect("scan");
    assert_eq!(stored.len(), 20);
    system.shutdown().await;
}

#[tokio::test]
async fn a_destination_that_takes_neither_type_is_refused_at_once() {
    let journal = store();
    let system = ActorSystem::new("wrap");
    // Same enum, no adapter: the old failure mode (retried forever) is now
    // a typed error at `deliver`.
    system
        .spawn(
            Props::new({
                let journal = Arc::clone(&journal);
                move || Ledger {
                    inbox: ExactlyOnce::new("payments", Arc::clone(&journal)),
                    charged: 0,
                    applied: BTreeMap::new(),
                }
            })
            .with_name("payments"),
        )
        .expect("spawn");
    let out = AtLeastOnce::<Charge>::new("order-desk", Arc::clone(&journal), fast());
    let desk = system
        .spawn(Props::new(move || OrderDesk { out: out.clone() }))
        .expect("spawn");
    let refused = desk.ask(|r| Desk::Order(1, r), SECOND).await.expect("ask");
    let reason = refused.expect_err("refused");
    assert!(reason.contains("invalid destination"), "{reason}");
    system.shutdown().await;
}

#[tokio::test]
async fn a_sender_used_before_its_start_says_so() {
    let out = AtLeastOnce::<Charge>::new("early", store(), OutboxSettings::default());
    let early = out
        .deliver("/user/payments", |_| Charge { order: 1, cents: 1 })
        .await;
    assert!(
        matches!(&early, Err(DeliveryError::NotStarted { sender }) if sender == "early"),
        "{early:?}"
    );
    assert_eq!(out.unconfirmed(), 0);
}

/// Starts an `AtLeastOnce` named "twin" and reports how the start went.
struct Twin {
    out: AtLeastOnce<Charge>,
    started: Option<Result<(), String>>,
}

impl Actor for Twin {
    type Msg = ReplyTo<Option<Result<(), String>>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let result = self.out.start(ctx).await;
        if let Err(DeliveryError::SenderNameTaken { name, owner }) = &result {
            assert_eq!(name, "twin");
            assert!(owner.as_str().starts_with("/user/"), "{owner}");
        }
        self.started = Some(result.map(|_| ()).map_err(|e| e.to_string()));
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.started.clone());
        Ok(())
    }
}

fn twin(journal: &Arc<dyn Journal>) -> Props<Twin> {
    let out = AtLeastOnce::<Charge>::new("twin", Arc::clone(journal), OutboxSettings::default());
    Props::new(move || Twin {
        out: out.clone(),
        started: None,
    })
}

#[tokio::test]
async fn a_sender_name_is_taken_once_per_system_until_its_owner_stops() {
    let journal = store();
    let system = ActorSystem::new("wrap");
    let first = system.spawn(twin(&journal)).expect("spawn");
    assert_eq!(first.ask(|r| r, SECOND).await.expect("ask"), Some(Ok(())));
    let second = system.spawn(twin(&journal)).expect("spawn");
    let refused = second.ask(|r| r, SECOND).await.expect("ask");
    assert!(
        matches!(&refused, Some(Err(e)) if e.contains("is taken")),
        "{refused:?}"
    );
    // Another system is another namespace.
    let other = ActorSystem::new("other");
    let elsewhere = other.spawn(twin(&store())).expect("spawn");
    assert_eq!(
        elsewhere.ask(|r| r, SECOND).await.expect("ask"),
        Some(Ok(()))
    );
    // Once the owner has stopped, the name is free.
    first.stop();
    first.terminated().await;
    let third = system.spawn(twin(&journal)).expect("spawn");
    assert_eq!(third.ask(|r| r, SECOND).await.expect("ask"), Some(Ok(())));
    system.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn a_restarted_owner_takes_its_sender_name_back() {
    struct Flaky {
        out: AtLeastOnce<Charge>,
    }
    enum FlakyMsg {
        Fail,
        Deliver(ReplyTo<Result<u64, String>>),
    }
    impl Actor for Flaky {
        type Msg = FlakyMsg;
        async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
            self.out.start(ctx).await?;
            Ok(())
        }
        async fn handle(
            &mut self,
            msg: FlakyMsg,
            _ctx: &mut Context<Self>,
        ) -> Result<(), BoxError> {
            match msg {
                FlakyMsg::Fail => Err("asked to fail".into()),
                FlakyMsg::Deliver(reply) => {
                    let id = self
                        .out
                        .deliver("/user/nobody", |_| Charge { order: 1, cents: 1 })
                        .await;
                    reply.reply(id.map(|id| id.get()).map_err(|e| e.to_string()));
                    Ok(())
                }
            }
        }
    }
    let journal = store();
    let system = ActorSystem::new("wrap");
    let out = AtLeastOnce::<Charge>::new("flaky", journal, OutboxSettings::default());
    let flaky = system
        .spawn(
            Props::new(move || Flaky { out: out.clone() })
                .with_supervisor(SupervisorStrategy::restart()),
        )
        .expect("spawn");
    assert_eq!(
        flaky.ask(FlakyMsg::Deliver, SECOND).await.expect("ask"),
        Ok(1)
    );
    flaky.tell(FlakyMsg::Fail);
    // The restarted instance started its sender again (same name, same
    // outbox: ids go on).
    assert_eq!(
        flaky.ask(FlakyMsg::Deliver, SECOND).await.expect("ask"),
        Ok(2)
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_of_one_sender_deliver_concurrently_with_distinct_ids() {
    let journal = store();
    let system = ActorSystem::new("wrap");
    let receiver = system.spawn(payments(&journal)).expect("spawn");
    let out = AtLeastOnce::<Charge>::new("order-desk", Arc::clone(&journal), fast());
    let _desk = system
        .spawn(Props::new({
            let out = out.clone();
            move || OrderDesk { out: out.clone() }
        }))
        .expect("spawn");
    eventually("started", 10 * SECOND, || out.deliverer().is_ok()).await;
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..25 {
                let order = t * 100 + n;
                let id = out
                    .deliver("/user/payments", |_| Charge { order, cents: 1 })
                    .await
                    .expect("deliver");
                ids.push(id.get());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("task"));
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=100).collect::<Vec<_>>());
    eventually("all confirmed", 10 * SECOND, || out.unconfirmed() == 0).await;
    let (charged, applied) = receiver.ask(Payments::Totals, SECOND).await.expect("ask");
    assert_eq!((charged, applied.len()), (100, 100));
    system.shutdown().await;
}

/// Hands each delivery it gets to the test, so the test can replay it.
struct Tap {
    to: tokio::sync::mpsc::UnboundedSender<Delivery<Charge>>,
}

impl Actor for Tap {
    type Msg = Delivery<Charge>;

    async fn handle(
        &mut self,
        d: Delivery<Charge>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let _ = self.to.send(d);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processing_of_one_delivery_applies_it_once_and_acks_each() {
    let journal = store();
    let system = ActorSystem::new("wrap");
    let (to, mut taken) = tokio::sync::mpsc::unbounded_channel();
    system
        .spawn(Props::new(move || Tap { to: to.clone() }).with_name("tap"))
        .expect("spawn");
    let out = AtLeastOnce::<Charge>::new("order-desk", Arc::clone(&journal), fast());
    let _desk = system
        .spawn(Props::new({
            let out = out.clone();
            move || OrderDesk { out: out.clone() }
        }))
        .expect("spawn");
    eventually("started", 10 * SECOND, || out.deliverer().is_ok()).await;
    out.deliver("/user/tap", |_| Charge { order: 1, cents: 5 })
        .await
        .expect("deliver");
    let d = taken.recv().await.expect("delivery");
    let inbox = ExactlyOnce::new("inbox", Arc::clone(&journal));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (inbox, d) = (inbox.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            inbox
                .process(&d, |c| {
                    WriteBatch::new().put("effects", c.order.to_be_bytes().to_vec(), vec![1])
                })
                .await
                .expect("process")
        }));
    }
    let mut new = 0;
    for task in tasks {
        if task.await.expect("task") == Receipt::New {
            new += 1;
        }
    }
    assert_eq!(new, 1, "applied once");
    eventually("confirmed", 10 * SECOND, || out.unconfirmed() == 0).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_deliveries_are_applied_once_and_acked_once_durable() {
    let journal = store();
    let system = ActorSystem::new("wrap");
    let (to, mut taken) = tokio::sync::mpsc::unbounded_channel();
    system
        .spawn(Props::new(move || Tap { to: to.clone() }).with_name("tap"))
        .expect("spawn");
    let out = AtLeastOnce::<Charge>::new("order-desk", Arc::clone(&journal), fast());
    let _desk = system
        .spawn(Props::new({
            let out = out.clone();
            move || OrderDesk { out: out.clone() }
        }))
        .expect("spawn");
    eventually("started", 10 * SECOND, || out.deliverer().is_ok()).await;
    for order in 1..=20 {
        out.deliver("/user/tap", |_| Charge { order, cents: 5 })
            .await
            .expect("deliver");
    }
    let inbox = ExactlyOnce::new("inbox", Arc::clone(&journal));
    let effect =
        |c: &Charge| WriteBatch::new().put("effects", c.order.to_be_bytes().to_vec(), vec![1]);
    // Each delivery submitted twice without waiting (a receiver that
    // streams), a third time once the first two are durable.
    let mut submitted = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..20 {
        let d = taken.recv().await.expect("delivery");
        submitted.push(inbox.submit(&d, effect).await.expect("submit"));
        submitted.push(inbox.submit(&d, effect).await.expect("submit"));
        firsts.push(d);
    }
    let mut new = 0;
    for s in submitted {
        if s.await.expect("durable") == Receipt::New {
            new += 1;
        }
    }
    assert_eq!(new, 20, "each applied once");
    for d in &firsts {
        let again = inbox.submit(d, effect).await.expect("submit");
        assert_eq!(again.await.expect("decided"), Receipt::Duplicate);
    }
    let effects = journal.kv_scan("effects", None, 100).await.expect("scan");
    assert_eq!(effects.len(), 20);
    eventually("confirmed", 10 * SECOND, || out.unconfirmed() == 0).await;
    system.shutdown().await;
}
