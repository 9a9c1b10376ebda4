//! Damage to the engine's own files after a SIGKILLed writer, on each
//! durable engine (sled and fjall): a child process (this test binary,
//! re-run) writes events and prints each acknowledged sequence number; the
//! parent SIGKILLs it, then, case by case, copies the store, flips one bit
//! or truncates one of the engine's files at a seeded offset (bytes on
//! disk, not values rewritten through the engine), and opens the copy.
//!
//! Every case must end in a typed refusal (at open, or when the journal is
//! read) or in a full recovery of every acknowledged event: never in a
//! journal that is silently shorter than what was acknowledged (sled ends
//! its recovery at the first damaged log message and drops the rest; fjall
//! truncates its journal at the first entry it cannot parse; the store's
//! commit record is what notices).
//!
//! Seeds are fixed and printed; `COURIER_FAULT_SEED=<n>` replays one run,
//! `COURIER_FAULT_CASES=<n>` changes the number of cases (default 160 on
//! sled, 80 on fjall).

#![cfg(all(feature = "sled", feature = "fjall"))]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use courier_persistence::{
    DurableStore, EngineKind, Error, Journal, ReplayRange, StoreOptions, WriteBatch, replay, tck,
};
use courier_test_support::Rng;
use courier_test_support::crash::{Child, env_u64};

const CHILD_ENV: &str = "COURIER_FAULT_CHILD_DIR";
const ENGINE_ENV: &str = "COURIER_FAULT_ENGINE";
const PID: &str = "faults";
/// Events the child writes at most (one per write, so one commit each).
const WRITES: u64 = 1200;

/// The child: write events one by one, print each acknowledged one, then
/// wait to be killed.
fn child(kind: EngineKind, dir: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = open(kind, Path::new(dir)).expect("open");
        for seq in 1..=WRITES {
            let mut event = tck::event(PID, seq);
            // Some events larger than others, so batches straddle sled's
            // buffers differently.
            event.payload = marker(seq).repeat(1 + (seq as usize * 7) % 40).into_bytes();
            store
                .write(WriteBatch::new().event(event))
                .await
                .expect("write");
            let mut out = std::io::stdout().lock();
            writeln!(out, "ack {seq}").expect("stdout");
            out.flush().expect("flush");
        }
        std::future::pending::<()>().await;
    });
}

fn open(kind: EngineKind, dir: &Path) -> courier_persistence::Result<DurableStore> {
    DurableStore::open_engine(kind, dir, None, StoreOptions::new())
}

/// The test that runs `kind`'s cases (the child re-runs it).
fn test_name(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Fjall => "damaged_fjall_files_are_refused_or_fully_recovered",
        _ => "damaged_sled_files_are_refused_or_fully_recovered",
    }
}

/// Bytes that appear in the event's payload and nowhere else, so the parent
/// can find where the engine wrote the event.
fn marker(seq: u64) -> String {
    format!("<evt {seq:06}>")
}

/// Every offset in `bytes` where `needle` starts.
fn find_all(bytes: &[u8], needle: &[u8]) -> Vec<u64> {
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i as u64)
        .collect()
}

/// Runs the child until it acknowledged at least `at_least` events, kills
/// it, and returns the highest acknowledged sequence number.
fn write_and_kill(kind: EngineKind, dir: &Path, at_least: u64) -> u64 {
    let acked = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&acked);
    let dir = dir.to_str().expect("utf-8 path");
    let env = [(CHILD_ENV, dir), (ENGINE_ENV, kind.name())];
    let mut child = Child::spawn(test_name(kind), &env, move |line| {
        if let Some(seq) = line.strip_prefix("ack ").and_then(|s| s.parse().ok()) {
            seen.fetch_max(seq, Ordering::SeqCst);
        }
    });
    child.wait_until(
        &format!("{at_least} acks"),
        Duration::from_secs(120),
        || acked.load(Ordering::SeqCst) >= at_least,
    );
    child.kill();
    acked.load(Ordering::SeqCst)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The engine's files in the store, relative to it, with their lengths
/// (the commit record is courier's, not the engine's; fjall's lock file
/// holds nothing).
fn engine_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<(PathBuf, u64)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                walk(root, &entry.path(), files);
                continue;
            }
            let mut len = entry.metadata().expect("metadata").len();
            // fjall preallocates its journal with zeros: damage the part
            // in use (and the zero right after it).
            if entry.path().extension().is_some_and(|e| e == "jnl") {
                let bytes = std::fs::read(entry.path()).expect("read");
                let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 2);
                len = (used as u64).min(len);
            }
            if entry.file_name() != courier_persistence::COMMIT_FILE && len > 0 {
                let path = entry.path();
                let relative = path.strip_prefix(root).expect("under the root");
                files.push((relative.to_owned(), len));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

#[derive(Debug)]
enum Damage {
    Flip { offset: u64, bit: u8 },
    Truncate { len: u64 },
}

fn damage(path: &Path, damage: &Damage) {
    match damage {
        Damage::Flip { offset, bit } => {
            let mut bytes = std::fs::read(path).expect("read");
            bytes[*offset as usize] ^= 1 << bit;
            std::fs::write(path, bytes).expect("write");
        }
        Damage::Truncate { len } => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open");
            file.set_len(*len).expect("truncate");
        }
    }
}

/// How one case ended.
fn outcome(kind: EngineKind, dir: &Path, acked: u64) -> Result<&'static str, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = match open(kind, dir) {
            Ok(store) => store,
            Err(Error::RolledBack { .. }) => return Ok("refused at open: rolled back"),
            Err(Error::EngineCorrupt { .. }) => return Ok("refused at open: engine corrupt"),
            Err(Error::CommitRecord { .. }) => return Ok("refused at open: commit record"),
            Err(e) => return Ok(leak(format!("refused at open: {}", variant(&e)))),
        };
        let highest = store.highest_seq_nr(PID).await;
        let replayed = replay(&store, PID, ReplayRange::all(), 64, |_| Ok(())).await;
        let _ = store.close().await;
        match (highest, replayed) {
            (Err(e), _) | (_, Err(e)) => Ok(leak(format!("refused on read: {}", variant(&e)))),
            (Ok(highest), Ok(stats)) if highest >= acked && stats.events == highest => {
                Ok("fully recovered")
            }
            (Ok(highest), Ok(stats)) => Err(format!(
                "silently shorter: {acked} acknowledged, highest {highest}, replayed {}",
                stats.events
            )),
        }
    })
}

fn variant(e: &Error) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Outcome names live for the whole (short) test run.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Where to damage one copy of the store in `dir`: half the cases hit the
/// bytes of a chosen acknowledged event (as a bad sector under one record
/// would), the others hit any offset of any of the engine's files.
fn pick_damage(
    rng: &mut Rng,
    dir: &Path,
    files: &[(PathBuf, u64)],
    acked: u64,
) -> (PathBuf, Damage) {
    let truncate = rng.below(3) == 0;
    if rng.below(2) == 0 {
        let seq = 1 + rng.below(acked);
        let holding: Vec<(PathBuf, Vec<u64>)> = files
            .iter()
            .map(|(name, len)| {
                let mut bytes = std::fs::read(dir.join(name)).expect("read");
                bytes.truncate(*len as usize);
                (dir.join(name), find_all(&bytes, marker(seq).as_bytes()))
            })
            .filter(|(_, hits)| !hits.is_empty())
            .collect();
        if !holding.is_empty() {
            let (db, hits) = &holding[rng.below(holding.len() as u64) as usize];
            let db = db.clone();
            let at = hits[rng.below(hits.len() as u64) as usize] + rng.below(11);
            let change = if truncate {
                Damage::Truncate { len: at }
            } else {
                Damage::Flip {
                    offset: at,
                    bit: rng.below(8) as u8,
                }
            };
            return (db, change);
        }
    }
    let (name, len) = &files[rng.below(files.len() as u64) as usize];
    let path = dir.join(name);
    let change = if truncate {
        Damage::Truncate {
            len: rng.below(*len),
        }
    } else {
        Damage::Flip {
            offset: rng.below(*len),
            bit: rng.below(8) as u8,
        }
    };
    (path, change)
}

#[test]
fn damaged_sled_files_are_refused_or_fully_recovered() {
    damaged_files_are_refused_or_fully_recovered(EngineKind::Sled);
}

#[test]
fn damaged_fjall_files_are_refused_or_fully_recovered() {
    damaged_files_are_refused_or_fully_recovered(EngineKind::Fjall);
}

fn damaged_files_are_refused_or_fully_recovered(kind: EngineKind) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        if std::env::var(ENGINE_ENV).ok().as_deref() == Some(kind.name()) {
            child(kind, &dir);
        }
        return;
    }
    let seed = env_u64("COURIER_FAULT_SEED").unwrap_or(0x5eed_f1a7);
    // fjall's cases copy a 64 MiB preallocated journal each: fewer of them.
    let default_cases = if kind == EngineKind::Fjall { 80 } else { 160 };
    let cases = env_u64("COURIER_FAULT_CASES").unwrap_or(default_cases);
    println!("{kind} faults: seed {seed} (replay with COURIER_FAULT_SEED={seed}), {cases} cases");
    let mut rng = Rng::new(seed);
    let work = tempfile::tempdir().expect("tempdir");
    let pristine = work.path().join("pristine");
    let acked = write_and_kill(kind, &pristine, 300 + rng.below(900));
    let files = engine_files(&pristine);
    println!("killed after {acked} acks; {kind} files: {files:?}");
    // The undamaged store recovers everything (on a copy: opening it may
    // change the engine's files, fjall's journals for one).
    let undamaged = work.path().join("undamaged");
    copy_dir(&pristine, &undamaged);
    assert_eq!(outcome(kind, &undamaged, acked), Ok("fully recovered"));

    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in 0..cases {
        let dir = work.path().join(format!("case-{case}"));
        copy_dir(&pristine, &dir);
        let (path, change) = pick_damage(&mut rng, &dir, &files, acked);
        damage(&path, &change);
        // An engine may hang or panic on damaged files: either fails the
        // case instead of the whole run.
        let (tx, rx) = mpsc::channel();
        let case_dir = dir.clone();
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| outcome(kind, &case_dir, acked));
            let _ = tx.send(result);
        });
        let what = format!("seed {seed} case {case}: {change:?} in {}", path.display());
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(Ok(name))) => *tally.entry(name).or_default() += 1,
            Ok(Ok(Err(silent))) => failures.push(format!("{what}: {silent}")),
            Ok(Err(_)) => failures.push(format!("{what}: panicked")),
            Err(_) => failures.push(format!("{what}: hung")),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("outcomes: {tally:#?}");
    if failures.is_empty() {
        // So that a run whose damage never reaches acknowledged data is seen.
        assert!(
            tally.keys().any(|k| k.starts_with("refused")),
            "{kind}: no case was refused: the damage missed the engine's data"
        );
    }
    assert!(
        failures.is_empty(),
        "{kind}: {} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The engine's files come back older than the commit record (a restored
/// disk snapshot, a copy of the directory without `courier.commit`, lost
/// writes below the file system): the store refuses to open and names the
/// loss; accepting it opens under a new store epoch. On each engine.
#[test]
fn engine_files_older_than_the_commit_record_are_refused() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for kind in EngineKind::compiled() {
        runtime.block_on(older_files_are_refused(kind));
    }
}

async fn older_files_are_refused(kind: EngineKind) {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("store");
    let old = work.path().join("old");
    let store = open(kind, &dir).expect("open");
    for seq in 1..=50 {
        store
            .write(WriteBatch::new().event(tck::event(PID, seq)))
            .await
            .expect("write");
    }
    let epoch = courier_persistence::store_epoch(&store)
        .await
        .expect("epoch");
    store.close().await.expect("close");
    copy_dir(&dir, &old);
    let store = open(kind, &dir).expect("reopen");
    for seq in 51..=80 {
        store
            .write(WriteBatch::new().event(tck::event(PID, seq)))
            .await
            .expect("write");
    }
    store.close().await.expect("close");
    // The engine's files from before events 51..=80, courier's record from
    // after.
    let record = work.path().join("record");
    std::fs::copy(dir.join(courier_persistence::COMMIT_FILE), &record).expect("keep");
    std::fs::remove_dir_all(&dir).expect("remove");
    copy_dir(&old, &dir);
    std::fs::copy(&record, dir.join(courier_persistence::COMMIT_FILE)).expect("restore");
    let refused = open(kind, &dir);
    assert!(
        matches!(refused, Err(Error::RolledBack { acknowledged, found, .. }) if acknowledged - found == 30),
        "{kind}: {:?}",
        refused.err()
    );
    let accepted =
        DurableStore::open_engine(kind, &dir, None, StoreOptions::new().accept_loss(true))
            .expect("accepting the loss");
    assert_eq!(accepted.highest_seq_nr(PID).await.expect("highest"), 50);
    let now = courier_persistence::store_epoch(&accepted)
        .await
        .expect("epoch");
    assert_ne!(now, epoch, "{kind}: a new store epoch");
    accepted.close().await.expect("close");
}
