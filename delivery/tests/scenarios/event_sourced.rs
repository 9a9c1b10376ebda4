//! An event-sourced sender and receiver: events and outbox entries in one
//! write, failed persists, snapshots that delete events.

use super::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum BookEvent {
    Placed { order: u64, delivery: u64 },
}

/// An event-sourced sender: each order is an event, and its delivery's
/// outbox entry commits in the same write.
struct OrderBook {
    journal: Arc<dyn Journal>,
    placed: Vec<(u64, u64)>,
    out: Option<Deliverer<u64>>,
}

enum BookCmd {
    Place(u64, ReplyTo<u64>),
    Placed(ReplyTo<Vec<(u64, u64)>>),
    Outbox(ReplyTo<Deliverer<u64>>),
}

impl EventSourced for OrderBook {
    type Command = BookCmd;
    type Event = BookEvent;

    async fn handle_command(
        &mut self,
        cmd: BookCmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        let out = self.out.as_ref().ok_or("not recovered")?;
        Ok(match cmd {
            BookCmd::Place(order, reply) => {
                let prepared = out.prepare("/user/stock", |_| order)?;
                let delivery = prepared.id().get();
                Effect::persist(BookEvent::Placed { order, delivery })
                    .with_writes(prepared.writes())
                    .then(move |_: &Self, _| {
                        prepared.send();
                    })
                    .reply(reply, move |_: &Self| delivery)
            }
            BookCmd::Placed(reply) => {
                reply.reply(self.placed.clone());
                Effect::none()
            }
            BookCmd::Outbox(reply) => {
                reply.reply(out.clone());
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, event: BookEvent) {
        let BookEvent::Placed { order, delivery } = event;
        self.placed.push((order, delivery));
    }

    async fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        self.out =
            Some(Deliverer::start(ctx, "order-book", Arc::clone(&self.journal), settings()).await?);
        Ok(())
    }
}

impl Snapshots for OrderBook {
    type Snapshot = Vec<(u64, u64)>;

    fn to_snapshot(&self) -> Vec<(u64, u64)> {
        self.placed.clone()
    }

    fn apply_snapshot(&mut self, snapshot: Vec<(u64, u64)>) {
        self.placed = snapshot;
    }
}

fn order_book(
    system: &ActorSystem,
    journal: &Arc<dyn Journal>,
    snapshots: &Arc<dyn SnapshotStore>,
    policy: SnapshotPolicy,
) -> ActorRef<BookCmd> {
    let inner = Arc::clone(journal);
    system
        .spawn(
            Persistent::props_with(
                "order-book",
                move || OrderBook {
                    journal: Arc::clone(&inner),
                    placed: Vec::new(),
                    out: None,
                },
                Arc::clone(journal),
                Arc::clone(snapshots),
                PersistentSettings {
                    snapshots: policy,
                    ..PersistentSettings::default()
                },
            )
            .with_name("order-book"),
        )
        .expect("spawn order book")
}

/// An event-sourced receiver: the applied order is an event, and its inbox
/// record commits in the same write; the ack follows.
struct Stock {
    journal: Arc<dyn Journal>,
    received: Vec<u64>,
    inbox: Option<DedupInbox>,
    duplicates: Arc<Mutex<u64>>,
}

enum StockCmd {
    Deliver(Delivery<u64>),
    Received(ReplyTo<Vec<u64>>),
}

impl EventSourced for Stock {
    type Command = StockCmd;
    type Event = u64;

    async fn handle_command(
        &mut self,
        cmd: StockCmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not recovered")?;
        Ok(match cmd {
            StockCmd::Deliver(d) => match inbox.check(&d) {
                Receipt::Duplicate => {
                    *self.duplicates.lock().expect("lock") += 1;
                    d.send_ack();
                    Effect::none()
                }
                Receipt::New => {
                    let write = inbox.prepare(&d)?;
                    Effect::persist(d.message)
                        .with_writes(write.writes())
                        .then(move |_: &Self, _| write.ack())
                }
            },
            StockCmd::Received(reply) => {
                reply.reply(self.received.clone());
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, order: u64) {
        self.received.push(order);
    }

    async fn recovery_completed(
        &mut self,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "stock").await?);
        Ok(())
    }
}

impl Snapshots for Stock {
    type Snapshot = Vec<u64>;

    fn to_snapshot(&self) -> Vec<u64> {
        self.received.clone()
    }

    fn apply_snapshot(&mut self, snapshot: Vec<u64>) {
        self.received = snapshot;
    }
}

/// Spawns the stock at `/user/stock-actor` and an adapter at `/user/stock`
/// that turns deliveries into its commands, behind a lossy link.
fn stock(
    system: &ActorSystem,
    store: &Arc<ScenarioStore>,
    faults: Faults,
) -> (ActorRef<StockCmd>, Arc<Mutex<u64>>) {
    let duplicates: Arc<Mutex<u64>> = Arc::default();
    let (journal, dups): (Arc<dyn Journal>, _) = (store.clone(), Arc::clone(&duplicates));
    let actor = system
        .spawn(
            Persistent::props("stock", move || Stock {
                journal: Arc::clone(&journal),
                received: Vec::new(),
                inbox: None,
                duplicates: Arc::clone(&dups),
            })
            .with_store(store.clone())
            .with_name("stock-actor"),
        )
        .expect("spawn stock");
    let adapter = system
        .spawn(
            Props::new({
                let actor = actor.clone();
                move || Forward { to: actor.clone() }
            })
            .with_name("stock-in"),
        )
        .expect("adapter");
    FaultyLink::spawn_for_deliveries(
        system,
        "stock",
        adapter,
        faults,
        Faults::seeded(9).drop(0.2),
    )
    .expect("link");
    (actor, duplicates)
}

/// Wraps deliveries into the stock's command type.
struct Forward {
    to: ActorRef<StockCmd>,
}

impl Actor for Forward {
    type Msg = Delivery<u64>;

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.to.tell(StockCmd::Deliver(d));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn event_sourced_sender_and_receiver_apply_each_order_once() {
    let system = ActorSystem::new("test");
    let store = memory();
    let journal: Arc<dyn Journal> = store.clone();
    let snapshots: Arc<dyn SnapshotStore> = store.clone();
    let (stock_ref, duplicates) = stock(
        &system,
        &store,
        Faults::seeded(5)
            .drop(0.2)
            .duplicate(0.2)
            .reorder(0.2, SECOND / 10),
    );
    let book = order_book(&system, &journal, &snapshots, SnapshotPolicy::default());
    for n in 1..=50 {
        let id = book
            .ask(|r| BookCmd::Place(n, r), 5 * SECOND)
            .await
            .expect("place");
        assert_eq!(id, n, "delivery ids are gap-free from 1");
    }
    let out = book.ask(BookCmd::Outbox, 5 * SECOND).await.expect("outbox");
    for _ in 0..1000 {
        if out.unconfirmed() == 0 {
            break;
        }
        tokio::time::sleep(SECOND / 2).await;
    }
    assert_eq!(out.unconfirmed(), 0);
    let received = stock_ref
        .ask(StockCmd::Received, 5 * SECOND)
        .await
        .expect("received");
    let report = History::from_ledgers(1..=50, received).check();
    assert!(report.is_clean(), "{report}");
    assert!(
        *duplicates.lock().expect("lock") > 0,
        "the link duplicated some"
    );
    // The orders are events; the receiver's state replays to the same set.
    assert_eq!(
        journal.highest_seq_nr("order-book").await.expect("highest"),
        50
    );
    assert_eq!(journal.highest_seq_nr("stock").await.expect("highest"), 50);
}

#[tokio::test(start_paused = true)]
async fn a_failed_persist_writes_neither_event_nor_outbox_entry_and_burns_no_id() {
    let system = ActorSystem::new("test");
    let store = memory();
    let chaos = Arc::new(ChaosJournal::new(store.clone(), 0.0, 0.0, 4));
    let journal: Arc<dyn Journal> = chaos.clone();
    let snapshots: Arc<dyn SnapshotStore> = store.clone();
    let book = order_book(&system, &journal, &snapshots, SnapshotPolicy::default());
    assert_eq!(
        book.ask(|r| BookCmd::Place(100, r), 5 * SECOND)
            .await
            .expect("place"),
        1
    );

    chaos.set_failures(1.0, 0.0);
    assert!(
        book.ask(|r| BookCmd::Place(200, r), 5 * SECOND)
            .await
            .is_err(),
        "the persist failed, so no reply"
    );
    // As in Akka, a failed persist stops the actor: its state is unknown.
    book.terminated().await;
    chaos.set_failures(0.0, 0.0);
    let book = order_book(&system, &journal, &snapshots, SnapshotPolicy::default());
    let placed = book.ask(BookCmd::Placed, 5 * SECOND).await.expect("placed");
    assert_eq!(placed, [(100, 1)]);
    let out = book.ask(BookCmd::Outbox, 5 * SECOND).await.expect("outbox");
    assert_eq!(out.unconfirmed(), 1, "only the first order's entry exists");
    assert_eq!(
        store.highest_seq_nr("order-book").await.expect("highest"),
        1
    );
    // The failed order's id was not used up.
    assert_eq!(
        book.ask(|r| BookCmd::Place(300, r), 5 * SECOND)
            .await
            .expect("place"),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn unconfirmed_deliveries_survive_a_snapshot_that_deleted_their_events() {
    let system = ActorSystem::new("test");
    let store = memory();
    let journal: Arc<dyn Journal> = store.clone();
    let snapshots: Arc<dyn SnapshotStore> = store.clone();
    let policy = SnapshotPolicy {
        every: Some(2),
        keep: 1,
        delete_events: true,
    };
    // No receiver yet: nothing is confirmed.
    let book = order_book(&system, &journal, &snapshots, policy.clone());
    for n in 1..=5 {
        book.ask(|r| BookCmd::Place(n, r), 5 * SECOND)
            .await
            .expect("place");
    }
    book.stop();
    book.terminated().await;
    assert!(store.deleted_to("order-book").await.expect("deleted") >= 2);

    let (stock_ref, _) = stock(&system, &store, Faults::seeded(6));
    let book = order_book(&system, &journal, &snapshots, policy);
    let placed = book.ask(BookCmd::Placed, 5 * SECOND).await.expect("placed");
    assert_eq!(
        placed.len(),
        5,
        "state from the snapshot and the events after it"
    );
    let out = book.ask(BookCmd::Outbox, 5 * SECOND).await.expect("outbox");
    for _ in 0..100 {
        if out.unconfirmed() == 0 {
            break;
        }
        tokio::time::sleep(SECOND / 2).await;
    }
    assert_eq!(out.unconfirmed(), 0);
    let received = stock_ref
        .ask(StockCmd::Received, 5 * SECOND)
        .await
        .expect("received");
    assert_eq!(received, [1, 2, 3, 4, 5], "redelivered in order");
}
