//! The statements the store runs, with the schema filled in once.
//!
//! Only SQL that PostgreSQL-compatible distributed databases also accept:
//! `INSERT … ON CONFLICT`, `SELECT … FOR UPDATE`, multi-argument `UNNEST`
//! of array parameters, `BYTEA`, `BIGINT`, `UUID`; no advisory locks, no
//! `LISTEN`/`NOTIFY`, no sequences, no stored procedures.

pub(crate) struct Sql {
    pub(crate) ensure_journals: String,
    pub(crate) lock_journals: String,
    pub(crate) insert_events: String,
    pub(crate) update_highest: String,
    pub(crate) upsert_kv: String,
    pub(crate) delete_kv: String,
    pub(crate) insert_commit: String,
    pub(crate) delete_commit: String,
    pub(crate) read_events: String,
    pub(crate) journal_meta: String,
    pub(crate) lock_journal: String,
    pub(crate) delete_events: String,
    pub(crate) set_deleted_to: String,
    pub(crate) kv_get: String,
    pub(crate) kv_scan_from_start: String,
    pub(crate) kv_scan_after: String,
    pub(crate) insert_epoch: String,
    pub(crate) save_snapshot: String,
    pub(crate) load_snapshot: String,
    pub(crate) delete_snapshot: String,
    pub(crate) delete_snapshots: String,
}

impl Sql {
    pub(crate) fn new(s: &str) -> Self {
        Self {
            ensure_journals: format!(
                "INSERT INTO {s}.journal (persistence_id, highest, deleted_to) \
                 SELECT p, 0, 0 FROM UNNEST($1::text[]) AS t(p) \
                 ON CONFLICT (persistence_id) DO NOTHING"
            ),
            lock_journals: format!(
                "SELECT persistence_id, highest FROM {s}.journal \
                 WHERE persistence_id = ANY($1::text[]) ORDER BY persistence_id FOR UPDATE"
            ),
            insert_events: format!(
                "INSERT INTO {s}.events (persistence_id, seq_nr, record) \
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[])"
            ),
            update_highest: format!(
                "UPDATE {s}.journal SET highest = t.h \
                 FROM UNNEST($1::text[], $2::int8[]) AS t(p, h) \
                 WHERE {s}.journal.persistence_id = t.p AND {s}.journal.highest < t.h"
            ),
            upsert_kv: format!(
                "INSERT INTO {s}.kv (namespace, key, value) \
                 SELECT * FROM UNNEST($1::text[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete_kv: format!(
                "DELETE FROM {s}.kv WHERE (namespace, key) IN \
                 (SELECT * FROM UNNEST($1::text[], $2::bytea[]))"
            ),
            insert_commit: format!(
                "INSERT INTO {s}.commits (id, committed_at) VALUES ($1, $2) \
                 ON CONFLICT (id) DO NOTHING"
            ),
            delete_commit: format!("DELETE FROM {s}.commits WHERE id = $1"),
            read_events: format!(
                "SELECT seq_nr, record FROM {s}.events \
                 WHERE persistence_id = $1 AND seq_nr >= $2 AND seq_nr <= $3 \
                 ORDER BY seq_nr LIMIT $4"
            ),
            journal_meta: format!(
                "SELECT highest, deleted_to FROM {s}.journal WHERE persistence_id = $1"
            ),
            lock_journal: format!(
                "SELECT highest, deleted_to FROM {s}.journal WHERE persistence_id = $1 FOR UPDATE"
            ),
            delete_events: format!(
                "DELETE FROM {s}.events WHERE persistence_id = $1 AND seq_nr <= $2"
            ),
            set_deleted_to: format!(
                "UPDATE {s}.journal SET deleted_to = $2 WHERE persistence_id = $1 AND deleted_to < $2"
            ),
            kv_get: format!("SELECT value FROM {s}.kv WHERE namespace = $1 AND key = $2"),
            kv_scan_from_start: format!(
                "SELECT key, value FROM {s}.kv WHERE namespace = $1 ORDER BY key LIMIT $2"
            ),
            kv_scan_after: format!(
                "SELECT key, value FROM {s}.kv WHERE namespace = $1 AND key > $2 \
                 ORDER BY key LIMIT $3"
            ),
            insert_epoch: format!(
                "INSERT INTO {s}.kv (namespace, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (namespace, key) DO NOTHING"
            ),
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots (persistence_id, seq_nr, taken_at, record) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (persistence_id, seq_nr) \
                 DO UPDATE SET taken_at = EXCLUDED.taken_at, record = EXCLUDED.record"
            ),
            load_snapshot: format!(
                "SELECT seq_nr, record FROM {s}.snapshots WHERE persistence_id = $1 \
                 AND seq_nr >= $2 AND seq_nr <= $3 AND taken_at >= $4 AND taken_at <= $5 \
                 ORDER BY seq_nr DESC LIMIT 1"
            ),
            delete_snapshot: format!(
                "DELETE FROM {s}.snapshots WHERE persistence_id = $1 AND seq_nr = $2"
            ),
            delete_snapshots: format!(
                "DELETE FROM {s}.snapshots WHERE persistence_id = $1 \
                 AND seq_nr >= $2 AND seq_nr <= $3 AND taken_at >= $4 AND taken_at <= $5"
            ),
        }
    }
}
