//! [`PostgresStore::verify`]: every record of the shared store read once
//! and checked, as `courier verify` does for the embedded engines.

use courier_persistence::{StoreReport, Verifier};
use tokio_postgres::types::ToSql;

use crate::error::Error;
use crate::store::PostgresStore;

/// Rows read per query: the walk holds at most one page in memory.
const PAGE: i64 = 1000;

type PResult<T> = courier_persistence::Result<T>;

/// A page of `table`'s rows after `(first, second)` in key order, keyset
/// paged so that no query holds the whole table.
fn after(schema: &str, table: &str, columns: &str, key: (&str, &str)) -> String {
    format!(
        "SELECT {columns} FROM {schema}.{table} WHERE ({k1}, {k2}) > ($1, $2) \
         ORDER BY {k1}, {k2} LIMIT {PAGE}",
        k1 = key.0,
        k2 = key.1,
    )
}

/// A `BIGINT` as a sequence number; a negative one (damage) as 0, which
/// the record's own check then names.
fn seq(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl PostgresStore {
    /// Reads every journal mark, event, snapshot and key–value record once,
    /// in pages of 1000 rows, and checks each record's checksum, that it
    /// is the record its row names, and that every journal is gap-free
    /// from its deleted-to mark to its highest sequence number; writes
    /// nothing. Other nodes may write meanwhile: a journal that grows
    /// during the walk may show as a gap at its tail, so run it again
    /// before acting on a gap at the end of a live journal.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] / [`Error::Database`] (inside
    /// [`Storage`](courier_persistence::Error::Storage)) when the rows
    /// cannot be read. A damaged record is a problem in the report, not
    /// an error.
    pub async fn verify(&self) -> PResult<StoreReport> {
        let schema = self.settings().schema.clone();
        let client = self.shared().pool.get().await.map_err(Error::from)?;
        let db = |what: &'static str| move |e| courier_persistence::Error::from(Error::db(what, e));
        let mut verifier = Verifier::new();

        let marks = format!(
            "SELECT persistence_id, highest, deleted_to FROM {schema}.journal \
             WHERE persistence_id > $1 ORDER BY persistence_id LIMIT {PAGE}"
        );
        let mut last = String::new();
        loop {
            let rows = client
                .query(&marks, &[&last])
                .await
                .map_err(db("reading the journals"))?;
            let Some(end) = rows.last() else { break };
            last = end.try_get(0).map_err(db("reading the journals"))?;
            for row in &rows {
                let pid: &str = row.try_get(0).map_err(db("reading the journals"))?;
                let highest: i64 = row.try_get(1).map_err(db("reading the journals"))?;
                let deleted_to: i64 = row.try_get(2).map_err(db("reading the journals"))?;
                verifier.marks(pid, seq(highest), seq(deleted_to));
            }
        }

        for (table, what) in [
            ("events", "reading the events"),
            ("snapshots", "reading the snapshots"),
        ] {
            let query = after(
                &schema,
                table,
                "persistence_id, seq_nr, record",
                ("persistence_id", "seq_nr"),
            );
            let (mut pid, mut nr) = (String::new(), i64::MIN);
            loop {
                let rows = client
                    .query(&query, &[&pid as &(dyn ToSql + Sync), &nr])
                    .await
                    .map_err(db(what))?;
                let Some(end) = rows.last() else { break };
                pid = end.try_get(0).map_err(db(what))?;
                nr = end.try_get(1).map_err(db(what))?;
                for row in &rows {
                    let id: &str = row.try_get(0).map_err(db(what))?;
                    let seq_nr: i64 = row.try_get(1).map_err(db(what))?;
                    let record: &[u8] = row.try_get(2).map_err(db(what))?;
                    if table == "events" {
                        verifier.event(id, seq(seq_nr), record);
                    } else {
                        verifier.snapshot(id, seq(seq_nr), record);
                    }
                }
            }
        }

        let query = after(&schema, "kv", "namespace, key, value", ("namespace", "key"));
        let (mut namespace, mut key) = (String::new(), Vec::<u8>::new());
        loop {
            let rows = client
                .query(&query, &[&namespace as &(dyn ToSql + Sync), &key])
                .await
                .map_err(db("reading the records"))?;
            let Some(end) = rows.last() else { break };
            namespace = end.try_get(0).map_err(db("reading the records"))?;
            key = end.try_get(1).map_err(db("reading the records"))?;
            for row in &rows {
                let ns: &str = row.try_get(0).map_err(db("reading the records"))?;
                let k: &[u8] = row.try_get(1).map_err(db("reading the records"))?;
                let value: &[u8] = row.try_get(2).map_err(db("reading the records"))?;
                verifier.kv(ns, k, value);
            }
        }
        Ok(verifier.finish())
    }
}
