//! The tables, created and migrated by the store when it opens.
//!
//! Every table lives in the configured schema (default `courier`). The
//! table `courier_schema` lists the migrations applied, one row per
//! version; a store applies the missing ones in order, each in its own
//! transaction together with its row, and refuses a database whose
//! version is newer than it knows ([`Error::SchemaTooNew`]). Two nodes
//! opening a new database at once are fine: the version row's primary key
//! lets one migration win, and the loser reads the version again.
//!
//! Version 1:
//!
//! | table | primary key | columns |
//! | --- | --- | --- |
//! | `journal` | `persistence_id` | `highest`, `deleted_to` (never go down) |
//! | `events` | `persistence_id, seq_nr` | `record` (framed, CRC'd) |
//! | `snapshots` | `persistence_id, seq_nr` | `taken_at`, `record` |
//! | `kv` | `namespace, key` | `value` (framed, CRC'd) |
//! | `commits` | `id` (UUID) | `committed_at`: the marker of a group commit, read back when the connection was lost during `COMMIT` |

use deadpool_postgres::Pool;

use crate::error::{Error, Result};

/// The newest schema version this crate knows.
pub const SCHEMA_VERSION: i64 = 1;

/// The statements of each version, `{s}` standing for the schema.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "journal, events, snapshots, key-value records, commit markers",
    "CREATE TABLE IF NOT EXISTS {s}.journal (
        persistence_id TEXT PRIMARY KEY,
        highest BIGINT NOT NULL,
        deleted_to BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS {s}.events (
        persistence_id TEXT NOT NULL,
        seq_nr BIGINT NOT NULL,
        record BYTEA NOT NULL,
        PRIMARY KEY (persistence_id, seq_nr)
    );
    CREATE TABLE IF NOT EXISTS {s}.snapshots (
        persistence_id TEXT NOT NULL,
        seq_nr BIGINT NOT NULL,
        taken_at BIGINT NOT NULL,
        record BYTEA NOT NULL,
        PRIMARY KEY (persistence_id, seq_nr)
    );
    CREATE TABLE IF NOT EXISTS {s}.kv (
        namespace TEXT NOT NULL,
        key BYTEA NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (namespace, key)
    );
    CREATE TABLE IF NOT EXISTS {s}.commits (
        id UUID PRIMARY KEY,
        committed_at BIGINT NOT NULL
    );",
)];

/// How many times a racing migration is retried.
const ATTEMPTS: usize = 5;

/// Creates the schema and applies every missing migration.
pub(crate) async fn migrate(pool: &Pool, schema: &str) -> Result<()> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match migrate_once(pool, schema).await {
            Ok(()) => return Ok(()),
            // Another node created the same objects at the same moment.
            Err(e @ Error::Database { .. }) => {
                tracing::debug!(error = %e, "schema migration raced, reading the version again");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(Error::Settings {
        reason: "schema migration did not converge".into(),
    }))
}

/// Checks, without writing, that `schema` holds a courier schema of
/// exactly this crate's version.
pub(crate) async fn check(pool: &Pool, schema: &str) -> Result<()> {
    let client = pool.get().await?;
    let exists = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{schema}.courier_schema")],
        )
        .await
        .map_err(|e| Error::db("looking for the schema", e))?;
    let exists: bool = exists
        .try_get(0)
        .map_err(|e| Error::db("looking for the schema", e))?;
    if !exists {
        return Err(Error::NoSchema {
            schema: schema.to_owned(),
            reason: "no courier store".into(),
        });
    }
    let found = version(&client, schema).await?;
    match found {
        SCHEMA_VERSION => Ok(()),
        found if found > SCHEMA_VERSION => Err(Error::SchemaTooNew {
            schema: schema.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        found => Err(Error::NoSchema {
            schema: schema.to_owned(),
            reason: format!("a courier store at version {found}, older than {SCHEMA_VERSION}"),
        }),
    }
}

/// The newest migration recorded in `schema` (0 for none).
async fn version(client: &tokio_postgres::Client, schema: &str) -> Result<i64> {
    let row = client
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {schema}.courier_schema"),
            &[],
        )
        .await
        .map_err(|e| Error::db("reading the schema version", e))?;
    row.try_get(0)
        .map_err(|e| Error::db("reading the schema version", e))
}

async fn migrate_once(pool: &Pool, schema: &str) -> Result<()> {
    let mut client = pool.get().await?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.courier_schema (
                 version BIGINT PRIMARY KEY,
                 description TEXT NOT NULL,
                 applied_at BIGINT NOT NULL
             );"
        ))
        .await
        .map_err(|e| Error::db("creating the schema", e))?;
    let found = version(&client, schema).await?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            schema: schema.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, description, statements) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        let tx = client
            .transaction()
            .await
            .map_err(|e| Error::db("starting a migration", e))?;
        tx.batch_execute(&statements.replace("{s}", schema))
            .await
            .map_err(|e| Error::db("migrating the schema", e))?;
        let now = i64::try_from(courier_persistence::now_millis()).unwrap_or(i64::MAX);
        tx.execute(
            &format!(
                "INSERT INTO {schema}.courier_schema (version, description, applied_at) \
                 VALUES ($1, $2, $3)"
            ),
            &[version, description, &now],
        )
        .await
        .map_err(|e| Error::db("recording the schema version", e))?;
        tx.commit()
            .await
            .map_err(|e| Error::db("committing a migration", e))?;
        tracing::info!(schema, version, "courier schema migrated");
    }
    Ok(())
}
