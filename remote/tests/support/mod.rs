//! What the remote tests share: the message types, a deduplicating receiver
//! whose effect is a durable ledger, a sender that hands out its
//! `Deliverer`, and small helpers. Each test file uses part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier::delivery::{
    Ack, DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, SledStore, WriteBatch};
use courier::prelude::*;
use courier::remote::Registry;
use serde::{Deserialize, Serialize};

/// The secret the tests' nodes share.
pub const SECRET: &str = "a shared secret of some length";

/// The manifest orders travel under.
pub const ORDER_DELIVERY: &str = "test.Delivery<Order>/1";

// ---- plain messages ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub account: String,
    pub cents: u64,
}

pub fn charge(cents: u64) -> Charge {
    Charge {
        account: "acme".into(),
        cents,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund(pub u64);

/// Records every charge it receives.
pub struct Billing {
    pub seen: Arc<Mutex<Vec<Charge>>>,
}

impl Actor for Billing {
    type Msg = Charge;

    async fn handle(&mut self, msg: Charge, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.seen.lock().expect("lock").push(msg);
        Ok(())
    }
}

/// Charges and refunds.
pub fn billing_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Charge>("billing.Charge/1")
        .expect("register")
        .register::<Refund>("billing.Refund/1")
        .expect("register");
    registry
}

// ---- at-least-once ----

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order(pub u64);

/// Deliveries of orders and their acks.
pub fn delivery_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Delivery<Order>>(ORDER_DELIVERY)
        .expect("register")
        .register::<Ack>("courier.Ack/1")
        .expect("register");
    registry
}

/// Applies each order once: its ledger entry (the order number and a unique
/// suffix, so that a second application shows as a second entry) and its
/// inbox record in one atomic write, then the ack.
pub struct Ledger {
    pub journal: Arc<dyn Journal>,
    pub inbox: Option<DedupInbox>,
}

impl Ledger {
    pub fn props(journal: &Arc<dyn Journal>) -> Props<Self> {
        let journal = Arc::clone(journal);
        Props::new(move || Ledger {
            journal: Arc::clone(&journal),
            inbox: None,
        })
    }
}

impl Actor for Ledger {
    type Msg = Delivery<Order>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "ledger").await?);
        Ok(())
    }

    async fn handle(
        &mut self,
        d: Delivery<Order>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        if inbox.check(&d) == Receipt::Duplicate {
            d.send_ack();
            return Ok(());
        }
        let mut key = d.message.0.to_be_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::now_v7().as_bytes());
        let mut batch = WriteBatch::new().put("applied", key, Vec::new());
        let write = inbox.prepare(&d)?;
        batch.extend(write.writes());
        self.journal.write(batch).await?;
        write.ack();
        Ok(())
    }
}

/// Every application in the ledger, in key order: a number applied twice
/// appears twice. Feed it to a `History` as what was applied.
pub async fn ledger(journal: &dyn Journal) -> Vec<u64> {
    let mut applied = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = journal
            .kv_scan("applied", after.as_deref(), 1000)
            .await
            .expect("scan the ledger");
        for (key, _) in &page {
            let number: [u8; 8] = key[..8].try_into().expect("ledger key");
            applied.push(u64::from_be_bytes(number));
        }
        match page.last() {
            Some((key, _)) if page.len() == 1000 => after = Some(key.clone()),
            _ => return applied,
        }
    }
}

/// A sender named "shop" that hands out its `Deliverer`.
pub struct Shop {
    pub journal: Arc<dyn Journal>,
    pub interval: Duration,
    pub out: Option<Deliverer<Order>>,
}

impl Actor for Shop {
    type Msg = ReplyTo<Deliverer<Order>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: self.interval,
            },
            ..OutboxSettings::default()
        };
        self.out = Some(Deliverer::start(ctx, "shop", Arc::clone(&self.journal), settings).await?);
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

/// Spawns a shop at `/user/shop` and returns its deliverer.
pub async fn shop(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
    interval: Duration,
) -> Deliverer<Order> {
    let journal = Arc::clone(journal);
    let shop = system
        .spawn(
            Props::new(move || Shop {
                journal: Arc::clone(&journal),
                interval,
                out: None,
            })
            .with_name("shop"),
        )
        .expect("spawn shop");
    shop.ask(|r| r, Duration::from_secs(10))
        .await
        .expect("deliverer")
}

// ---- helpers ----

/// sled refuses a directory another handle (a killed process) still holds
/// for a moment.
pub async fn open_sled(path: &str) -> SledStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(path) {
            Ok(store) => return store,
            Err(e) if Instant::now() < deadline => {
                eprintln!("open failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot open {path}: {e}"),
        }
    }
}

/// xorshift64*, for fault schedules from a printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
