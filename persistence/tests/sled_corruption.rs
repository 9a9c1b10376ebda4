//! Corrupt bytes written straight into the sled tree: every read that meets
//! them fails with a typed error naming the persistence id and sequence
//! number — no panic, no skip, no empty start — also after a reopen.

#![cfg(feature = "sled")]

use courier_persistence::{
    Error, Journal, Manifest, ReplayRange, SledStore, Snapshot, SnapshotCriteria, SnapshotMetadata,
    SnapshotStore, WriteBatch, replay, tck,
};

const PID: &str = "orders-7";

/// The stored key of event `seq` of `pid` (layout: docs/architecture.md).
fn event_key(pid: &str, seq: u64) -> Vec<u8> {
    let mut key = vec![0x01];
    key.extend_from_slice(&(pid.len() as u16).to_be_bytes());
    key.extend_from_slice(pid.as_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn snapshot_key(pid: &str, seq: u64) -> Vec<u8> {
    let mut key = event_key(pid, seq);
    key[0] = 0x03;
    key
}

fn kv_key(namespace: &str, key: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    out.extend_from_slice(&(namespace.len() as u16).to_be_bytes());
    out.extend_from_slice(namespace.as_bytes());
    out.extend_from_slice(key);
    out
}

/// A frame with a valid CRC around `body`.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = crc32fast::hash(body).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

async fn store_with_events(dir: &std::path::Path) -> SledStore {
    let store = SledStore::open(dir).expect("open");
    store
        .write(WriteBatch::new().events((1..=5).map(|s| tck::event(PID, s))))
        .await
        .expect("write");
    store
}

async fn replay_all(store: &SledStore) -> courier_persistence::Result<Vec<u64>> {
    let mut seen = Vec::new();
    replay(store, PID, ReplayRange::all(), 2, |r| {
        seen.push(r.seq_nr);
        Ok(())
    })
    .await?;
    Ok(seen)
}

fn db(store: &SledStore) -> sled::Db {
    store.engine().expect("open").db().clone()
}

#[tokio::test]
async fn a_flipped_byte_is_a_corrupt_record_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_events(dir.path()).await;
    let key = event_key(PID, 3);
    let mut value = db(&store)
        .get(&key)
        .expect("get")
        .expect("event 3")
        .to_vec();
    let middle = value.len() / 2;
    value[middle] ^= 0x40;
    db(&store).insert(&key, value).expect("insert");
    let result = replay_all(&store).await;
    assert!(
        matches!(result, Err(Error::Corrupt { ref persistence_id, seq_nr: 3, .. }) if persistence_id == PID),
        "{result:?}"
    );
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains(PID) && message.contains('3'), "{message}");
}

#[tokio::test]
async fn garbage_with_a_valid_checksum_is_a_decode_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_events(dir.path()).await;
    db(&store)
        .insert(event_key(PID, 3), framed(&[0xff; 40]))
        .expect("insert");
    let result = replay_all(&store).await;
    assert!(
        matches!(result, Err(Error::Decode { ref persistence_id, seq_nr: 3, .. }) if persistence_id == PID),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_missing_event_is_a_sequence_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_events(dir.path()).await;
    db(&store).remove(event_key(PID, 3)).expect("remove");
    let result = replay_all(&store).await;
    assert!(
        matches!(result, Err(Error::SequenceGap { ref persistence_id, expected: 3, found: 4 }) if persistence_id == PID),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_missing_last_event_is_a_sequence_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_events(dir.path()).await;
    // Deletions done behind the journal's back: remember the highest first so
    // that the journal still knows about event 5.
    store.delete_events_to(PID, 1).await.expect("delete 1");
    db(&store).remove(event_key(PID, 5)).expect("remove");
    let result = replay_all(&store).await;
    assert!(
        matches!(result, Err(Error::SequenceGap { expected: 5, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn another_ids_event_under_this_key_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_events(dir.path()).await;
    store
        .write(WriteBatch::new().events((1..=3).map(|s| tck::event("orders-8", s))))
        .await
        .expect("write");
    let foreign = db(&store)
        .get(event_key("orders-8", 3))
        .expect("get")
        .expect("foreign event");
    db(&store)
        .insert(event_key(PID, 3), foreign)
        .expect("insert");
    let result = replay_all(&store).await;
    assert!(
        matches!(result, Err(Error::Corrupt { seq_nr: 3, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_corrupt_snapshot_and_kv_record_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    store
        .save_snapshot(Snapshot {
            metadata: SnapshotMetadata {
                persistence_id: PID.into(),
                seq_nr: 9,
                timestamp: 1,
            },
            manifest: Manifest::new("State", 1),
            payload: vec![1, 2, 3],
        })
        .await
        .expect("save");
    store
        .write(WriteBatch::new().put("outbox", b"1".to_vec(), b"entry".to_vec()))
        .await
        .expect("write");
    let key = snapshot_key(PID, 9);
    let mut value = db(&store)
        .get(&key)
        .expect("get")
        .expect("snapshot")
        .to_vec();
    value[0] ^= 1;
    db(&store).insert(&key, value).expect("insert");
    let kv = kv_key("outbox", b"1");
    db(&store)
        .insert(&kv, b"\x00\x00\x00\x00entry".to_vec())
        .expect("insert");

    let snapshot = store.load_snapshot(PID, SnapshotCriteria::latest()).await;
    assert!(
        matches!(snapshot, Err(Error::Corrupt { seq_nr: 9, .. })),
        "{snapshot:?}"
    );
    let record = store.kv_get("outbox", b"1").await;
    assert!(
        matches!(record, Err(Error::CorruptKv { ref namespace, ref key, .. }) if namespace == "outbox" && key == "\"1\""),
        "{record:?}"
    );
    let scanned = store.kv_scan("outbox", None, 10).await;
    let message = scanned.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("outbox/\"1\""), "{message}");
}

#[tokio::test]
async fn corruption_is_still_reported_after_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = store_with_events(dir.path()).await;
        db(&store)
            .insert(event_key(PID, 2), framed(b"not a record"))
            .expect("insert");
        db(&store).flush_async().await.expect("flush");
    }
    // The old store's writer task lets go of sled once it sees no handle is
    // left; retry the open until the lock is free.
    let mut reopened = None;
    for _ in 0..100 {
        match SledStore::open(dir.path()) {
            Ok(store) => {
                reopened = Some(store);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let store = reopened.expect("reopen");
    let result = replay_all(&store).await;
    assert!(
        matches!(result, Err(Error::Decode { seq_nr: 2, .. })),
        "{result:?}"
    );
    assert_eq!(store.highest_seq_nr(PID).await.expect("highest"), 5);
}

/// A checksummed body whose first field (every header starts with a
/// string) claims `len` bytes: an unlimited decode would allocate them.
fn claiming(len: u64) -> Vec<u8> {
    let mut body = vec![0xfd];
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(b"orders");
    framed(&body)
}

#[tokio::test]
async fn a_length_prefix_claiming_more_than_the_record_holds_is_a_decode_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_events(dir.path()).await;
    // 2^62 bytes aborts an unlimited decode; 2^63 makes it panic.
    for len in [1 << 62, 1 << 63] {
        db(&store)
            .insert(event_key(PID, 3), claiming(len))
            .expect("insert");
        db(&store)
            .insert(snapshot_key(PID, 3), claiming(len))
            .expect("insert");
        let result = replay_all(&store).await;
        assert!(
            matches!(result, Err(Error::Decode { ref persistence_id, seq_nr: 3, .. }) if persistence_id == PID),
            "{result:?}"
        );
        let snapshot = store.load_snapshot(PID, SnapshotCriteria::latest()).await;
        assert!(
            matches!(snapshot, Err(Error::Decode { seq_nr: 3, .. })),
            "{snapshot:?}"
        );
    }
}

#[tokio::test]
async fn sled_reporting_corruption_on_open_names_the_directory_and_the_way_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    for seq in 1..=20 {
        let mut event = tck::event(PID, seq);
        event.payload = format!("<payload {seq:04}>").repeat(8).into_bytes();
        store
            .write(WriteBatch::new().event(event))
            .await
            .expect("write");
    }
    store.close().await.expect("close");
    // A bad byte under event 10, below sled rather than through it.
    let db_file = dir.path().join("db");
    let mut bytes = std::fs::read(&db_file).expect("read");
    let needle = b"<payload 0010>";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("event 10 is in sled's log");
    bytes[at + 5] ^= 0x20;
    std::fs::write(&db_file, bytes).expect("write");

    let opened = SledStore::open(dir.path());
    match opened {
        Err(Error::EngineCorrupt { ref path, .. }) => assert_eq!(path, dir.path()),
        Err(Error::RolledBack { .. }) => {}
        other => panic!(
            "a damaged log must be refused, got {:?}",
            other.map(|_| "an open store")
        ),
    }
    let message = opened.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&dir.path().display().to_string()) && message.contains("backup"),
        "{message}"
    );
}
