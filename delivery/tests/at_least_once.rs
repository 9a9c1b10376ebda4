//! At-least-once delivery through the public API: a sender actor with a
//! `Deliverer`, a receiver actor with a `DedupInbox`, on one store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::testkit::{History, Report};
use courier::delivery::{
    DedupInbox, Deliverer, Delivery, DeliveryId, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;

type Ledger = Arc<Mutex<Vec<(u64, u32)>>>;

/// Sends `Order(n)` to `/user/receiver` for each command.
struct Shop {
    journal: Arc<dyn Journal>,
    settings: OutboxSettings,
    out: Option<Deliverer<u64>>,
}

enum ShopCmd {
    Order(u64),
    Unconfirmed(ReplyTo<usize>),
}

impl Actor for Shop {
    type Msg = ShopCmd;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = Deliverer::start(
            ctx,
            "shop",
            Arc::clone(&self.journal),
            self.settings.clone(),
        )
        .await?;
        self.out = Some(out);
        Ok(())
    }

    async fn handle(&mut self, msg: ShopCmd, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = self.out.as_ref().ok_or("not started")?;
        match msg {
            ShopCmd::Order(n) => {
                out.deliver("/user/receiver", |_| n).await?;
            }
            ShopCmd::Unconfirmed(reply) => reply.reply(out.unconfirmed()),
        }
        Ok(())
    }
}

/// Applies each order once; drops the first attempt of ids for which
/// `lose` says so (a lossy link in front of it).
struct Warehouse {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    ledger: Ledger,
    lose: fn(DeliveryId, u32) -> bool,
    lose_ack: fn(DeliveryId, u32) -> bool,
    duplicates: Arc<Mutex<u64>>,
}

impl Actor for Warehouse {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "warehouse").await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if (self.lose)(d.id, d.attempt) {
            return Ok(());
        }
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        match inbox.check(&d) {
            Receipt::Duplicate => {
                *self.duplicates.lock().expect("lock") += 1;
                d.send_ack();
            }
            Receipt::New => {
                self.ledger
                    .lock()
                    .expect("lock")
                    .push((d.message, d.attempt));
                if (self.lose_ack)(d.id, d.attempt) {
                    // Durable, but the ack never leaves.
                    let write = inbox.prepare(&d)?;
                    self.journal.write(write.writes()).await?;
                    write.apply();
                } else {
                    inbox.commit(&d).await?;
                }
            }
        }
        Ok(())
    }
}

fn settings() -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed {
            interval: Duration::from_millis(100),
        },
        ..OutboxSettings::default()
    }
}

struct Setup {
    system: ActorSystem,
    journal: Arc<dyn Journal>,
    ledger: Ledger,
    duplicates: Arc<Mutex<u64>>,
}

fn setup() -> Setup {
    let store = MemoryStore::memory().expect("store");
    Setup {
        system: ActorSystem::new("test"),
        journal: Arc::new(store),
        ledger: Arc::default(),
        duplicates: Arc::default(),
    }
}

impl Setup {
    fn receiver(&self, lose: fn(DeliveryId, u32) -> bool) -> ActorRef<Delivery<u64>> {
        self.receiver_losing_acks(lose, |_, _| false)
    }

    fn receiver_losing_acks(
        &self,
        lose: fn(DeliveryId, u32) -> bool,
        lose_ack: fn(DeliveryId, u32) -> bool,
    ) -> ActorRef<Delivery<u64>> {
        let (journal, ledger, duplicates) = (
            Arc::clone(&self.journal),
            Arc::clone(&self.ledger),
            Arc::clone(&self.duplicates),
        );
        self.system
            .spawn(
                Props::new(move || Warehouse {
                    journal: Arc::clone(&journal),
                    inbox: None,
                    ledger: Arc::clone(&ledger),
                    lose,
                    lose_ack,
                    duplicates: Arc::clone(&duplicates),
                })
                .with_name("receiver"),
            )
            .expect("spawn receiver")
    }

    fn sender(&self, settings: OutboxSettings) -> ActorRef<ShopCmd> {
        let journal = Arc::clone(&self.journal);
        self.system
            .spawn(
                Props::new(move || Shop {
                    journal: Arc::clone(&journal),
                    settings: settings.clone(),
                    out: None,
                })
                .with_name("shop"),
            )
            .expect("spawn sender")
    }

    async fn drained(&self, shop: &ActorRef<ShopCmd>) {
        for _ in 0..1000 {
            let left = shop
                .ask(ShopCmd::Unconfirmed, Duration::from_secs(5))
                .await
                .expect("ask");
            if left == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("outbox did not drain");
    }

    fn applied(&self) -> Vec<u64> {
        self.ledger
            .lock()
            .expect("lock")
            .iter()
            .map(|(n, _)| *n)
            .collect()
    }

    /// Orders `1..=orders` were all sent (the outbox drained): each must be
    /// applied once, and nothing else.
    fn history(&self, orders: u64) -> Report<u64> {
        History::from_ledgers(1..=orders, self.applied()).check()
    }
}

#[tokio::test(start_paused = true)]
async fn in_order_when_nothing_is_lost() {
    let s = setup();
    s.receiver(|_, _| false);
    let shop = s.sender(settings());
    for n in 1..=100 {
        shop.tell(ShopCmd::Order(n));
    }
    s.drained(&shop).await;
    let report = s.history(100);
    assert!(report.is_clean(), "{report}");
    assert_eq!(s.applied(), (1..=100).collect::<Vec<_>>(), "in order");
    assert!(
        s.ledger
            .lock()
            .expect("lock")
            .iter()
            .all(|(_, attempt)| *attempt == 1)
    );
}

#[tokio::test(start_paused = true)]
async fn lost_messages_are_redelivered_and_applied_once() {
    let s = setup();
    // Every 2nd, 5th and 3rd id loses its first two attempts.
    s.receiver(|id, attempt| attempt <= 2 && (id.0 % 2 == 0 || id.0 % 5 == 0 || id.0 % 3 == 0));
    let shop = s.sender(settings());
    for n in 1..=100 {
        shop.tell(ShopCmd::Order(n));
    }
    s.drained(&shop).await;
    let report = s.history(100);
    assert!(report.is_clean(), "{report}");
    // Redelivered ones arrive after later ones.
    assert_ne!(s.applied(), (1..=100).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn lost_acks_cause_duplicates_that_are_suppressed() {
    let s = setup();
    // Acks of the first attempt of every 3rd id are lost.
    s.receiver_losing_acks(|_, _| false, |id, attempt| attempt == 1 && id.0 % 3 == 0);
    let shop = s.sender(settings());
    for n in 1..=50 {
        shop.tell(ShopCmd::Order(n));
    }
    s.drained(&shop).await;
    let report = s.history(50);
    assert!(report.is_clean(), "{report}");
    assert_eq!(*s.duplicates.lock().expect("lock"), 16, "one per lost ack");
}

#[tokio::test(start_paused = true)]
async fn a_restarted_sender_redelivers_unconfirmed_entries_and_continues_its_ids() {
    let s = setup();
    // Receiver missing: nothing is confirmed.
    let shop = s.sender(settings());
    for n in 1..=5 {
        shop.tell(ShopCmd::Order(n));
    }
    let left = shop
        .ask(ShopCmd::Unconfirmed, Duration::from_secs(5))
        .await
        .expect("ask");
    assert_eq!(left, 5);
    shop.stop();
    shop.terminated().await;

    s.receiver(|_, _| false);
    let shop = s.sender(settings());
    shop.tell(ShopCmd::Order(6));
    s.drained(&shop).await;
    let report = s.history(6);
    assert!(report.is_clean(), "{report}");
    // Restored ones first, then the new one.
    assert_eq!(s.applied(), (1..=6).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn max_unconfirmed_is_back_pressure() {
    let s = setup();
    let shop = s.sender(OutboxSettings {
        max_unconfirmed: 3,
        ..settings()
    });
    for n in 1..=3 {
        shop.tell(ShopCmd::Order(n));
    }
    // The 4th order fails the handler with OutboxFull; the supervisor
    // restarts the actor, which reloads the same 3 entries.
    shop.tell(ShopCmd::Order(4));
    let left = shop
        .ask(ShopCmd::Unconfirmed, Duration::from_secs(5))
        .await
        .expect("ask");
    assert_eq!(left, 3);
}
