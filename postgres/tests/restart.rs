//! The server restarted under the writers (`pg_ctl restart -m immediate`,
//! a crash of PostgreSQL): writes fail while it is down, succeed again once
//! it is back, and no acknowledged write is lost or applied twice.
//!
//! This binary has one test, because it restarts the server every other
//! test uses. It needs `COURIER_POSTGRES_DIR` and `COURIER_POSTGRES_BIN`
//! from `scripts/postgres.sh`.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use courier_persistence::{Journal, ReplayRange, WriteBatch, replay};
use courier_postgres::{Error as PgError, PostgresStore};
use support::event;
use uuid::Uuid;

const WRITES: u64 = 80;
/// Each writer's most writes: it writes on until a little after the restart
/// (so that the crash always falls in the middle of its writes, however fast
/// the machine), but never past this.
const MAX_WRITES: u64 = 900;

fn restart_server() {
    let dir = std::env::var("COURIER_POSTGRES_DIR").expect("COURIER_POSTGRES_DIR");
    let bin = std::env::var("COURIER_POSTGRES_BIN").expect("COURIER_POSTGRES_BIN");
    let pg_ctl = format!("{bin}/pg_ctl");
    let data = format!("{dir}/data");
    let args = [
        "-D",
        data.as_str(),
        "-m",
        "immediate",
        "-w",
        "-t",
        "60",
        "restart",
    ];
    let status = if cfg!(unix) && is_root() {
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", pg_ctl.as_str()])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
    } else {
        std::process::Command::new(&pg_ctl)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
    };
    assert!(
        status.expect("run pg_ctl").success(),
        "pg_ctl restart failed"
    );
}

/// Whether this process runs as root (then the server runs as `postgres`).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_server_crash_and_writers_recover() {
    let Some(settings) = support::settings() else {
        return;
    };
    if std::env::var("COURIER_POSTGRES_DIR").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but COURIER_POSTGRES_DIR is not set"
        );
        eprintln!("skipped: the server was not started by scripts/postgres.sh");
        return;
    }
    let store = PostgresStore::open(settings).await.expect("open");
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let restarted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = Uuid::now_v7();
    let writers: Vec<_> = (0..4)
        .map(|n| {
            let (store, acked, errors) = (store.clone(), Arc::clone(&acked), Arc::clone(&errors));
            let restarted = Arc::clone(&restarted);
            tokio::spawn(async move {
                let pid = format!("r-{n}");
                let mut done = BTreeSet::new();
                let mut seq = 1;
                // The last write: set once the restart is over.
                let mut last: Option<u64> = None;
                while last.is_none_or(|last| seq <= last) && seq <= MAX_WRITES {
                    if last.is_none() && restarted.load(Ordering::SeqCst) {
                        last = Some(seq.max(WRITES) + 10);
                    }
                    let batch = WriteBatch::new().event(event(&pid, seq, w)).put(
                        format!("r/{pid}"),
                        seq.to_be_bytes().to_vec(),
                        b"x".to_vec(),
                    );
                    match store.write(batch).await {
                        Ok(()) => {
                            done.insert(seq);
                            acked.fetch_add(1, Ordering::Relaxed);
                            seq += 1;
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            if PgError::is_outcome_unknown(&e) {
                                // Recover from the journal before writing again.
                                loop {
                                    match store.highest_seq_nr(&pid).await {
                                        Ok(h) => {
                                            if h >= seq {
                                                seq += 1;
                                            }
                                            break;
                                        }
                                        Err(_) => {
                                            tokio::time::sleep(Duration::from_millis(50)).await
                                        }
                                    }
                                }
                            } else {
                                assert!(
                                    PgError::find(&e).is_some(),
                                    "{pid} at {seq}: not a database error: {e:?}"
                                );
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
                (pid, done, seq - 1)
            })
        })
        .collect();
    // Crash the server once the writers are going.
    while acked.load(Ordering::Relaxed) < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = acked.load(Ordering::Relaxed);
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(restart_server)
        .await
        .expect("restart");
    eprintln!("server restarted in {:?}", started.elapsed());
    let at_restart = acked.load(Ordering::Relaxed);
    restarted.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for writer in writers {
        results.push(
            tokio::time::timeout(Duration::from_secs(120), writer)
                .await
                .expect("writers recover")
                .expect("writer"),
        );
    }
    eprintln!(
        "writers done {:?} after the restart began",
        started.elapsed()
    );
    // An immediate shutdown kills every backend, so each write acknowledged
    // after it went through a connection made after the crash: the store
    // recovered, whether a writer saw an error (a group cut off before its
    // COMMIT) or not (a group cut off during its COMMIT is resolved inside
    // the store). Each writer goes on for ten writes after the restart.
    let after = acked.load(Ordering::Relaxed) - at_restart;
    eprintln!(
        "acked {before} before the crash, {after} after the restart; {} errors seen",
        errors.load(Ordering::Relaxed)
    );
    assert!(
        after >= 40,
        "only {after} writes acknowledged after the restart"
    );
    let check = PostgresStore::open(store.settings().clone())
        .await
        .expect("open");
    for (pid, done, written) in results {
        let mut seen = Vec::new();
        replay(&check, &pid, ReplayRange::all(), 32, |r| {
            seen.push(r.seq_nr);
            Ok(())
        })
        .await
        .expect("replay");
        assert_eq!(seen, (1..=written).collect::<Vec<_>>(), "{pid}");
        assert!(done.iter().all(|s| seen.contains(s)));
        let records = check
            .kv_scan(&format!("r/{pid}"), None, 1000)
            .await
            .expect("scan");
        assert_eq!(records.len() as u64, written, "{pid}");
    }
}
