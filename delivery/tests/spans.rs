//! One delivery's path in the logs: the `courier.deliver` span (sender,
//! destination, id) around the outbox write and the send, the
//! `courier.inbox.commit` span (receiver, sender, id) around the receiver's
//! inbox write and ack, the `courier.redeliver` span (sender, destination,
//! id, attempt) around a redelivery's send, and the `courier.confirm` span
//! around the sender's "delivery confirmed" with its latency; a
//! redelivered duplicate is logged as suppressed. Alone in its
//! test binary: it installs a global `tracing` subscriber.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::{
    DedupInbox, Deliverer, Delivery, DeliveryId, OutboxSettings, Receipt, Redelivery,
};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;

struct Desk {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<u64>>,
}

impl Actor for Desk {
    type Msg = ReplyTo<Deliverer<u64>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(20),
            },
            ..OutboxSettings::default()
        };
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, "till", journal, settings).await?);
        Ok(())
    }

    async fn handle(&mut self, reply: Self::Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

/// Applies each delivery once; the first attempt of id 2 is applied but
/// not acked, so its redelivery is a duplicate.
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

/// Collects what the `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("lock"))
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn one_delivery_can_be_followed_from_deliver_to_confirm() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("the only subscriber of this binary");

    let store = MemoryStore::memory().expect("store");
    let journal: Arc<dyn Journal> = Arc::new(store);
    let system = ActorSystem::new("spans");
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
    let j = Arc::clone(&journal);
    let desk = system
        .spawn(
            Props::new(move || Desk {
                journal: Arc::clone(&j),
                out: None,
            })
            .with_name("till"),
        )
        .expect("spawn");
    let till = desk
        .ask(|r| r, Duration::from_secs(5))
        .await
        .expect("deliverer");
    for n in 1..=3 {
        till.deliver("/user/warehouse", |_| n)
            .await
            .expect("deliver");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while till.unconfirmed() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    system.shutdown().await;

    let lines = captured.lines();
    let has = |parts: &[&str]| lines.iter().any(|l| parts.iter().all(|p| l.contains(p)));
    let all = lines.join("\n");
    for id in ["#1", "#3"] {
        let span = format!("id={id}");
        assert!(
            has(&[
                "courier.deliver{",
                "sender=till@",
                "destination=\"/user/warehouse\"",
                &span,
                "delivery sent"
            ]),
            "no send of {id} in its deliver span:\n{all}"
        );
        assert!(
            has(&[
                "courier.inbox.commit{",
                "receiver=warehouse",
                "sender=till@",
                &span,
                "delivery applied"
            ]),
            "no inbox commit of {id} in its span:\n{all}"
        );
        assert!(
            has(&["delivery confirmed", "sender=till@", &span, "latency_ms="]),
            "no confirm of {id}:\n{all}"
        );
    }
    assert!(
        has(&[
            "courier.redeliver{",
            "sender=till@",
            "destination=/user/warehouse",
            "id=#2",
            "attempt=2",
            "delivery sent"
        ]),
        "no redelivery of #2 in its span:\n{all}"
    );
    for id in ["#1", "#2", "#3"] {
        let span = format!("id={id}");
        assert!(
            has(&[
                "courier.confirm{",
                "sender=till@",
                "destination=/user/warehouse",
                &span,
                "delivery confirmed"
            ]),
            "no confirm of {id} in its span:\n{all}"
        );
    }
    assert!(
        has(&["duplicate suppressed", "receiver=warehouse", "id=#2"]),
        "no suppressed duplicate of #2:\n{all}"
    );
}
