//! Limits that keep a sender alive: stored and reported bytes that no
//! longer decode as its message type are parked or ignored with a typed
//! error, never an allocation of what a misread length prefix claims (which
//! aborts the process, and, because restored entries are resent first on
//! every start, crash-loops it); and no redelivery setting built by hand
//! can overflow its schedule.

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{
    Deliverer, Delivery, DeliveryId, MAX_REDELIVERY_DELAY, OutboxSettings, Outgoing, Redelivery,
};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;
use courier::{DeadLetter, DeadLetterReason};
use serde::{Deserialize, Serialize};

const SECOND: Duration = Duration::from_secs(1);

/// What version 1 of the sender sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OldShape {
    id: u64,
    amount: u64,
}

/// Version 2 reads `amount`'s bytes as the length of `note`: 2^50 bytes,
/// which an unlimited decode tries to allocate, and aborts.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct NewShape {
    id: u64,
    note: String,
}

const CLAIMED: u64 = 1 << 50;

/// An actor that only owns a `Deliverer<M>` under the sender name "typed".
struct Typed<M> {
    journal: Arc<dyn Journal>,
    settings: OutboxSettings,
    out: Option<Deliverer<M>>,
}

impl<M: Outgoing> Actor for Typed<M> {
    type Msg = ReplyTo<Deliverer<M>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = self.settings.clone();
        self.out = Some(Deliverer::start(ctx, "typed", Arc::clone(&self.journal), settings).await?);
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

async fn typed<M: Outgoing>(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
) -> (ActorRef<ReplyTo<Deliverer<M>>>, Deliverer<M>) {
    typed_with(system, journal, OutboxSettings::default()).await
}

async fn typed_with<M: Outgoing>(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
    settings: OutboxSettings,
) -> (ActorRef<ReplyTo<Deliverer<M>>>, Deliverer<M>) {
    let journal = Arc::clone(journal);
    let actor = system
        .spawn(Props::new(move || Typed::<M> {
            journal: Arc::clone(&journal),
            settings: settings.clone(),
            out: None,
        }))
        .expect("spawn");
    let out = actor.ask(|r| r, 5 * SECOND).await.expect("deliverer");
    (actor, out)
}

fn parked_reasons(letters: &mut tokio::sync::broadcast::Receiver<DeadLetter>) -> Vec<String> {
    let mut reasons = Vec::new();
    while let Ok(letter) = letters.try_recv() {
        if let DeadLetterReason::Other(reason) = &letter.reason {
            if reason.contains("parked") {
                reasons.push(reason.to_string());
            }
        }
    }
    reasons
}

#[tokio::test(start_paused = true)]
async fn an_outbox_entry_of_an_older_shape_is_parked_and_the_process_lives_on() {
    let system = ActorSystem::new("test");
    let store = Arc::new(MemoryStore::memory().expect("memory store"));
    let journal: Arc<dyn Journal> = store.clone();
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();
    // Version 1 sends to a destination that never acks.
    let (v1, out) = typed::<OldShape>(&system, &journal).await;
    out.deliver("/user/nobody", |_| OldShape {
        id: 1,
        amount: CLAIMED,
    })
    .await
    .expect("deliver");
    v1.stop();
    v1.terminated().await;

    // Version 2 restores the entry and resends it first: it is parked then.
    let (_v2, out) = typed::<NewShape>(&system, &journal).await;
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 0, "parked at its first resend");
    let reasons = parked_reasons(&mut dead_letters);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("delivery #1") && r.contains("undecodable")),
        "{reasons:?}"
    );
    // Durably parked (the record layout of docs/delivery.md), not dropped.
    let parked = store
        .kv_get("courier.parked/typed", &1u64.to_be_bytes())
        .await
        .expect("read");
    assert!(parked.is_some(), "the entry is kept in the parked store");
    // Listed all the same, without a message, and purgeable.
    let listed = out.parked().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id, listed[0].message.is_none()),
        (DeliveryId(1), true)
    );
    assert!(
        listed[0].reason.contains("undecodable"),
        "{}",
        listed[0].reason
    );
    // And the sender still works for messages of its new shape.
    out.deliver("/user/nobody", |_| NewShape {
        id: 2,
        note: "new".into(),
    })
    .await
    .expect("deliver after parking");
    assert_eq!(out.unconfirmed(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_transport_refusal_with_a_hostile_header_is_ignored_and_the_next_one_parks() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("memory store"));
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();
    let (_actor, out) = typed::<NewShape>(&system, &journal).await;
    let id = out
        .deliver("/user/nobody", |_| NewShape {
            id: 1,
            note: "x".into(),
        })
        .await
        .expect("deliver");
    let rejection = |payload: Vec<u8>| courier::transport::Refusal {
        recipient: courier::ActorPath::parse("/user/nobody").expect("path"),
        message_type: std::any::type_name::<Delivery<NewShape>>(),
        permanent: true,
        detail: "rejected by test: undecodable".into(),
        payload: payload.into(),
    };
    // The header starts with the sender's name: a prefix claiming 2^50
    // bytes, then garbage; and a header cut short.
    let mut hostile = vec![0xfd];
    hostile.extend_from_slice(&CLAIMED.to_le_bytes());
    hostile.extend_from_slice(b"typed");
    let header = courier::persistence::encode_payload(&(out.sender_id(), id)).expect("encode");
    for payload in [hostile, header[..header.len() - 1].to_vec()] {
        system.event_stream().publish(rejection(payload));
    }
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 1, "nothing parked on garbage");
    // The watcher survived the garbage: a genuine rejection parks.
    system.event_stream().publish(rejection(header));
    tokio::time::sleep(SECOND / 10).await;
    assert_eq!(out.unconfirmed(), 0, "parked on the genuine rejection");
    let reasons = parked_reasons(&mut dead_letters);
    assert!(
        reasons.iter().any(|r| r.contains("rejected by")),
        "{reasons:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn redelivery_settings_built_by_hand_cannot_overflow_the_schedule() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("memory store"));
    let schedules = [
        Redelivery::Fixed {
            interval: Duration::MAX,
        },
        Redelivery::Backoff {
            min: Duration::MAX,
            max: Duration::MAX,
            jitter: f64::NAN,
        },
    ];
    for (n, redelivery) in schedules.into_iter().enumerate() {
        let settings = OutboxSettings {
            redelivery,
            ..OutboxSettings::default()
        };
        let (actor, out) = typed_with::<u64>(&system, &journal, settings).await;
        // The first send schedules the next at `now + delay`: clamped to a
        // day, not an overflow panic in the caller.
        out.deliver("/user/nobody", |_| n as u64)
            .await
            .expect("deliver");
        tokio::time::sleep(MAX_REDELIVERY_DELAY + SECOND).await;
        assert_eq!(out.unconfirmed(), 1 + n, "still pending, still scheduled");
        assert!(out.redelivered() >= 1, "redelivered after at most a day");
        actor.stop();
        actor.terminated().await;
    }
}
