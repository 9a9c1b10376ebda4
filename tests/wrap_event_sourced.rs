//! Wrapping event-sourced actors: the sender adds a prepared delivery to
//! its effect (`and_deliver`), the receiver keeps its own command enum and
//! processes each delivery exactly once with `ExactlyOnce::effect`.

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{AtLeastOnce, Delivery, ExactlyOnce, OutboxSettings, Redelivery};
use courier::persistence::{Journal, MemoryStore, Snapshots};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

const SECOND: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Charge {
    order: u64,
    cents: u64,
}

fn fast() -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed {
            interval: Duration::from_millis(50),
        },
        ..OutboxSettings::default()
    }
}

// ---- event-sourced on both sides ----

#[derive(Serialize, Deserialize)]
struct Placed(u64);

struct EsDesk {
    out: AtLeastOnce<Charge>,
}

impl EventSourced for EsDesk {
    type Command = (u64, ReplyTo<u64>);
    type Event = Placed;

    async fn handle_command(
        &mut self,
        (order, reply): (u64, ReplyTo<u64>),
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        let prepared = self
            .out
            .prepare("/user/es-payments", |_| Charge { order, cents: 10 })?;
        let id = prepared.id().get();
        Ok(Effect::persist(Placed(order))
            .and_deliver(prepared)
            .reply(reply, move |_| id))
    }

    fn apply_event(&mut self, _: Placed) {}

    async fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        self.out.start(ctx).await?;
        Ok(())
    }
}

enum EsPayments {
    Charge(Delivery<Charge>),
    Total(ReplyTo<u64>),
}

impl From<Delivery<Charge>> for EsPayments {
    fn from(d: Delivery<Charge>) -> Self {
        EsPayments::Charge(d)
    }
}

struct EsLedger {
    inbox: ExactlyOnce,
    total: u64,
}

impl EventSourced for EsLedger {
    type Command = EsPayments;
    type Event = u64;

    async fn handle_command(
        &mut self,
        cmd: EsPayments,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(match cmd {
            EsPayments::Charge(d) => self.inbox.effect(&d, |c| Effect::persist(c.cents)).await?,
            EsPayments::Total(reply) => {
                reply.reply(self.total);
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, cents: u64) {
        self.total += cents;
    }
}

impl Snapshots for EsLedger {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.total
    }

    fn apply_snapshot(&mut self, total: u64) {
        self.total = total;
    }
}

#[tokio::test]
async fn event_sourced_sender_and_receiver_wrap_in_a_few_lines() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let es: Arc<dyn Journal> = store.clone();
    let system = ActorSystem::new("wrap");
    let ledger = system
        .spawn(
            Persistent::props("es-payments", {
                let es = Arc::clone(&es);
                move || EsLedger {
                    inbox: ExactlyOnce::new("es-payments", Arc::clone(&es)),
                    total: 0,
                }
            })
            .with_store(store.clone())
            .with_name("es-payments")
            .with_adapter::<Delivery<Charge>>(),
        )
        .expect("spawn");
    let out = AtLeastOnce::<Charge>::new("es-desk", Arc::clone(&es), fast());
    let desk = system
        .spawn(
            Persistent::props("es-desk", move || EsDesk { out: out.clone() })
                .with_store(store.clone()),
        )
        .expect("spawn");
    for order in 1..=5 {
        assert_eq!(desk.ask(|r| (order, r), SECOND).await.expect("ask"), order);
    }
    let mut total = 0;
    for _ in 0..200 {
        total = ledger.ask(EsPayments::Total, SECOND).await.expect("ask");
        if total == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(total, 50);
    // Events and inbox records went into the receiver's journal together.
    assert_eq!(es.highest_seq_nr("es-payments").await.expect("seq"), 5);
    system.shutdown().await;
}

/// The receiver's ledger with its inbox on `inbox_store` and its journal on
/// `actor_store`, and a desk delivering to it on `actor_store`.
fn ledger_and_desk(
    system: &ActorSystem,
    actor_store: &Arc<MemoryStore>,
    inbox_store: Arc<dyn Journal>,
) -> (ActorRef<EsPayments>, ActorRef<(u64, ReplyTo<u64>)>) {
    let ledger = system
        .spawn(
            Persistent::props("es-payments", move || EsLedger {
                inbox: ExactlyOnce::new("es-payments", Arc::clone(&inbox_store)),
                total: 0,
            })
            .with_store(actor_store.clone())
            .with_name("es-payments")
            .with_adapter::<Delivery<Charge>>(),
        )
        .expect("spawn");
    let journal: Arc<dyn Journal> = actor_store.clone();
    let out = AtLeastOnce::<Charge>::new("es-desk", journal, fast());
    let desk = system
        .spawn(
            Persistent::props("es-desk", move || EsDesk { out: out.clone() })
                .with_store(actor_store.clone()),
        )
        .expect("spawn");
    (ledger, desk)
}

/// An inbox on another store than the actor's journal would never read
/// back the records the actor writes for it, and would apply a redelivery
/// twice: the effect is refused, loudly (the actor stops), and nothing is
/// written or acknowledged.
#[tokio::test]
async fn an_inbox_on_another_store_than_the_actors_is_refused() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let other = Arc::new(MemoryStore::memory().expect("store"));
    let other_journal: Arc<dyn Journal> = other.clone();
    let system = ActorSystem::new("wrap");
    let (ledger, desk) = ledger_and_desk(&system, &store, Arc::clone(&other_journal));
    assert_eq!(desk.ask(|r| (1, r), SECOND).await.expect("ask"), 1);
    tokio::time::timeout(5 * SECOND, ledger.terminated())
        .await
        .expect("the ledger stops on the refused effect");
    assert_eq!(store.highest_seq_nr("es-payments").await.expect("seq"), 0);
    assert_eq!(
        other_journal
            .highest_seq_nr("es-payments")
            .await
            .expect("seq"),
        0
    );
    system.shutdown().await;
}

/// Another handle (a clone in its own `Arc`) of the actor's own store is
/// the same store: accepted.
#[tokio::test]
async fn an_inbox_on_another_handle_of_the_same_store_is_accepted() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let handle: Arc<dyn Journal> = Arc::new(MemoryStore::clone(&store));
    let system = ActorSystem::new("wrap");
    let (ledger, desk) = ledger_and_desk(&system, &store, handle);
    assert_eq!(desk.ask(|r| (1, r), SECOND).await.expect("ask"), 1);
    let mut total = 0;
    for _ in 0..200 {
        total = ledger.ask(EsPayments::Total, SECOND).await.expect("ask");
        if total == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(total, 10);
    assert_eq!(store.highest_seq_nr("es-payments").await.expect("seq"), 1);
    system.shutdown().await;
}

/// The sender's side of the same rule: an outbox on another store than the
/// event-sourced sender's journal would never be read back after a
/// restart, so its unconfirmed deliveries would never be redelivered. The
/// effect is refused (the desk stops) and nothing is written.
#[tokio::test]
async fn an_outbox_on_another_store_than_the_actors_is_refused() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let other: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("wrap");
    let out = AtLeastOnce::<Charge>::new("es-desk", Arc::clone(&other), fast());
    let desk = system
        .spawn(
            Persistent::props("es-desk", move || EsDesk { out: out.clone() })
                .with_store(store.clone()),
        )
        .expect("spawn");
    let asked = desk.ask(|r| (1, r), SECOND).await;
    assert!(asked.is_err(), "the order was acknowledged: {asked:?}");
    tokio::time::timeout(5 * SECOND, desk.terminated())
        .await
        .expect("the desk stops on the refused effect");
    assert_eq!(store.highest_seq_nr("es-desk").await.expect("seq"), 0);
    system.shutdown().await;
}
