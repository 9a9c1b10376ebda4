//! Corrupt bytes written straight into the engine, below the store, on
//! every durable engine (sled and fjall): every read that meets them fails
//! with a typed error naming the persistence id and sequence number — no
//! panic, no skip, no empty start — also after a reopen; damage to the
//! engine's own files is refused on open, naming the directory.

#![cfg(all(feature = "sled", feature = "fjall"))]

use std::path::{Path, PathBuf};

use courier_persistence::{
    DurableStore, Engine, EngineKind, EngineOp, Error, Journal, Manifest, ReplayRange, Snapshot,
    SnapshotCriteria, SnapshotMetadata, SnapshotStore, StoreOptions, WriteBatch, replay, tck,
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

fn open(kind: EngineKind, dir: &Path) -> DurableStore {
    DurableStore::open_engine(kind, dir, None, StoreOptions::new()).expect("open")
}

async fn store_with_events(kind: EngineKind, dir: &Path) -> DurableStore {
    let store = open(kind, dir);
    store
        .write(WriteBatch::new().events((1..=5).map(|s| tck::event(PID, s))))
        .await
        .expect("write");
    store
}

async fn replay_all(store: &DurableStore) -> courier_persistence::Result<Vec<u64>> {
    let mut seen = Vec::new();
    replay(store, PID, ReplayRange::all(), 2, |r| {
        seen.push(r.seq_nr);
        Ok(())
    })
    .await?;
    Ok(seen)
}

/// The raw value at `key`, read below the store.
fn raw_get(store: &DurableStore, key: &[u8]) -> Vec<u8> {
    let engine = store.engine().expect("open");
    engine.get(key).expect("get").expect("a stored value")
}

/// Writes `op` below the store, bypassing every check it makes.
fn raw(store: &DurableStore, op: EngineOp) {
    store
        .engine()
        .expect("open")
        .apply(vec![op])
        .expect("apply");
}

fn put(key: Vec<u8>, value: Vec<u8>) -> EngineOp {
    EngineOp::Put(key, value)
}

/// Runs `case` once per durable engine, each in a fresh directory.
async fn on_each_engine<F, Fut>(case: F)
where
    F: Fn(EngineKind, PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for kind in EngineKind::compiled() {
        let dir = tempfile::tempdir().expect("tempdir");
        println!("engine {kind}");
        case(kind, dir.path().to_owned()).await;
    }
}

#[tokio::test]
async fn a_flipped_byte_is_a_corrupt_record_error() {
    on_each_engine(|kind, dir| async move {
        let store = store_with_events(kind, &dir).await;
        let key = event_key(PID, 3);
        let mut value = raw_get(&store, &key);
        let middle = value.len() / 2;
        value[middle] ^= 0x40;
        raw(&store, put(key, value));
        let result = replay_all(&store).await;
        assert!(
            matches!(result, Err(Error::Corrupt { ref persistence_id, seq_nr: 3, .. }) if persistence_id == PID),
            "{kind}: {result:?}"
        );
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains(PID) && message.contains('3'), "{message}");
    })
    .await;
}

#[tokio::test]
async fn garbage_with_a_valid_checksum_is_a_decode_error() {
    on_each_engine(|kind, dir| async move {
        let store = store_with_events(kind, &dir).await;
        raw(&store, put(event_key(PID, 3), framed(&[0xff; 40])));
        let result = replay_all(&store).await;
        assert!(
            matches!(result, Err(Error::Decode { ref persistence_id, seq_nr: 3, .. }) if persistence_id == PID),
            "{kind}: {result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_event_is_a_sequence_gap() {
    on_each_engine(|kind, dir| async move {
        let store = store_with_events(kind, &dir).await;
        raw(&store, EngineOp::Delete(event_key(PID, 3)));
        let result = replay_all(&store).await;
        assert!(
            matches!(result, Err(Error::SequenceGap { ref persistence_id, expected: 3, found: 4 }) if persistence_id == PID),
            "{kind}: {result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_last_event_is_a_sequence_gap() {
    on_each_engine(|kind, dir| async move {
        let store = store_with_events(kind, &dir).await;
        // Deletions done behind the journal's back: remember the highest
        // first so that the journal still knows about event 5.
        store.delete_events_to(PID, 1).await.expect("delete 1");
        raw(&store, EngineOp::Delete(event_key(PID, 5)));
        let result = replay_all(&store).await;
        assert!(
            matches!(result, Err(Error::SequenceGap { expected: 5, .. })),
            "{kind}: {result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn another_ids_event_under_this_key_is_corrupt() {
    on_each_engine(|kind, dir| async move {
        let store = store_with_events(kind, &dir).await;
        store
            .write(WriteBatch::new().events((1..=3).map(|s| tck::event("orders-8", s))))
            .await
            .expect("write");
        let foreign = raw_get(&store, &event_key("orders-8", 3));
        raw(&store, put(event_key(PID, 3), foreign));
        let result = replay_all(&store).await;
        assert!(
            matches!(result, Err(Error::Corrupt { seq_nr: 3, .. })),
            "{kind}: {result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_snapshot_and_kv_record_are_reported() {
    on_each_engine(|kind, dir| async move {
        let store = open(kind, &dir);
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
        let mut value = raw_get(&store, &key);
        value[0] ^= 1;
        raw(&store, put(key, value));
        raw(
            &store,
            put(kv_key("outbox", b"1"), b"\x00\x00\x00\x00entry".to_vec()),
        );

        let snapshot = store.load_snapshot(PID, SnapshotCriteria::latest()).await;
        assert!(
            matches!(snapshot, Err(Error::Corrupt { seq_nr: 9, .. })),
            "{kind}: {snapshot:?}"
        );
        let record = store.kv_get("outbox", b"1").await;
        assert!(
            matches!(record, Err(Error::CorruptKv { ref namespace, ref key, .. }) if namespace == "outbox" && key == "\"1\""),
            "{kind}: {record:?}"
        );
        let scanned = store.kv_scan("outbox", None, 10).await;
        let message = scanned.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("outbox/\"1\""), "{kind}: {message}");
    })
    .await;
}

#[tokio::test]
async fn corruption_is_still_reported_after_a_reopen() {
    on_each_engine(|kind, dir| async move {
        let store = store_with_events(kind, &dir).await;
        raw(&store, put(event_key(PID, 2), framed(b"not a record")));
        // Closing flushes the engine (the raw write included).
        store.close().await.expect("close");
        let store = open(kind, &dir);
        let result = replay_all(&store).await;
        assert!(
            matches!(result, Err(Error::Decode { seq_nr: 2, .. })),
            "{kind}: {result:?}"
        );
        assert_eq!(store.highest_seq_nr(PID).await.expect("highest"), 5);
        store.close().await.expect("close");
    })
    .await;
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
    on_each_engine(|kind, dir| async move {
        let store = store_with_events(kind, &dir).await;
        // 2^62 bytes aborts an unlimited decode; 2^63 makes it panic.
        for len in [1 << 62, 1 << 63] {
            raw(&store, put(event_key(PID, 3), claiming(len)));
            raw(&store, put(snapshot_key(PID, 3), claiming(len)));
            let result = replay_all(&store).await;
            assert!(
                matches!(result, Err(Error::Decode { ref persistence_id, seq_nr: 3, .. }) if persistence_id == PID),
                "{kind}: {result:?}"
            );
            let snapshot = store.load_snapshot(PID, SnapshotCriteria::latest()).await;
            assert!(
                matches!(snapshot, Err(Error::Decode { seq_nr: 3, .. })),
                "{kind}: {snapshot:?}"
            );
        }
    })
    .await;
}

/// Every regular file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn an_engine_reporting_corruption_on_open_names_the_directory_and_the_way_out() {
    on_each_engine(|kind, dir| async move {
        let store = open(kind, &dir);
        for seq in 1..=20 {
            let mut event = tck::event(PID, seq);
            event.payload = format!("<payload {seq:04}>").repeat(8).into_bytes();
            store
                .write(WriteBatch::new().event(event))
                .await
                .expect("write");
        }
        store.close().await.expect("close");
        // A bad byte under event 10, in the engine's own files (sled's log,
        // fjall's journal) rather than through the engine.
        let needle = b"<payload 0010>";
        let mut damaged = 0;
        for file in files(&dir) {
            let mut bytes = std::fs::read(&file).expect("read");
            if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                bytes[at + 5] ^= 0x20;
                std::fs::write(&file, bytes).expect("write");
                damaged += 1;
            }
        }
        assert!(damaged > 0, "{kind}: event 10 is in the engine's files");

        let opened = DurableStore::open_engine(kind, &dir, None, StoreOptions::new());
        match opened {
            Err(Error::EngineCorrupt { ref path, .. }) => assert_eq!(path, &dir),
            Err(Error::RolledBack { .. }) => {}
            other => panic!(
                "{kind}: a damaged log must be refused, got {:?}",
                other.map(|_| "an open store")
            ),
        }
        let message = opened.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(&dir.display().to_string()) && message.contains("backup"),
            "{kind}: {message}"
        );
    })
    .await;
}
