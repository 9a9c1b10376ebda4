//! [`PostgresStore`]: the journal and snapshot store on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use courier_persistence::metrics::StoreMetrics;
use courier_persistence::{
    EventRecord, Journal, MAX_ID_LEN, STORE_EPOCH_KEY, STORE_NAMESPACE, SeqNr, Snapshot,
    SnapshotCriteria, SnapshotStore, WriteBatch,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::error::Error;
use crate::record;
use crate::schema;
use crate::settings::PostgresSettings;
use crate::sql::Sql;
use crate::writer::{Pending, Writer};

type PResult<T> = courier_persistence::Result<T>;

/// What the writer has committed since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Writes ([`Journal::write`] calls) committed.
    pub writes: u64,
    /// Transactions that committed them (group commit: fewer than writes
    /// when writers overlap).
    pub groups: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) groups: AtomicU64,
}

/// A [`Journal`] and [`SnapshotStore`] on PostgreSQL, shared by every node
/// that opens the same database and schema. Cheap to clone: clones share
/// one pool and one writer task.
///
/// Writes go through one writer task that takes every write waiting and
/// commits them in one transaction (group commit); `Ok` means that
/// transaction committed. Reads and snapshot operations use the pool
/// directly.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
    /// The writer task's queue. Only store handles hold it: when the last
    /// one is dropped the writer finishes what it has and ends, and with it
    /// the pool and its connections.
    requests: mpsc::UnboundedSender<Pending>,
}

pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) stats: Counters,
    pub(crate) sql: Sql,
    pub(crate) metrics: StoreMetrics,
    settings: PostgresSettings,
    /// Opened with [`PostgresStore::open_read_only`]: every write refused.
    read_only: bool,
}

/// A sequence number or timestamp as PostgreSQL's `BIGINT`, capped (for
/// bounds such as `SeqNr::MAX`).
pub(crate) fn capped(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `BIGINT` read back; a negative one is damage.
pub(crate) fn unsigned(value: i64, persistence_id: &str, what: &str) -> PResult<u64> {
    u64::try_from(value).map_err(|_| courier_persistence::Error::Corrupt {
        persistence_id: persistence_id.to_owned(),
        seq_nr: 0,
        reason: format!("negative {what} {value}"),
    })
}

pub(crate) fn check_id(what: &'static str, id: &str) -> PResult<()> {
    let reason = if id.is_empty() {
        "it is empty".to_owned()
    } else if id.len() > MAX_ID_LEN {
        format!("{} bytes is longer than {MAX_ID_LEN}", id.len())
    } else {
        return Ok(());
    };
    Err(courier_persistence::Error::Invalid { what, reason })
}

pub(crate) fn storable(what: &'static str, value: u64) -> PResult<i64> {
    i64::try_from(value).map_err(|_| courier_persistence::Error::Invalid {
        what,
        reason: format!("{value} is above {} (PostgreSQL's BIGINT)", i64::MAX),
    })
}

fn db(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> courier_persistence::Error {
    move |e| Error::db(what, e).into()
}

impl PostgresStore {
    /// Connects, creates or migrates the schema, records the store epoch
    /// (once per database and schema) and starts the writer task. Must be
    /// called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the database cannot be reached,
    /// [`Error::SchemaTooNew`], [`Error::Database`] if it refuses the
    /// schema.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves at most a partly migrated schema whose
    /// migrations are each one transaction: the next open finishes them.
    pub async fn open(settings: PostgresSettings) -> crate::Result<Self> {
        let pool = Self::pool(&settings)?;
        schema::migrate(&pool, &settings.schema).await?;
        let sql = Sql::new(&settings.schema);
        {
            let client = pool.get().await?;
            let epoch =
                record::encode_value(Uuid::now_v7().as_bytes()).map_err(|e| Error::Settings {
                    reason: format!("cannot encode the store epoch: {e}"),
                })?;
            client
                .execute(
                    &sql.insert_epoch,
                    &[&STORE_NAMESPACE, &STORE_EPOCH_KEY, &epoch],
                )
                .await
                .map_err(|e| Error::db("recording the store epoch", e))?;
        }
        Ok(Self::start(pool, sql, settings, false))
    }

    /// Connects to an existing store for reading only, as `courier
    /// inspect` does: nothing is created, migrated or recorded, and every
    /// write through the handle fails with [`Error::ReadOnly`].
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the database cannot be reached,
    /// [`Error::NoSchema`] if the schema is missing or at another version
    /// than this crate's (open it once with [`open`](Self::open) from a
    /// service of this version), [`Error::Database`].
    pub async fn open_read_only(settings: PostgresSettings) -> crate::Result<Self> {
        let pool = Self::pool(&settings)?;
        schema::check(&pool, &settings.schema).await?;
        let sql = Sql::new(&settings.schema);
        Ok(Self::start(pool, sql, settings, true))
    }

    fn pool(settings: &PostgresSettings) -> crate::Result<Pool> {
        let mut config = settings.config.clone();
        let timeout_ms = settings.statement_timeout.as_millis();
        config.options(format!("-c statement_timeout={timeout_ms}"));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.statement_timeout))
            .create_timeout(Some(settings.statement_timeout))
            .build()
            .map_err(|e| Error::Settings {
                reason: format!("cannot build the connection pool: {e}"),
            })
    }

    fn start(pool: Pool, sql: Sql, settings: PostgresSettings, read_only: bool) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pool,
            stats: Counters::default(),
            sql,
            metrics: StoreMetrics::new("postgres"),
            settings,
            read_only,
        });
        let writer = Writer::new(Arc::clone(&shared), receiver);
        tokio::spawn(writer.run());
        Self { shared, requests }
    }

    /// Refuses a write through a read-only handle.
    fn writable(&self) -> PResult<()> {
        if self.shared.read_only {
            return Err(Error::ReadOnly {
                schema: self.shared.settings.schema.clone(),
            }
            .into());
        }
        Ok(())
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The settings the store was opened with.
    pub fn settings(&self) -> &PostgresSettings {
        &self.shared.settings
    }

    /// How many writes and group transactions the writer has committed.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            writes: self.shared.stats.writes.load(Ordering::Relaxed),
            groups: self.shared.stats.groups.load(Ordering::Relaxed),
        }
    }

    async fn client(&self) -> PResult<deadpool_postgres::Object> {
        Ok(self.shared.pool.get().await.map_err(Error::from)?)
    }
}

impl Shared {
    pub(crate) fn max_group(&self) -> usize {
        self.settings.max_group
    }

    pub(crate) fn resolve_timeout(&self) -> std::time::Duration {
        self.settings.statement_timeout
    }
}

#[async_trait]
impl Journal for PostgresStore {
    /// Writes `batch` in the next group transaction. `Ok` means it
    /// committed.
    ///
    /// # Errors
    ///
    /// As the trait says, and (inside
    /// [`Storage`](courier_persistence::Error::Storage), see [`Error::find`]):
    /// [`Error::Unavailable`] / [`Error::Database`] when nothing was
    /// committed (the write may be retried), [`Error::OutcomeUnknown`] when
    /// the connection was lost during `COMMIT` and the store could not find
    /// out afterwards whether it happened.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not withdraw the write: it commits or fails
    /// with its group, unobserved.
    async fn write(&self, batch: WriteBatch) -> PResult<()> {
        self.writable()?;
        if batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Pending { batch, done })
            .map_err(|_| courier_persistence::Error::Closed)?;
        answer
            .await
            .map_err(|_| courier_persistence::Error::Closed)??;
        self.shared.metrics.write(started.elapsed());
        Ok(())
    }

    /// The address of what every handle of this store shares.
    fn store_identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.shared).cast::<()>() as usize)
    }

    async fn read_events(
        &self,
        persistence_id: &str,
        from: SeqNr,
        to: SeqNr,
        limit: usize,
    ) -> PResult<Vec<EventRecord>> {
        check_id("persistence id", persistence_id)?;
        if limit == 0 || from > to {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&self.shared.sql.read_events)
            .await
            .map_err(db("preparing a replay"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &stmt,
                &[&persistence_id, &capped(from), &capped(to), &limit],
            )
            .await
            .map_err(db("reading events"))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(db("reading events"))?;
                let seq = unsigned(seq, persistence_id, "sequence number")?;
                let bytes: &[u8] = row.try_get(1).map_err(db("reading events"))?;
                record::decode_event(bytes, persistence_id, seq)
            })
            .collect()
    }

    async fn highest_seq_nr(&self, persistence_id: &str) -> PResult<SeqNr> {
        Ok(self.meta(persistence_id).await?.0)
    }

    async fn deleted_to(&self, persistence_id: &str) -> PResult<SeqNr> {
        Ok(self.meta(persistence_id).await?.1)
    }

    /// Deletes in one transaction; `Ok` means it committed.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write). A deletion is idempotent: after any error
    /// it may simply be repeated.
    async fn delete_events_to(&self, persistence_id: &str, to: SeqNr) -> PResult<()> {
        self.writable()?;
        check_id("persistence id", persistence_id)?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(db("starting a deletion"))?;
        let Some(row) = tx
            .query_opt(&self.shared.sql.lock_journal, &[&persistence_id])
            .await
            .map_err(db("locking a journal"))?
        else {
            return Ok(());
        };
        let highest: i64 = row.try_get(0).map_err(db("locking a journal"))?;
        let deleted: i64 = row.try_get(1).map_err(db("locking a journal"))?;
        let to = capped(to).min(highest);
        if to <= deleted {
            return Ok(());
        }
        tx.execute(&self.shared.sql.delete_events, &[&persistence_id, &to])
            .await
            .map_err(db("deleting events"))?;
        tx.execute(&self.shared.sql.set_deleted_to, &[&persistence_id, &to])
            .await
            .map_err(db("recording a deletion"))?;
        tx.commit().await.map_err(|e| match e.as_db_error() {
            Some(_) => Error::db("committing a deletion", e).into(),
            None => courier_persistence::Error::from(Error::OutcomeUnknown {
                commit: None,
                reason: format!("the connection was lost while committing a deletion: {e}"),
            }),
        })
    }

    async fn kv_get(&self, namespace: &str, key: &[u8]) -> PResult<Option<Vec<u8>>> {
        check_id("namespace", namespace)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&self.shared.sql.kv_get)
            .await
            .map_err(db("preparing a record read"))?;
        let row = client
            .query_opt(&stmt, &[&namespace, &key])
            .await
            .map_err(db("reading a record"))?;
        row.map(|row| {
            let bytes: &[u8] = row.try_get(0).map_err(db("reading a record"))?;
            record::decode_value(namespace, key, bytes)
        })
        .transpose()
    }

    async fn kv_scan(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> PResult<Vec<(Vec<u8>, Vec<u8>)>> {
        check_id("namespace", namespace)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = match after {
            None => {
                let stmt = client
                    .prepare_cached(&self.shared.sql.kv_scan_from_start)
                    .await
                    .map_err(db("preparing a record scan"))?;
                client.query(&stmt, &[&namespace, &limit]).await
            }
            Some(after) => {
                let stmt = client
                    .prepare_cached(&self.shared.sql.kv_scan_after)
                    .await
                    .map_err(db("preparing a record scan"))?;
                client.query(&stmt, &[&namespace, &after, &limit]).await
            }
        }
        .map_err(db("scanning records"))?;
        rows.iter()
            .map(|row| {
                let key: Vec<u8> = row.try_get(0).map_err(db("scanning records"))?;
                let bytes: &[u8] = row.try_get(1).map_err(db("scanning records"))?;
                let value = record::decode_value(namespace, &key, bytes)?;
                Ok((key, value))
            })
            .collect()
    }
}

impl PostgresStore {
    /// (highest, deleted_to) of a journal, (0, 0) if it has none.
    async fn meta(&self, persistence_id: &str) -> PResult<(SeqNr, SeqNr)> {
        check_id("persistence id", persistence_id)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&self.shared.sql.journal_meta)
            .await
            .map_err(db("preparing a journal read"))?;
        let Some(row) = client
            .query_opt(&stmt, &[&persistence_id])
            .await
            .map_err(db("reading a journal"))?
        else {
            return Ok((0, 0));
        };
        let highest: i64 = row.try_get(0).map_err(db("reading a journal"))?;
        let deleted: i64 = row.try_get(1).map_err(db("reading a journal"))?;
        Ok((
            unsigned(highest, persistence_id, "highest sequence number")?,
            unsigned(deleted, persistence_id, "deleted-to sequence number")?,
        ))
    }
}

#[async_trait]
impl SnapshotStore for PostgresStore {
    /// Saves in its own transaction; `Ok` means it committed. Saving is
    /// idempotent: after any error it may be repeated.
    ///
    /// # Errors
    ///
    /// As the trait says, and this crate's errors (see [`Error::find`]).
    async fn save_snapshot(&self, snapshot: Snapshot) -> PResult<()> {
        self.writable()?;
        let pid = &snapshot.metadata.persistence_id;
        check_id("persistence id", pid)?;
        let seq = storable("snapshot sequence number", snapshot.metadata.seq_nr)?;
        let taken = storable("snapshot timestamp", snapshot.metadata.timestamp)?;
        let bytes = record::encode_snapshot(&snapshot)?;
        let client = self.client().await?;
        client
            .execute(&self.shared.sql.save_snapshot, &[pid, &seq, &taken, &bytes])
            .await
            .map_err(db("saving a snapshot"))?;
        Ok(())
    }

    async fn load_snapshot(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> PResult<Option<Snapshot>> {
        check_id("persistence id", persistence_id)?;
        let client = self.client().await?;
        let row = client
            .query_opt(
                &self.shared.sql.load_snapshot,
                &[
                    &persistence_id,
                    &capped(criteria.min_seq_nr),
                    &capped(criteria.max_seq_nr),
                    &capped(criteria.min_timestamp),
                    &capped(criteria.max_timestamp),
                ],
            )
            .await
            .map_err(db("loading a snapshot"))?;
        row.map(|row| {
            let seq: i64 = row.try_get(0).map_err(db("loading a snapshot"))?;
            let seq = unsigned(seq, persistence_id, "snapshot sequence number")?;
            let bytes: &[u8] = row.try_get(1).map_err(db("loading a snapshot"))?;
            record::decode_snapshot(bytes, persistence_id, seq)
        })
        .transpose()
    }

    async fn delete_snapshot(&self, persistence_id: &str, seq_nr: SeqNr) -> PResult<()> {
        self.writable()?;
        check_id("persistence id", persistence_id)?;
        let client = self.client().await?;
        client
            .execute(
                &self.shared.sql.delete_snapshot,
                &[&persistence_id, &capped(seq_nr)],
            )
            .await
            .map_err(db("deleting a snapshot"))?;
        Ok(())
    }

    async fn delete_snapshots(
        &self,
        persistence_id: &str,
        criteria: SnapshotCriteria,
    ) -> PResult<()> {
        self.writable()?;
        check_id("persistence id", persistence_id)?;
        let client = self.client().await?;
        client
            .execute(
                &self.shared.sql.delete_snapshots,
                &[
                    &persistence_id,
                    &capped(criteria.min_seq_nr),
                    &capped(criteria.max_seq_nr),
                    &capped(criteria.min_timestamp),
                    &capped(criteria.max_timestamp),
                ],
            )
            .await
            .map_err(db("deleting snapshots"))?;
        Ok(())
    }
}
