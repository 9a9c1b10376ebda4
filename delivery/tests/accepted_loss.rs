//! A store that lost acknowledged writes and was opened accepting the loss
//! gets a new epoch: senders start a new incarnation (so ids they reuse are
//! never taken for duplicates) and park what their outbox still held from
//! the old one; inboxes take a new identity (so senders that knew the old
//! one are refused until an operator adopts it).

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{DedupInbox, Deliverer, OutboxSettings};
use courier::persistence::engine::{COMMIT_FILE, Entry, MemoryEngine};
use courier::persistence::{Error as StoreError, Journal, Store, StoreOptions};
use courier::prelude::*;

struct Owner {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<u64>>,
}

impl Actor for Owner {
    type Msg = ReplyTo<Deliverer<u64>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, "s", journal, OutboxSettings::default()).await?);
        Ok(())
    }

    async fn handle(
        &mut self,
        reply: ReplyTo<Deliverer<u64>>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

async fn deliverer(system: &ActorSystem, journal: &Arc<dyn Journal>) -> Deliverer<u64> {
    let journal = Arc::clone(journal);
    let owner = system
        .spawn(Props::new(move || Owner {
            journal: Arc::clone(&journal),
            out: None,
        }))
        .expect("spawn");
    owner
        .ask(|r| r, Duration::from_secs(5))
        .await
        .expect("deliverer")
}

fn engine_from(entries: &[Entry]) -> MemoryEngine {
    let engine = MemoryEngine::new();
    for (key, value) in entries {
        engine.put_raw(key, value);
    }
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_accepted_loss_senders_start_anew_and_inboxes_change_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = || StoreOptions::new().commit_file(dir.path().join(COMMIT_FILE));
    let store = Store::with_options(MemoryEngine::new(), options()).expect("open");
    let journal: Arc<dyn Journal> = Arc::new(store.clone());

    let system = ActorSystem::new("before");
    let out = deliverer(&system, &journal).await;
    let old = out.sender_id().clone();
    // Nobody is listening: both stay in the outbox.
    out.deliver("/user/nobody", |_| 1).await.expect("deliver");
    out.deliver("/user/nobody", |_| 2).await.expect("deliver");
    let inbox = DedupInbox::open(Arc::clone(&journal), "r")
        .await
        .expect("inbox");
    let old_identity = inbox.identity();
    // What a backup (or a rolled-back engine) holds from here on.
    let backup = store.engine().expect("open").raw_entries();
    out.deliver("/user/nobody", |_| 3).await.expect("deliver");
    system.shutdown().await;
    drop((out, inbox, journal));
    store.close().await.expect("close");

    // The engine comes back older than what was acknowledged: refused...
    let refused = Store::with_options(engine_from(&backup), options());
    assert!(
        matches!(refused, Err(StoreError::RolledBack { .. })),
        "{:?}",
        refused.err()
    );
    // ...until the operator accepts the loss.
    let store = Store::with_options(engine_from(&backup), options().accept_loss(true))
        .expect("open accepting the loss");
    let journal: Arc<dyn Journal> = Arc::new(store.clone());
    let system = ActorSystem::new("after");
    let out = deliverer(&system, &journal).await;
    assert_eq!(out.sender_id().name, old.name);
    assert_ne!(
        out.sender_id().incarnation,
        old.incarnation,
        "ids reused after the loss must not look like duplicates"
    );
    assert_eq!(
        out.unconfirmed(),
        0,
        "the old incarnation's entries are parked"
    );
    let parked = out.parked().await.expect("parked");
    assert_eq!(
        parked.iter().map(|p| p.message).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    assert!(
        parked[0].reason.contains("lost acknowledged writes"),
        "{}",
        parked[0].reason
    );
    let inbox = DedupInbox::open(Arc::clone(&journal), "r")
        .await
        .expect("inbox");
    assert_ne!(inbox.identity(), old_identity);
    // Opened again on the same epoch, both stay as they are.
    let again = DedupInbox::open(Arc::clone(&journal), "r")
        .await
        .expect("inbox");
    assert_eq!(again.identity(), inbox.identity());
    system.shutdown().await;
}
