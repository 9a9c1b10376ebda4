//! What the cross-crate scenarios share: the order message of the remote
//! scenarios, its registry, and a sender that hands out its `Deliverer`.
//! The crash harness, the RNG and the ledger receiver live in
//! `courier-test-support`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{Ack, Deliverer, Delivery, OutboxSettings, Redelivery};
use courier::persistence::Journal;
use courier::prelude::*;
use courier::remote::Registry;
use courier_test_support::ledger::Numbered;
use serde::{Deserialize, Serialize};

/// The secret the tests' nodes share.
pub const SECRET: &str = "a shared secret of some length";

/// The manifest orders travel under.
pub const ORDER_DELIVERY: &str = "test.Delivery<Order>/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order(pub u64);

impl Numbered for Order {
    fn number(&self) -> u64 {
        self.0
    }
}

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
