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
    SnapshotPolicy, SnapshotStore, Snapshots,
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

// The scenarios, by area; each file uses the actors and helpers above.
mod acks_and_decoding;
mod event_sourced;
mod redelivery;
