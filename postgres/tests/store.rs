//! The PostgreSQL store beyond the conformance suite: group commit,
//! fencing of a second writer, damaged rows, schema versions, and killed
//! connections.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use courier_persistence::{Error, Journal, ReplayRange, WriteBatch, replay, store_epoch};
use courier_postgres::{Error as PgError, PostgresStore, SCHEMA_VERSION};
use support::event;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_one_transaction() {
    let Some(pg) = support::store().await else {
        return;
    };
    let store = pg.0;
    let writer = Uuid::now_v7();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let pid = format!("g-{i}");
                store
                    .write(WriteBatch::new().event(event(&pid, 1, writer)).put(
                        "group",
                        pid.clone(),
                        b"x".to_vec(),
                    ))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("write");
    }
    let stats = store.stats();
    assert_eq!(stats.writes, 200);
    assert!(
        stats.groups < 200,
        "200 overlapping writes took {} transactions: no group commit",
        stats.groups
    );
    // What was acknowledged is there for another node.
    let other = PostgresStore::open(store.settings().clone())
        .await
        .expect("open");
    for i in 0..200 {
        assert_eq!(
            other
                .highest_seq_nr(&format!("g-{i}"))
                .await
                .expect("highest"),
            1
        );
    }
    assert_eq!(
        other
            .kv_scan("group", None, 1000)
            .await
            .expect("scan")
            .len(),
        200
    );
}

#[tokio::test]
async fn a_second_writer_of_one_persistence_id_is_refused_and_writes_nothing() {
    let Some(pg) = support::store().await else {
        return;
    };
    let (a, wa) = (pg.0, Uuid::now_v7());
    let b = PostgresStore::open(a.settings().clone())
        .await
        .expect("open");
    let wb = Uuid::now_v7();
    a.write(WriteBatch::new().events((1..=3).map(|s| event("p", s, wa))))
        .await
        .expect("a writes");
    // Node B takes over and writes on; node A, still running, is fenced off.
    b.write(WriteBatch::new().event(event("p", 4, wb)))
        .await
        .expect("b writes");
    let refused = a
        .write(WriteBatch::new().event(event("p", 4, wa)).put(
            "fence",
            b"a".to_vec(),
            b"x".to_vec(),
        ))
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::SequenceConflict {
                expected: 5,
                got: 4,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(a.kv_get("fence", b"a").await.expect("kv"), None);
    let mut writers = Vec::new();
    replay(&a, "p", ReplayRange::all(), 2, |r| {
        writers.push((r.seq_nr, r.writer_id));
        Ok(())
    })
    .await
    .expect("replay");
    assert_eq!(writers, vec![(1, wa), (2, wa), (3, wa), (4, wb)]);

    // Both nodes racing for the same sequence number: one wins, the other
    // gets a conflict, and only the winner's records are stored.
    for i in 0..20 {
        let pid = format!("race-{i}");
        let batch = |w, tag: &'static str| {
            WriteBatch::new().event(event(&pid, 1, w)).put(
                "race",
                pid.clone(),
                tag.as_bytes().to_vec(),
            )
        };
        let (ra, rb) = tokio::join!(a.write(batch(wa, "a")), b.write(batch(wb, "b")));
        let winner = match (&ra, &rb) {
            (
                Ok(()),
                Err(Error::SequenceConflict {
                    expected: 2,
                    got: 1,
                    ..
                }),
            ) => "a",
            (
                Err(Error::SequenceConflict {
                    expected: 2,
                    got: 1,
                    ..
                }),
                Ok(()),
            ) => "b",
            other => panic!("{pid}: exactly one writer must win: {other:?}"),
        };
        assert_eq!(
            a.kv_get("race", pid.as_bytes()).await.expect("kv"),
            Some(winner.as_bytes().to_vec())
        );
        assert_eq!(a.highest_seq_nr(&pid).await.expect("highest"), 1);
    }
}

#[tokio::test]
async fn damaged_rows_are_typed_errors_naming_the_record() {
    let Some(pg) = support::store().await else {
        return;
    };
    let store = pg.0;
    let schema = store.settings().schema().to_owned();
    let w = Uuid::now_v7();
    store
        .write(
            WriteBatch::new()
                .events((1..=3).map(|s| event("d", s, w)))
                .put("ns", b"k".to_vec(), b"value".to_vec()),
        )
        .await
        .expect("write");
    let sql = support::client().await;
    // One flipped byte in event 2's payload.
    sql.execute(
        &format!(
            "UPDATE {schema}.events SET record = overlay(record placing '\\xff'::bytea \
             from length(record) for 1) WHERE persistence_id = 'd' AND seq_nr = 2"
        ),
        &[],
    )
    .await
    .expect("damage");
    let mut seen = Vec::new();
    let result = replay(&store, "d", ReplayRange::all(), 10, |r| {
        seen.push(r.seq_nr);
        Ok(())
    })
    .await;
    assert!(
        matches!(result, Err(Error::Corrupt { ref persistence_id, seq_nr: 2, .. }) if persistence_id == "d"),
        "{result:?}"
    );
    assert!(seen.is_empty(), "nothing of a damaged page is handed over");
    // Event 1's record stored under sequence number 3.
    sql.execute(
        &format!(
            "UPDATE {schema}.events SET record = (SELECT record FROM {schema}.events \
             WHERE persistence_id = 'd' AND seq_nr = 1) WHERE persistence_id = 'd' AND seq_nr = 3"
        ),
        &[],
    )
    .await
    .expect("misplace");
    let result = store.read_events("d", 3, 3, 1).await;
    assert!(
        matches!(result, Err(Error::Corrupt { seq_nr: 3, .. })),
        "{result:?}"
    );
    // A damaged key-value record.
    sql.execute(
        &format!("UPDATE {schema}.kv SET value = '\\x0000000001'::bytea WHERE namespace = 'ns'"),
        &[],
    )
    .await
    .expect("damage");
    let result = store.kv_get("ns", b"k").await;
    assert!(
        matches!(result, Err(Error::CorruptKv { ref namespace, .. }) if namespace == "ns"),
        "{result:?}"
    );
    let result = store.kv_scan("ns", None, 10).await;
    assert!(matches!(result, Err(Error::CorruptKv { .. })), "{result:?}");
}

#[tokio::test]
async fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let Some(pg) = support::store().await else {
        return;
    };
    let store = pg.0;
    let schema = store.settings().schema().to_owned();
    let epoch = store_epoch(&store).await.expect("epoch").expect("an epoch");
    // A second node opening the same schema keeps its version and epoch.
    let again = PostgresStore::open(store.settings().clone())
        .await
        .expect("reopen");
    assert_eq!(store_epoch(&again).await.expect("epoch"), Some(epoch));
    let refused = store
        .write(WriteBatch::new().put(
            courier_persistence::STORE_NAMESPACE,
            b"epoch".to_vec(),
            vec![0; 16],
        ))
        .await;
    assert!(matches!(refused, Err(Error::Invalid { .. })), "{refused:?}");
    let sql = support::client().await;
    let versions: Vec<i64> = sql
        .query(&format!("SELECT version FROM {schema}.courier_schema"), &[])
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![SCHEMA_VERSION]);
    sql.execute(
        &format!(
            "INSERT INTO {schema}.courier_schema (version, description, applied_at) \
             VALUES (99, 'from the future', 0)"
        ),
        &[],
    )
    .await
    .expect("future version");
    let refused = PostgresStore::open(store.settings().clone()).await;
    assert!(
        matches!(
            refused,
            Err(PgError::SchemaTooNew {
                found: 99,
                supported: SCHEMA_VERSION,
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
}

/// Connections killed under the writers (`pg_terminate_backend`), again and
/// again: every acknowledged write is there, every write is all or nothing,
/// and nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_lose_no_acknowledged_write_and_duplicate_nothing() {
    let Some(settings) = support::settings() else {
        return;
    };
    let app = format!("courier-kill-{}", Uuid::now_v7().simple());
    let store = PostgresStore::open(settings.with_application_name(&app))
        .await
        .expect("open");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let stop = Arc::clone(&stop);
        let app = app.clone();
        tokio::spawn(async move {
            let sql = support::client().await;
            let mut kills = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                kills += sql
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1",
                        &[&app],
                    )
                    .await
                    .expect("kill")
                    .len() as u64;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            kills
        })
    };
    let w = Uuid::now_v7();
    let writers: Vec<_> = (0..4)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let pid = format!("k-{n}");
                let (mut acked, mut failed) = (BTreeSet::new(), 0u64);
                let mut seq = 1;
                while seq <= 60 {
                    let batch = WriteBatch::new().event(event(&pid, seq, w)).put(
                        format!("k/{pid}"),
                        seq.to_be_bytes().to_vec(),
                        b"x".to_vec(),
                    );
                    match store.write(batch).await {
                        Ok(()) => {
                            acked.insert(seq);
                            seq += 1;
                        }
                        // Resolved: nothing committed; write it again.
                        Err(e)
                            if matches!(PgError::find(&e), Some(PgError::GroupFailed { .. })) =>
                        {
                            failed += 1
                        }
                        Err(e) if PgError::is_outcome_unknown(&e) => {
                            failed += 1;
                            // Recover from the journal before writing again.
                            if store.highest_seq_nr(&pid).await.unwrap_or(0) >= seq {
                                seq += 1;
                            }
                        }
                        // A read or pool error while the server kills us.
                        Err(e) => panic!("{pid} at {seq}: unexpected error {e:?}"),
                    }
                }
                (pid, acked, failed)
            })
        })
        .collect();
    let mut results = Vec::new();
    for w in writers {
        results.push(w.await.expect("writer"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = killer.await.expect("killer");
    assert!(kills > 0, "the test killed no connection");
    let check = PostgresStore::open(store.settings().clone().with_application_name("check"))
        .await
        .expect("open");
    let mut failures = 0;
    for (pid, acked, failed) in results {
        failures += failed;
        let mut seen = Vec::new();
        replay(&check, &pid, ReplayRange::all(), 16, |r| {
            seen.push(r.seq_nr);
            Ok(())
        })
        .await
        .expect("replay");
        assert_eq!(
            seen,
            (1..=60).collect::<Vec<_>>(),
            "{pid}: gap or duplicate"
        );
        assert!(acked.iter().all(|s| seen.contains(s)));
        let records = check
            .kv_scan(&format!("k/{pid}"), None, 1000)
            .await
            .expect("scan");
        assert_eq!(
            records.len(),
            60,
            "{pid}: events and records committed apart"
        );
    }
    eprintln!("{kills} connections killed, {failures} writes failed and were retried");
}

/// A dropped store lets go of its connections (the writer task ends with
/// the last handle, and the pool with it).
#[tokio::test]
async fn dropping_the_store_closes_its_connections() {
    let Some(settings) = support::settings() else {
        return;
    };
    let app = format!("courier-drop-{}", Uuid::now_v7().simple());
    let store = PostgresStore::open(settings.with_application_name(&app))
        .await
        .expect("open");
    store
        .write(WriteBatch::new().put("drop", b"k".to_vec(), b"v".to_vec()))
        .await
        .expect("write");
    let sql = support::client().await;
    let count = || async {
        let row = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .expect("count");
        row.get::<_, i64>(0)
    };
    assert!(count().await > 0, "the store holds connections while open");
    drop(store);
    let started = std::time::Instant::now();
    while count().await > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the dropped store's connections stay open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_damaged_rows_and_holes_and_writes_nothing() {
    let Some(pg) = support::store().await else {
        return;
    };
    let store = pg.0;
    let schema = store.settings().schema().to_owned();
    let w = Uuid::now_v7();
    // More events than one page of the walk, in two journals.
    store
        .write(
            WriteBatch::new()
                .events((1..=1500).map(|s| event("big", s, w)))
                .events((1..=4).map(|s| event("small", s, w)))
                .put("ns", b"k".to_vec(), b"value".to_vec()),
        )
        .await
        .expect("write");
    let report = store.verify().await.expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
    let big = report
        .journals
        .iter()
        .find(|j| j.persistence_id == "big")
        .expect("big");
    assert_eq!((big.events, big.highest), (1500, 1500));
    assert!(report.namespaces.iter().any(|n| n.namespace == "ns"));

    let sql = support::client().await;
    for statement in [
        // A flipped byte in big#1200 (on the walk's second page).
        format!(
            "UPDATE {schema}.events SET record = overlay(record placing '\\xff'::bytea \
             from length(record) for 1) WHERE persistence_id = 'big' AND seq_nr = 1200"
        ),
        // A hole: small#2 gone.
        format!("DELETE FROM {schema}.events WHERE persistence_id = 'small' AND seq_nr = 2"),
        // A damaged key-value record.
        format!("UPDATE {schema}.kv SET value = '\\x0000000001'::bytea WHERE namespace = 'ns'"),
    ] {
        sql.execute(&statement, &[]).await.expect("damage");
    }
    let count = format!(
        "SELECT (SELECT count(*) FROM {schema}.events) + (SELECT count(*) FROM {schema}.kv) \
         + (SELECT count(*) FROM {schema}.journal)"
    );
    let before: i64 = sql.query_one(&count, &[]).await.expect("count").get(0);
    let report = store.verify().await.expect("verify");
    assert_eq!(report.problem_count, 3, "{:?}", report.problems);
    let shown: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().any(|p| p.starts_with("event big#1200")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|p| p == "journal small: events 2 to 2 are missing"),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|p| p.starts_with("record ns/")),
        "{shown:?}"
    );
    let after: i64 = sql.query_one(&count, &[]).await.expect("count").get(0);
    assert_eq!(after, before, "verify wrote nothing");
}

#[tokio::test]
async fn a_read_only_store_creates_nothing_and_refuses_every_write() {
    let Some(settings) = support::settings() else {
        return;
    };
    // A schema nobody created: refused, and still not there after.
    let missing = settings
        .clone()
        .with_schema(format!("ro_{}", Uuid::now_v7().simple()))
        .expect("schema");
    let name = missing.schema().to_owned();
    for _ in 0..2 {
        let refused = PostgresStore::open_read_only(missing.clone()).await;
        assert!(
            matches!(refused, Err(PgError::NoSchema { ref schema, .. }) if *schema == name),
            "{:?}",
            refused.err()
        );
    }
    let sql = support::client().await;
    let row = sql
        .query_one(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            &[&name],
        )
        .await
        .expect("schemata");
    assert_eq!(
        row.get::<_, i64>(0),
        0,
        "a read-only open created the schema"
    );

    // An existing store: reads work, writes are typed refusals.
    let Some(pg) = support::store().await else {
        return;
    };
    let w = Uuid::now_v7();
    pg.0.write(WriteBatch::new().events((1..=2).map(|s| event("ro", s, w))))
        .await
        .expect("write");
    let reader = PostgresStore::open_read_only(pg.0.settings().clone())
        .await
        .expect("open read-only");
    assert_eq!(reader.highest_seq_nr("ro").await.expect("read"), 2);
    let refusals = [
        reader
            .write(WriteBatch::new().events([event("ro", 3, w)]))
            .await,
        reader.delete_events_to("ro", 1).await,
    ];
    for refused in refusals {
        let error = refused.expect_err("a write through a read-only store");
        assert!(
            matches!(PgError::find(&error), Some(PgError::ReadOnly { .. })),
            "{error:?}"
        );
    }
    assert_eq!(pg.0.highest_seq_nr("ro").await.expect("read"), 2);
    assert_eq!(pg.0.deleted_to("ro").await.expect("read"), 0);
}
