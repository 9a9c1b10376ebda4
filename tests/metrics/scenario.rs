//! What the metrics tests run (tests/metrics_scrape.rs and
//! tests/metrics_names.rs include this file with `#[path]`): a sender
//! `orders` delivering to a receiver `warehouse` with a dedup inbox, both
//! on one sled store in a temporary directory, and one dead letter. Every
//! delivery confirmed before it returns.

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{AtLeastOnce, Delivery, ExactlyOnce, OutboxSettings};
use courier::persistence::{Journal, SledStore, WriteBatch};
use courier::prelude::*;

pub const SENDER: &str = "orders";
pub const RECEIVER: &str = "warehouse";

struct Desk {
    orders: AtLeastOnce<u64>,
}

impl Actor for Desk {
    type Msg = (u64, ReplyTo<u64>);

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.orders.start(ctx).await?;
        Ok(())
    }

    async fn handle(
        &mut self,
        (number, reply): (u64, ReplyTo<u64>),
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let id = self.orders.deliver("/user/warehouse", |_| number).await?;
        reply.reply(id.get());
        Ok(())
    }
}

struct Warehouse {
    inbox: ExactlyOnce,
}

impl Actor for Warehouse {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox
            .process(&d, |number| {
                WriteBatch::new().put("stock", number.to_be_bytes().to_vec(), b"shipped".to_vec())
            })
            .await?;
        Ok(())
    }
}

/// Delivers `orders` orders and waits until all are confirmed; makes one
/// dead letter (a message to a stopped actor). Returns the system, still
/// running, and the store, so that the caller reads its metrics while
/// both are alive.
pub async fn run(dir: &std::path::Path, orders: u64) -> anyhow::Result<(ActorSystem, SledStore)> {
    let store = SledStore::open(dir)?;
    let journal: Arc<dyn Journal> = Arc::new(store.clone());
    let system = ActorSystem::new("metrics");
    let inbox_journal = Arc::clone(&journal);
    system.spawn(
        Props::new(move || Warehouse {
            inbox: ExactlyOnce::new(RECEIVER, Arc::clone(&inbox_journal)),
        })
        .with_name(RECEIVER),
    )?;
    let orders_out = AtLeastOnce::new(SENDER, journal, OutboxSettings::default());
    let sender = orders_out.clone();
    let desk = system.spawn(Props::new(move || Desk {
        orders: sender.clone(),
    }))?;
    for number in 1..=orders {
        desk.ask(|r| (number, r), Duration::from_secs(10)).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while orders_out.unconfirmed() > 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "deliveries still unconfirmed after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One dead letter: a message to an actor that has stopped.
    let gone = system.spawn(Props::new(|| Idle))?;
    gone.stop();
    tokio::time::timeout(Duration::from_secs(10), gone.terminated()).await?;
    gone.tell(7);
    Ok((system, store))
}

struct Idle;

impl Actor for Idle {
    type Msg = u64;

    async fn handle(&mut self, _: u64, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}
