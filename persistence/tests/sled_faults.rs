//! Damage to sled's own files after a SIGKILLed writer: a child process
//! (this test binary, re-run) writes events and prints each acknowledged
//! sequence number; the parent SIGKILLs it, then, case by case, copies the
//! store, flips one bit or truncates one of sled's files at a seeded offset
//! (bytes on disk, not values rewritten through sled), and opens the copy.
//!
//! Every case must end in a typed refusal (at open, or when the journal is
//! read) or in a full recovery of every acknowledged event: never in a
//! journal that is silently shorter than what was acknowledged (sled ends
//! its recovery at the first damaged log message and drops the rest; the
//! store's commit record is what notices).
//!
//! Seeds are fixed and printed; `COURIER_FAULT_SEED=<n>` replays one run,
//! `COURIER_FAULT_CASES=<n>` changes the number of cases (default 160).

#![cfg(feature = "sled")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use courier_persistence::{Error, Journal, ReplayRange, SledStore, WriteBatch, replay, tck};
use courier_test_support::Rng;
use courier_test_support::crash::{Child, env_u64};

const CHILD_ENV: &str = "COURIER_FAULT_CHILD_DIR";
const TEST: &str = "damaged_sled_files_are_refused_or_fully_recovered";
const PID: &str = "faults";
/// Events the child writes at most (one per write, so one commit each).
const WRITES: u64 = 1200;

/// The child: write events one by one, print each acknowledged one, then
/// wait to be killed.
fn child(dir: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SledStore::open(dir).expect("open");
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

/// Bytes that appear in the event's payload and nowhere else, so the parent
/// can find where sled wrote the event.
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
fn write_and_kill(dir: &Path, at_least: u64) -> u64 {
    let acked = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&acked);
    let dir = dir.to_str().expect("utf-8 path");
    let mut child = Child::spawn(TEST, &[(CHILD_ENV, dir)], move |line| {
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

/// sled's files in the store (the commit record is courier's, not sled's).
fn sled_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let len = entry.metadata().expect("metadata").len();
        if entry.file_type().expect("type").is_file()
            && entry.file_name() != courier_persistence::COMMIT_FILE
            && len > 0
        {
            files.push((entry.path(), len));
        }
    }
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
fn outcome(dir: &Path, acked: u64) -> Result<&'static str, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = match SledStore::open(dir) {
            Ok(store) => store,
            Err(Error::RolledBack { .. }) => return Ok("refused at open: rolled back"),
            Err(Error::EngineCorrupt { .. }) => return Ok("refused at open: engine corrupt"),
            Err(Error::CommitRecord { .. }) => return Ok("refused at open: commit record"),
            Err(e) => return Ok(leak(format!("refused at open: {}", kind(&e)))),
        };
        let highest = store.highest_seq_nr(PID).await;
        let replayed = replay(&store, PID, ReplayRange::all(), 64, |_| Ok(())).await;
        let _ = store.close().await;
        match (highest, replayed) {
            (Err(e), _) | (_, Err(e)) => Ok(leak(format!("refused on read: {}", kind(&e)))),
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

fn kind(e: &Error) -> String {
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
/// bytes of a chosen acknowledged event in `db` (as a bad sector under one
/// record would), the others hit any offset of any of sled's files.
fn pick_damage(
    rng: &mut Rng,
    dir: &Path,
    files: &[(PathBuf, u64)],
    acked: u64,
) -> (PathBuf, Damage) {
    let truncate = rng.below(3) == 0;
    if rng.below(2) == 0 {
        let db = dir.join("db");
        let bytes = std::fs::read(&db).expect("read db");
        let seq = 1 + rng.below(acked);
        let hits = find_all(&bytes, marker(seq).as_bytes());
        if !hits.is_empty() {
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
    let path = dir.join(name.file_name().expect("file name"));
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
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let seed = env_u64("COURIER_FAULT_SEED").unwrap_or(0x5eed_f1a7);
    let cases = env_u64("COURIER_FAULT_CASES").unwrap_or(160);
    println!("sled faults: seed {seed} (replay with COURIER_FAULT_SEED={seed}), {cases} cases");
    let mut rng = Rng::new(seed);
    let work = tempfile::tempdir().expect("tempdir");
    let pristine = work.path().join("pristine");
    let acked = write_and_kill(&pristine, 300 + rng.below(900));
    let files = sled_files(&pristine);
    println!("killed after {acked} acks; sled files: {files:?}");
    // The undamaged store recovers everything.
    assert_eq!(outcome(&pristine, acked), Ok("fully recovered"));

    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in 0..cases {
        let dir = work.path().join(format!("case-{case}"));
        copy_dir(&pristine, &dir);
        let (path, change) = pick_damage(&mut rng, &dir, &files, acked);
        damage(&path, &change);
        // sled may hang or panic on damaged files: either fails the case
        // instead of the whole run.
        let (tx, rx) = mpsc::channel();
        let case_dir = dir.clone();
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| outcome(&case_dir, acked));
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
            "no case was refused: the damage missed sled's data"
        );
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The engine's files come back older than the commit record (a restored
/// disk snapshot, a copy of the directory without `courier.commit`, lost
/// writes below the file system): the store refuses to open and names the
/// loss; accepting it opens under a new store epoch.
#[test]
fn sled_files_older_than_the_commit_record_are_refused() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let work = tempfile::tempdir().expect("tempdir");
        let dir = work.path().join("store");
        let old = work.path().join("old");
        let store = SledStore::open(&dir).expect("open");
        for seq in 1..=50 {
            store
                .write(WriteBatch::new().event(tck::event(PID, seq)))
                .await
                .expect("write");
        }
        let epoch = courier_persistence::store_epoch(&store).await.expect("epoch");
        store.close().await.expect("close");
        copy_dir(&dir, &old);
        let store = SledStore::open(&dir).expect("reopen");
        for seq in 51..=80 {
            store
                .write(WriteBatch::new().event(tck::event(PID, seq)))
                .await
                .expect("write");
        }
        store.close().await.expect("close");
        // sled's files from before events 51..=80, courier's record from after.
        for (path, _) in sled_files(&old) {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
        let refused = SledStore::open(&dir);
        assert!(
            matches!(refused, Err(Error::RolledBack { acknowledged, found, .. }) if acknowledged - found == 30),
            "{:?}",
            refused.err()
        );
        let accepted = SledStore::open_accepting_loss(&dir).expect("accepting the loss");
        assert_eq!(accepted.highest_seq_nr(PID).await.expect("highest"), 50);
        let now = courier_persistence::store_epoch(&accepted).await.expect("epoch");
        assert_ne!(now, epoch, "a new store epoch");
        accepted.close().await.expect("close");
    });
}
