//! At-least-once delivery between two nodes: the delivery adapters work
//! unchanged over remote paths; the ack finds its way back because the
//! delivery's `ack_to` travels as a path.

mod support;

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{Ack, Delivery};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;
use courier::remote::{Node, Registry, RemoteSettings};
// The facade has `courier::delivery::testkit` only under its `testkit`
// feature; the dev-dependency enables it on the crate itself.
use courier_delivery::testkit::History;
use courier_test_support::ledger::{Ledger, ledger};
use serde::{Deserialize, Serialize};
use support::{ORDER_DELIVERY, Order, SECRET, delivery_registry, shop};

async fn warehouse_node(
    listen: std::net::SocketAddr,
    journal: &Arc<dyn Journal>,
) -> (ActorSystem, Node) {
    let system = ActorSystem::new("warehouse-node");
    system
        .spawn(Ledger::<Order>::props(journal).with_name("warehouse"))
        .expect("spawn warehouse");
    let mut settings = RemoteSettings::new("warehouse-node", SECRET);
    settings.listen = listen;
    let node = Node::start(&system, settings, delivery_registry())
        .await
        .expect("warehouse node");
    (system, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_cross_nodes_at_least_once_and_apply_once() {
    let receiver_store: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("store"));
    let (rsys, rnode) = warehouse_node("127.0.0.1:0".parse().expect("addr"), &receiver_store).await;
    let address = rnode.address();
    let destination = rnode.path_of("/user/warehouse");

    let system = ActorSystem::new("shop-node");
    let _snode = Node::start(
        &system,
        RemoteSettings::new("shop-node", SECRET),
        delivery_registry(),
    )
    .await
    .expect("shop node");
    let sender_store: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("store"));
    let out = shop(&system, &sender_store, Duration::from_millis(200)).await;

    for n in 1..=50 {
        out.deliver(&destination, |_| Order(n))
            .await
            .expect("deliver");
    }
    // The receiving node goes down with deliveries in flight...
    rnode.shutdown().await;
    rsys.shutdown().await;
    for n in 51..=100 {
        out.deliver(&destination, |_| Order(n))
            .await
            .expect("deliver");
    }
    // ...and comes back on the same address, with its inbox.
    let (_rsys, _rnode) = warehouse_node(address, &receiver_store).await;

    for _ in 0..300 {
        if out.unconfirmed() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        out.unconfirmed(),
        0,
        "every delivery confirmed across nodes"
    );
    let report = History::from_ledgers(1..=100, ledger(&*receiver_store).await).check();
    assert!(report.is_clean(), "each applied exactly once: {report}");
    assert!(
        out.redelivered() > 0,
        "the outage was bridged by redelivery"
    );
}

/// What a newer receiver expects under the same manifest: the sender's
/// orders do not decode as it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderV2 {
    sku: String,
    quantity: u32,
}

struct Strict;

impl Actor for Strict {
    type Msg = Delivery<OrderV2>;

    async fn handle(
        &mut self,
        d: Delivery<OrderV2>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        d.send_ack();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_rejected_as_undecodable_is_parked_at_once() {
    let rsys = ActorSystem::new("strict-node");
    rsys.spawn(Props::new(|| Strict).with_name("warehouse"))
        .expect("spawn");
    let mut strict = Registry::new();
    strict
        .register::<Delivery<OrderV2>>(ORDER_DELIVERY)
        .expect("register")
        .register::<Ack>("courier.Ack/1")
        .expect("register");
    let rnode = Node::start(&rsys, RemoteSettings::new("strict-node", SECRET), strict)
        .await
        .expect("node");

    let system = ActorSystem::new("shop-node");
    let _snode = Node::start(
        &system,
        RemoteSettings::new("shop-node", SECRET),
        delivery_registry(),
    )
    .await
    .expect("shop node");
    let store: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("store"));
    let out = shop(&system, &store, Duration::from_millis(200)).await;
    let id = out
        .deliver(&rnode.path_of("/user/warehouse"), |_| Order(7))
        .await
        .expect("deliver");

    let mut parked = Vec::new();
    for _ in 0..100 {
        parked = out.parked().await.expect("parked");
        if !parked.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(parked.len(), 1, "parked, not retried");
    assert_eq!(parked[0].id, id);
    assert!(
        parked[0].reason.contains("undecodable"),
        "{}",
        parked[0].reason
    );
    assert_eq!(out.unconfirmed(), 0);
    assert!(
        out.redelivered() <= 1,
        "parked at the first rejection, not after retries"
    );
}

/// A receiver with its own enum: deliveries reach it through a
/// `Delivery<Order>` adapter under its path, on another node as locally.
enum Depot {
    Deliver(Delivery<Order>),
    Count(ReplyTo<usize>),
}

impl From<Delivery<Order>> for Depot {
    fn from(d: Delivery<Order>) -> Self {
        Depot::Deliver(d)
    }
}

struct DepotActor {
    inbox: courier::delivery::ExactlyOnce,
    applied: std::collections::BTreeSet<u64>,
}

impl Actor for DepotActor {
    type Msg = Depot;

    async fn handle(&mut self, msg: Depot, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Depot::Deliver(d) => {
                let receipt = self
                    .inbox
                    .process(&d, |_| courier::persistence::WriteBatch::new())
                    .await?;
                if receipt == courier::delivery::Receipt::New {
                    assert!(self.applied.insert(d.message.0), "applied twice");
                }
            }
            Depot::Count(reply) => reply.reply(self.applied.len()),
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_receiver_with_its_own_enum_takes_deliveries_through_its_adapter() {
    let receiver_store: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("store"));
    let rsys = ActorSystem::new("depot-node");
    let depot = rsys
        .spawn(
            Props::new(move || DepotActor {
                inbox: courier::delivery::ExactlyOnce::new("depot", Arc::clone(&receiver_store)),
                applied: Default::default(),
            })
            .with_name("depot")
            .with_adapter::<Delivery<Order>>(),
        )
        .expect("spawn depot");
    let rnode = Node::start(
        &rsys,
        RemoteSettings::new("depot-node", SECRET),
        delivery_registry(),
    )
    .await
    .expect("depot node");
    let destination = rnode.path_of("/user/depot");

    let system = ActorSystem::new("shop-node");
    let snode = Node::start(
        &system,
        RemoteSettings::new("shop-node", SECRET),
        delivery_registry(),
    )
    .await
    .expect("shop node");
    // A remote lookup of the adapted type needs only the type registered
    // with the transport: the peer resolves the path with the depot's
    // adapters as each message arrives.
    system
        .lookup::<Delivery<Order>>(&destination)
        .expect("remote lookup of the adapted type");
    // The receiving node's own resolver finds the adapter by its node path.
    rsys.lookup::<Delivery<Order>>(&destination)
        .expect("local lookup through the node path");
    let store: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("store"));
    let out = shop(&system, &store, Duration::from_millis(100)).await;
    for n in 1..=20 {
        out.deliver(&destination, |_| Order(n))
            .await
            .expect("deliver");
    }
    for _ in 0..200 {
        if out.unconfirmed() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(out.unconfirmed(), 0, "every delivery confirmed");
    assert_eq!(
        depot
            .ask(Depot::Count, Duration::from_secs(5))
            .await
            .expect("the depot still answers its own queries"),
        20
    );
    assert!(out.parked().await.expect("parked").is_empty());
    snode.shutdown().await;
    rnode.shutdown().await;
}
