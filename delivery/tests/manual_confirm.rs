//! The sender confirms or cancels a pending delivery by id (Akka's
//! `confirmDelivery`), and sees the messages an `UnconfirmedWarning` names.

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{AtLeastOnce, OutboxSettings, Redelivery, UnconfirmedWarning};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;
use tokio::sync::mpsc;

const SECOND: Duration = Duration::from_secs(1);

struct Owner {
    out: AtLeastOnce<String>,
    warnings: mpsc::UnboundedSender<UnconfirmedWarning>,
}

impl Actor for Owner {
    type Msg = ();

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let warnings = self.warnings.clone();
        self.out
            .start(ctx)
            .await?
            .on_warning(move |w| drop(warnings.send(w)));
        Ok(())
    }

    async fn handle(&mut self, (): (), _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

fn spawn(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
) -> (
    AtLeastOnce<String>,
    mpsc::UnboundedReceiver<UnconfirmedWarning>,
) {
    let settings = OutboxSettings {
        redelivery: Redelivery::Fixed { interval: SECOND },
        warn_after_attempts: 2,
        ..OutboxSettings::default()
    };
    let out = AtLeastOnce::new("manual", Arc::clone(journal), settings);
    let (tx, rx) = mpsc::unbounded_channel();
    let owner_out = out.clone();
    system
        .spawn(Props::new(move || Owner {
            out: owner_out.clone(),
            warnings: tx.clone(),
        }))
        .expect("spawn");
    (out, rx)
}

async fn started(out: &AtLeastOnce<String>) {
    for _ in 0..1000 {
        if out.deliverer().is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not started");
}

#[tokio::test(start_paused = true)]
async fn pending_deliveries_are_confirmed_or_cancelled_by_id_durably() {
    let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("store"));
    let system = ActorSystem::new("test");
    let (out, mut warnings) = spawn(&system, &journal);
    started(&out).await;
    let mut ids = Vec::new();
    for text in ["a", "b", "c"] {
        ids.push(
            out.deliver("/user/nobody", |_| text.to_owned())
                .await
                .expect("deliver"),
        );
    }
    let warning = warnings.recv().await.expect("a warning");
    let deliverer = out.deliverer().expect("started");
    let named = deliverer.messages_of(&warning).await.expect("messages");
    assert_eq!(
        named,
        vec![
            (ids[0], "a".to_owned()),
            (ids[1], "b".to_owned()),
            (ids[2], "c".to_owned())
        ]
    );
    assert!(deliverer.cancel(ids[0]));
    assert!(deliverer.confirm(ids[1]));
    assert!(
        !deliverer.confirm(ids[1]),
        "a second confirmation changes nothing"
    );
    assert_eq!(out.unconfirmed(), 1);
    // The deletes become durable: after a restart only the third is left.
    let mut gone = false;
    for _ in 0..1000 {
        if deliverer.message(ids[1]).await.expect("read").is_none()
            && deliverer.message(ids[0]).await.expect("read").is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(gone, "the confirmed entries were deleted");
    assert_eq!(
        deliverer.message(ids[2]).await.expect("read"),
        Some("c".to_owned())
    );
    system.shutdown().await;

    let system = ActorSystem::new("test");
    let (out, _warnings) = spawn(&system, &journal);
    started(&out).await;
    let pending = out.deliverer().expect("started").pending(None, 10);
    assert_eq!(
        pending.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    system.shutdown().await;
}
