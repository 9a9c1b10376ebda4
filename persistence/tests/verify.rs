//! `Store::verify`: one walk that reads every record and reports each
//! damaged one by name, and each hole in a journal, without stopping at the
//! first. The damage is done by hand to a memory engine's raw entries, so
//! the checks are shown to live in the store, whatever the engine.

use std::sync::Arc;

use courier_persistence::{
    Journal, Manifest, MemoryEngine, Problem, Snapshot, SnapshotMetadata, SnapshotStore, Store,
    WriteBatch, tck,
};

type MemStore = Store<Arc<MemoryEngine>>;

/// The key of event `seq` of `pid`, as docs/architecture.md lays keys out:
/// tag 1, the id's length (u16, big-endian), the id, the sequence number.
fn event_key(pid: &str, seq: u64) -> Vec<u8> {
    let mut key = vec![1];
    key.extend_from_slice(&(pid.len() as u16).to_be_bytes());
    key.extend_from_slice(pid.as_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The key of record `key` in `namespace` (tag 4).
fn kv_key(namespace: &str, key: &[u8]) -> Vec<u8> {
    let mut out = vec![4];
    out.extend_from_slice(&(namespace.len() as u16).to_be_bytes());
    out.extend_from_slice(namespace.as_bytes());
    out.extend_from_slice(key);
    out
}

/// A store with two journals (one with a snapshot and deleted events) and
/// a namespace of records.
async fn filled() -> (Arc<MemoryEngine>, MemStore) {
    let engine = Arc::new(MemoryEngine::new());
    let store = Store::with_engine(Arc::clone(&engine)).expect("store");
    store
        .write(WriteBatch::new().events((1..=10).map(|s| tck::event("orders", s))))
        .await
        .expect("write");
    store
        .write(WriteBatch::new().events((1..=3).map(|s| tck::event("stock", s))))
        .await
        .expect("write");
    store.delete_events_to("orders", 4).await.expect("delete");
    store
        .save_snapshot(Snapshot {
            metadata: SnapshotMetadata {
                persistence_id: "orders".into(),
                seq_nr: 8,
                timestamp: 1,
            },
            manifest: Manifest::new("test.State", 1),
            payload: vec![7; 16],
        })
        .await
        .expect("snapshot");
    store
        .write(
            WriteBatch::new()
                .put("settings", "mode", "fast")
                .put("settings", "size", "9"),
        )
        .await
        .expect("write");
    (engine, store)
}

/// A new store over `engine`'s entries with `change` applied to them.
fn altered(engine: &MemoryEngine, change: impl FnOnce(&mut Vec<(Vec<u8>, Vec<u8>)>)) -> MemStore {
    let mut entries = engine.raw_entries();
    change(&mut entries);
    let copy = Arc::new(MemoryEngine::new());
    for (k, v) in &entries {
        copy.put_raw(k, v);
    }
    Store::with_engine(copy).expect("store")
}

#[tokio::test]
async fn a_sound_store_is_summarised_and_clean() {
    let (_engine, store) = filled().await;
    let report = store.verify().await.expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
    let orders = &report.journals[0];
    assert_eq!(orders.persistence_id, "orders");
    assert_eq!(orders.events, 6);
    assert_eq!(orders.lowest, Some(5));
    assert_eq!(orders.highest, 10);
    assert_eq!(orders.deleted_to, 4);
    assert_eq!(orders.snapshots, vec![8]);
    let stock = &report.journals[1];
    assert_eq!((stock.events, stock.highest), (3, 3));
    let settings = report
        .namespaces
        .iter()
        .find(|n| n.namespace == "settings")
        .expect("settings");
    assert_eq!(settings.records, 2);
    // The store's own records are there too.
    assert!(
        report
            .namespaces
            .iter()
            .any(|n| n.namespace == "courier.store")
    );
}

#[tokio::test]
async fn every_damaged_record_is_named_and_the_walk_goes_on() {
    let (engine, _store) = filled().await;
    let store = altered(&engine, |entries| {
        for (k, v) in entries.iter_mut() {
            if *k == event_key("orders", 6) || *k == kv_key("settings", b"mode") {
                let last = v.len() - 1;
                v[last] ^= 0x40;
            }
        }
        entries.push((vec![9, 9, 9], b"junk".to_vec()));
    });
    let report = store.verify().await.expect("verify");
    assert!(!report.is_clean());
    assert_eq!(report.problem_count, 3, "{:?}", report.problems);
    assert!(
        report.problems.iter().any(|p| matches!(p,
            Problem::Event { persistence_id, seq_nr: 6, .. } if persistence_id == "orders")),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems.iter().any(|p| matches!(p,
            Problem::Kv { namespace, key, .. } if namespace == "settings" && key == "\"mode\"")),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::UnknownKey { .. })),
        "{:?}",
        report.problems
    );
    // Every other record was still read.
    assert_eq!(report.journals[0].events, 6);
}

#[tokio::test]
async fn holes_in_the_middle_at_the_head_and_at_the_tail_are_gaps() {
    let (engine, _store) = filled().await;
    let store = altered(&engine, |entries| {
        entries.retain(|(k, _)| {
            *k != event_key("orders", 7)
                && *k != event_key("orders", 8)
                && *k != event_key("orders", 5)
                && *k != event_key("orders", 10)
        });
    });
    let report = store.verify().await.expect("verify");
    let gaps: Vec<(u64, u64)> = report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::Gap {
                persistence_id,
                from,
                to,
            } if persistence_id == "orders" => Some((*from, *to)),
            _ => None,
        })
        .collect();
    // 5 (after the deleted mark), 7–8 (a hole), 10 (below the highest the
    // metadata keeps).
    let mut gaps = gaps;
    gaps.sort_unstable();
    assert_eq!(
        gaps,
        vec![(5, 5), (7, 8), (10, 10)],
        "{:?}",
        report.problems
    );
    assert_eq!(report.journals[0].highest, 10);
}

#[tokio::test]
async fn the_report_lists_a_bounded_number_of_problems_and_counts_the_rest() {
    let engine = Arc::new(MemoryEngine::new());
    let store = Store::with_engine(Arc::clone(&engine)).expect("store");
    let max = courier_persistence::MAX_LISTED_PROBLEMS as u64;
    for chunk in (0..max + 50).collect::<Vec<_>>().chunks(500) {
        let mut batch = WriteBatch::new();
        for i in chunk {
            batch = batch.put("many", i.to_be_bytes().to_vec(), b"v".to_vec());
        }
        store.write(batch).await.expect("write");
    }
    let store = altered(&engine, |entries| {
        for (k, v) in entries.iter_mut() {
            if k.starts_with(&kv_key("many", b"")) {
                v[0] ^= 1;
            }
        }
    });
    let report = store.verify().await.expect("verify");
    assert_eq!(report.problem_count, max + 50);
    assert_eq!(report.problems.len() as u64, max);
}
