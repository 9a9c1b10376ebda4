//! Replay streams in pages: no engine read ever returns more than one page,
//! however long the history, so memory during recovery stays flat.

mod support;

use std::sync::atomic::Ordering;

use courier_persistence::{EventRecord, Journal, Manifest, ReplayRange, Store, WriteBatch, replay};
use support::TestEngine;

#[tokio::test]
async fn replay_reads_one_page_at_a_time() {
    let engine = TestEngine::default();
    let largest = engine.largest_scan.clone();
    let store = Store::with_engine(engine).expect("store");
    let writer_id = uuid::Uuid::now_v7();
    for chunk in 0..10u64 {
        let events = (1..=1000).map(|i| EventRecord {
            persistence_id: "long".into(),
            seq_nr: chunk * 1000 + i,
            manifest: Manifest::new("e", 1),
            payload: vec![1; 16],
            writer_id,
            timestamp: 0,
        });
        store
            .write(WriteBatch::new().events(events))
            .await
            .expect("write");
    }
    largest.store(0, Ordering::SeqCst);
    let mut seen = 0u64;
    let stats = replay(&store, "long", ReplayRange::all(), 100, |r| {
        seen += 1;
        assert_eq!(r.seq_nr, seen);
        Ok(())
    })
    .await
    .expect("replay");
    assert_eq!(stats.events, 10_000);
    assert!(
        largest.load(Ordering::SeqCst) <= 100,
        "a read returned {} entries for a page of 100",
        largest.load(Ordering::SeqCst)
    );
}
