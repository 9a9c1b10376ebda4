//! Live senders found by name (`courier::delivery::live`): found while
//! they run, repaired concurrently through the running deliverer (each
//! parked delivery requeued exactly once), gone once their owner stops.

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{Deliverer, DeliveryId, Error, OutboxSettings, Redelivery, live};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;

/// Parks every delivery after one attempt (its destination does not exist).
struct Desk {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<u64>>,
}

enum DeskCmd {
    Send(u64, ReplyTo<()>),
}

impl Actor for Desk {
    type Msg = DeskCmd;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(10),
            },
            max_attempts: Some(1),
            ..OutboxSettings::default()
        };
        self.out = Some(Deliverer::start(ctx, "desk", Arc::clone(&self.journal), settings).await?);
        Ok(())
    }

    async fn handle(&mut self, msg: DeskCmd, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = self.out.as_ref().ok_or("not started")?;
        let DeskCmd::Send(n, done) = msg;
        out.deliver("/user/nobody", |_| n).await?;
        done.reply(());
        Ok(())
    }
}

async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sender_is_found_repaired_concurrently_and_gone_when_stopped() {
    let store = MemoryStore::memory().expect("store");
    let journal: Arc<dyn Journal> = Arc::new(store);
    let system = ActorSystem::new("live");
    assert!(live::sender(&system, "desk").is_none());
    let j = Arc::clone(&journal);
    let desk = system
        .spawn(
            Props::new(move || Desk {
                journal: Arc::clone(&j),
                out: None,
            })
            .with_name("desk"),
        )
        .expect("spawn");
    for n in 1..=4 {
        desk.ask(|r| DeskCmd::Send(n, r), Duration::from_secs(5))
            .await
            .expect("deliver");
    }
    let sender = live::sender(&system, "desk").expect("running");
    assert_eq!(live::names(&system), vec!["desk".to_owned()]);
    eventually("all parked", || sender.unconfirmed() == Some(0)).await;

    // Eight tasks race to requeue the same four ids: each id is requeued
    // once, the others learn it is no longer parked.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for id in 1..=4 {
                match sender.requeue(DeliveryId(id)).await {
                    Ok(new) => won.push((id, new)),
                    Err(Error::NotParked { .. }) => {}
                    Err(e) => panic!("requeue {id}: {e}"),
                }
                assert!(sender.pending(None, 100).is_some());
            }
            won
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.expect("join"));
    }
    won.sort();
    assert_eq!(
        won.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let mut new: Vec<u64> = won.iter().map(|(_, new)| new.0).collect();
    new.dedup();
    assert_eq!(new.len(), 4, "every requeue got its own new id: {won:?}");
    assert!(new.iter().all(|id| *id > 4));

    desk.stop();
    eventually("gone once stopped", || {
        live::sender(&system, "desk").is_none()
    })
    .await;
    assert!(live::names(&system).is_empty());
    assert!(matches!(
        sender.requeue(DeliveryId(5)).await,
        Err(Error::NotRunning { .. })
    ));
    assert_eq!(sender.unconfirmed(), None);
    system.shutdown().await;
}
