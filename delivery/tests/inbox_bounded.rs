//! A million deliveries through one durable inbox: what it stores stays
//! bounded by the sender's in-flight window, not by history.

use std::sync::Arc;

use courier::delivery::{Ack, DedupInbox, Delivery, DeliveryId, Receipt, SenderId};
use courier::persistence::{Journal, MemoryStore, WriteBatch};
use courier::prelude::*;

struct Ignore;

impl Actor for Ignore {
    type Msg = Ack;

    async fn handle(&mut self, _: Ack, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

const TOTAL: u64 = 1_000_000;
/// Deliveries the sender has in flight at once (its unconfirmed window).
const WINDOW: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_deliveries_keep_the_stored_inbox_bounded() {
    let system = ActorSystem::new("test");
    let ack_to = system.spawn(Props::new(|| Ignore)).expect("spawn");
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let journal: Arc<dyn Journal> = store.clone();
    let inbox = DedupInbox::open(Arc::clone(&journal), "bounded")
        .await
        .expect("open");
    let sender = SenderId {
        name: "firehose".into(),
        incarnation: uuid::Uuid::now_v7(),
    };
    let mut rng = fastrand::Rng::with_seed(42);
    // The sender's in-flight ids; each step delivers one of them at random
    // (out of order), sometimes twice, and refills the window.
    let mut in_flight: Vec<u64> = (1..=WINDOW).collect();
    let mut next = WINDOW + 1;
    let mut applied = 0u64;
    let mut batch = WriteBatch::new();
    let mut most_stored = 0usize;
    let mut most_kept = 0usize;
    let mut flushes = 0u64;
    while let Some(pick) = (!in_flight.is_empty()).then(|| rng.usize(..in_flight.len())) {
        let id = in_flight[pick];
        let settled_below = lowest(&in_flight, next);
        let delivery = Delivery {
            sender: sender.clone(),
            id: DeliveryId(id),
            attempt: 1,
            settled_below: DeliveryId(settled_below),
            expected_inbox: None,
            message: id,
            ack_to: ack_to.clone(),
        };
        match inbox.check(&delivery) {
            Receipt::New => {
                applied += 1;
                // Written with the next group below; the test checks what is
                // stored, not crash safety, so it applies at once.
                let write = inbox.prepare(&delivery).expect("prepare");
                batch.extend(write.writes());
                write.apply();
            }
            Receipt::Duplicate => panic!("id {id} was never applied"),
        }
        // A duplicate of something applied is recognised as such.
        if rng.u8(..10) == 0 {
            assert_eq!(inbox.check(&delivery), Receipt::Duplicate);
        }
        // Confirmed at the sender: leave the window, refill it.
        in_flight.swap_remove(pick);
        if next <= TOTAL {
            in_flight.push(next);
            next += 1;
        }
        if applied % 1024 == 0 || in_flight.is_empty() {
            journal
                .write(std::mem::take(&mut batch))
                .await
                .expect("write");
            // Bounded by the span of ids the sender has not settled, which
            // with at most WINDOW in flight is small whatever the history.
            let span = usize::try_from(next - lowest(&in_flight, next)).expect("span");
            assert!(inbox.kept() <= span, "kept {} > span {span}", inbox.kept());
            most_kept = most_kept.max(inbox.kept());
            flushes += 1;
            if flushes % 100 == 0 {
                // On disk: the ids kept above the watermark, and the watermark.
                let stored = stored(&journal).await;
                most_stored = most_stored.max(stored);
                assert!(
                    stored <= inbox.kept() + 1,
                    "{stored} records after {applied} deliveries, {} kept",
                    inbox.kept()
                );
            }
        }
    }
    assert_eq!(applied, TOTAL);
    assert!(most_stored > 1, "the window was exercised");
    // A straggler widens the span for a while, never towards the history.
    assert!(most_kept < 4096, "kept up to {most_kept}");
    // Everything settled: the watermark alone remains.
    let reopened = DedupInbox::open(Arc::clone(&journal), "bounded")
        .await
        .expect("reopen");
    assert_eq!(reopened.kept(), inbox.kept());
    assert!(stored(&journal).await <= 2);
    for id in [1, TOTAL / 2, TOTAL] {
        let old = Delivery {
            sender: sender.clone(),
            id: DeliveryId(id),
            attempt: 2,
            settled_below: DeliveryId(1),
            expected_inbox: None,
            message: id,
            ack_to: ack_to.clone(),
        };
        assert_eq!(reopened.check(&old), Receipt::Duplicate, "id {id}");
    }
}

/// The sender's `settled_below`: its lowest unconfirmed id.
fn lowest(in_flight: &[u64], next: u64) -> u64 {
    in_flight.iter().copied().min().unwrap_or(next)
}

/// How many records the inbox has on disk.
async fn stored(journal: &Arc<dyn Journal>) -> usize {
    let mut count = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = journal
            .kv_scan("courier.inbox/bounded", after.as_deref(), 1000)
            .await
            .expect("scan");
        count += page.len();
        match page.last() {
            Some((key, _)) if page.len() == 1000 => after = Some(key.clone()),
            _ => return count,
        }
    }
}
