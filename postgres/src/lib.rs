//! courier-postgres: a [`Journal`](courier_persistence::Journal) and
//! [`SnapshotStore`](courier_persistence::SnapshotStore) on PostgreSQL, so
//! that several nodes share one journal and one node can take over the
//! actors of another that died.
//!
//! - [`PostgresStore`] has the embedded store's semantics: a
//!   [`WriteBatch`](courier_persistence::WriteBatch) (events of any number
//!   of persistence ids plus key–value records: outbox, inbox) is one
//!   transaction; the highest sequence number never goes down (it is a
//!   column, kept when events are deleted); replay is paged with `LIMIT`;
//!   every record is framed with a CRC32 exactly as the embedded store
//!   frames it, and a damaged one is a typed
//!   [`Corrupt`](courier_persistence::Error::Corrupt) /
//!   [`CorruptKv`](courier_persistence::Error::CorruptKv) error.
//! - Group commit: one writer task takes every write waiting and commits
//!   them in one transaction; `Ok` means that transaction committed (with
//!   PostgreSQL's default `synchronous_commit = on`, its WAL was flushed).
//! - One writer per persistence id: the journal rows of a group are locked
//!   (`SELECT … FOR UPDATE`) and each write must continue the journal, so
//!   a second node writing the same id gets
//!   [`SequenceConflict`](courier_persistence::Error::SequenceConflict) and
//!   nothing of its write is stored; the primary key on
//!   `(persistence_id, seq_nr)` backs that up.
//! - A connection lost during `COMMIT` is resolved through the group's
//!   marker row (see [`Error::OutcomeUnknown`] for the rare case it cannot
//!   be).
//! - The schema is created and migrated by [`PostgresStore::open`]
//!   (versioned, see `docs/persistence.md`);
//!   [`PostgresStore::open_read_only`] writes nothing (for tools), and
//!   [`PostgresStore::verify`] checks every record as `courier verify`
//!   does.
//!
//! ```no_run
//! use courier::persistence::postgres::{PostgresSettings, PostgresStore};
//! use courier::persistence::{Journal, WriteBatch};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = PostgresSettings::new("postgres://courier@127.0.0.1:5432/courier")?;
//! let store = PostgresStore::open(settings).await?;
//! store.write(WriteBatch::new().put("settings", "mode", "fast")).await?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod record;
mod schema;
mod settings;
mod sql;
mod store;
mod verify;
mod writer;

pub use error::{Error, Result};
pub use schema::SCHEMA_VERSION;
pub use settings::{
    DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, DEFAULT_STATEMENT_TIMEOUT, Password, PostgresSettings,
};
pub use store::{PostgresStore, WriterStats};
