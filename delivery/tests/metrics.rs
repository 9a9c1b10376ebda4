//! The delivery layer's metrics, read through a recorder installed for
//! this test binary (its own binary: a recorder is process-wide). One
//! sender whose second delivery is applied but not acked the first time
//! (so it is redelivered and suppressed as a duplicate), one that parks,
//! re-queues and purges, and is started again after an offline purge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{
    DedupInbox, Deliverer, Delivery, DeliveryId, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Hands out its deliverer.
struct Desk {
    name: &'static str,
    journal: Arc<dyn Journal>,
    max_attempts: Option<u32>,
    out: Option<Deliverer<u64>>,
}

impl Actor for Desk {
    type Msg = ReplyTo<Deliverer<u64>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(20),
            },
            max_attempts: self.max_attempts,
            ..OutboxSettings::default()
        };
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, self.name, journal, settings).await?);
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

/// Applies each delivery once; the first attempt of id 2 is applied and
/// made durable but its ack is never sent.
struct Warehouse {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
}

impl Actor for Warehouse {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "warehouse").await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        match inbox.check(&d) {
            Receipt::Duplicate => d.send_ack(),
            Receipt::New if d.id == DeliveryId(2) && d.attempt == 1 => {
                let write = inbox.prepare(&d)?;
                self.journal.write(write.writes()).await?;
                write.apply();
            }
            Receipt::New => inbox.commit(&d).await?,
        }
        Ok(())
    }
}

/// `name{label=value}` → value, from a snapshot.
fn values(snapshotter: &Snapshotter) -> HashMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

fn counter(values: &HashMap<String, DebugValue>, key: &str) -> u64 {
    match values.get(key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{key}: {other:?} in {values:?}"),
    }
}

fn gauge(values: &HashMap<String, DebugValue>, key: &str) -> f64 {
    match values.get(key) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{key}: {other:?}"),
    }
}

async fn deliverer(
    system: &ActorSystem,
    name: &'static str,
    journal: &Arc<dyn Journal>,
    max_attempts: Option<u32>,
) -> Deliverer<u64> {
    deliverer_of(system, name, journal, max_attempts).await.1
}

/// The sending actor and its deliverer.
async fn deliverer_of(
    system: &ActorSystem,
    name: &'static str,
    journal: &Arc<dyn Journal>,
    max_attempts: Option<u32>,
) -> (ActorRef<ReplyTo<Deliverer<u64>>>, Deliverer<u64>) {
    let journal = Arc::clone(journal);
    let desk = system
        .spawn(
            Props::new(move || Desk {
                name,
                journal: Arc::clone(&journal),
                max_attempts,
                out: None,
            })
            .with_name(name),
        )
        .expect("spawn");
    let out = desk
        .ask(|r| r, Duration::from_secs(5))
        .await
        .expect("deliverer");
    (desk, out)
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn deliveries_redeliveries_duplicates_and_parking_are_counted_per_actor() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");

    let store = MemoryStore::memory().expect("store");
    let journal: Arc<dyn Journal> = Arc::new(store);
    let system = ActorSystem::new("metrics");
    let j = Arc::clone(&journal);
    system
        .spawn(
            Props::new(move || Warehouse {
                journal: Arc::clone(&j),
                inbox: None,
            })
            .with_name("warehouse"),
        )
        .expect("spawn");
    let till = deliverer(&system, "till", &journal, None).await;
    for n in 1..=5 {
        till.deliver("/user/warehouse", |_| n)
            .await
            .expect("deliver");
    }
    until("till confirmed", || till.unconfirmed() == 0).await;

    let (desk_actor, desk) = deliverer_of(&system, "desk", &journal, Some(1)).await;
    for n in [10, 20] {
        desk.deliver("/user/nobody", |_| n).await.expect("deliver");
    }
    until("desk parked", || desk.unconfirmed() == 0).await;
    let parked = desk.parked().await.expect("parked");
    assert_eq!(parked.len(), 2);
    desk.requeue(parked[0].id).await.expect("requeue");
    desk.purge(parked[1].id).await.expect("purge");
    until("requeued parked again", || desk.unconfirmed() == 0).await;

    let v = values(&snapshotter);
    assert_eq!(
        counter(&v, "courier_delivery_delivered_total{sender=till}"),
        5
    );
    assert_eq!(
        counter(&v, "courier_delivery_confirmed_total{sender=till}"),
        5
    );
    assert!(counter(&v, "courier_delivery_redelivered_total{sender=till}") >= 1);
    assert_eq!(
        counter(&v, "courier_delivery_applied_total{receiver=warehouse}"),
        5
    );
    assert!(counter(&v, "courier_delivery_duplicates_total{receiver=warehouse}") >= 1);
    assert_eq!(counter(&v, "courier_delivery_parked_total{sender=till}"), 0);
    // Two parked, one of them re-queued (a new delivery) and parked again.
    assert_eq!(
        counter(&v, "courier_delivery_delivered_total{sender=desk}"),
        3
    );
    assert_eq!(counter(&v, "courier_delivery_parked_total{sender=desk}"), 3);
    assert_eq!(
        counter(&v, "courier_delivery_requeued_total{sender=desk}"),
        1
    );
    assert_eq!(counter(&v, "courier_delivery_purged_total{sender=desk}"), 1);
    assert_eq!(gauge(&v, "courier_delivery_unconfirmed{sender=till}"), 0.0);
    assert_eq!(
        gauge(
            &v,
            "courier_delivery_oldest_unconfirmed_seconds{sender=till}"
        ),
        0.0
    );
    assert_eq!(
        gauge(&v, "courier_delivery_inbox_kept_ids{receiver=warehouse}"),
        0.0
    );
    // Parked twice, re-queued once (and that one parked again), purged once.
    assert_eq!(gauge(&v, "courier_delivery_parked{sender=desk}"), 1.0);
    match v.get("courier_delivery_latency_seconds{sender=till}") {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 5),
        other => panic!("latency: {other:?}"),
    }

    // A snapshot resets what it read (metrics-util's debugging recorder),
    // so the gauge reads 1 again only if the sender, started again, counts
    // what its parked store holds.
    desk_actor.stop();
    until("desk stopped", || desk_actor.is_terminated()).await;
    let (_, desk) = deliverer_of(&system, "desk", &journal, Some(1)).await;
    assert_eq!(desk.parked().await.expect("parked").len(), 1);
    let v = values(&snapshotter);
    assert_eq!(gauge(&v, "courier_delivery_parked{sender=desk}"), 1.0);
    system.shutdown().await;
}
