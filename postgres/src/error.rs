//! Errors of the PostgreSQL backend.
//!
//! The [`Journal`](courier_persistence::Journal) and
//! [`SnapshotStore`](courier_persistence::SnapshotStore) traits return the
//! persistence layer's error; failures particular to a networked database
//! travel inside it as [`courier_persistence::Error::Storage`] holding an
//! [`Error`] of this crate, which [`Error::find`] digs out again.

use uuid::Uuid;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with the PostgreSQL backend.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings are not usable (a malformed URL, a bad schema name, a
    /// zero pool size, …).
    #[error("invalid postgres settings: {reason}")]
    Settings {
        /// What is wrong.
        reason: String,
    },
    /// The password file could not be read.
    #[error("cannot read the postgres password file {path}")]
    PasswordFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable that should hold the password is not set
    /// (or not Unicode).
    #[error("the postgres password variable {name} is not set")]
    PasswordEnv {
        /// The variable.
        name: String,
    },
    /// No connection to the database could be had: nothing was written.
    #[error("cannot reach postgres")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database refused a statement: nothing of the write was
    /// committed.
    #[error("postgres refused {what}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The database's error (with its SQLSTATE).
        #[source]
        source: tokio_postgres::Error,
    },
    /// The group commit this write was part of failed before or while it
    /// was sent: nothing of the group was committed, and the write may be
    /// retried.
    #[error("the group commit failed, nothing of it was committed: {reason}")]
    GroupFailed {
        /// What failed, with its causes.
        reason: String,
    },
    /// The schema in the database was written by a newer courier-postgres.
    #[error(
        "the courier schema {schema} is at version {found}, newer than this courier-postgres \
         knows ({supported}): upgrade courier before using this database"
    )]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The version found.
        found: i64,
        /// The newest version this crate knows.
        supported: i64,
    },
    /// A write through a store opened with
    /// [`PostgresStore::open_read_only`](crate::PostgresStore::open_read_only).
    #[error("the store (schema {schema}) was opened read-only: nothing was written")]
    ReadOnly {
        /// The schema.
        schema: String,
    },
    /// A read-only open found no courier schema of this version.
    #[error(
        "{reason} in schema {schema}: a courier service of this version creates or migrates it when it opens the store"
    )]
    NoSchema {
        /// The schema.
        schema: String,
        /// What was found instead.
        reason: String,
    },
    /// The connection was lost while the database was committing, and the
    /// store could not find out afterwards (within the resolve timeout)
    /// whether the commit happened. The write may or may not be durable: the
    /// writer must recover its state from the journal before deciding to
    /// write again (see the crate documentation).
    #[error(
        "the outcome of commit {} is unknown: {reason}; recover from the journal before \
         writing again",
        commit.map(|c| c.to_string()).unwrap_or_else(|| "(unnumbered)".into())
    )]
    OutcomeUnknown {
        /// The commit's id in the `commits` table, for group writes.
        commit: Option<Uuid>,
        /// What happened.
        reason: String,
    },
}

impl Error {
    /// This crate's error inside a persistence error, if that is what it
    /// holds.
    pub fn find(error: &courier_persistence::Error) -> Option<&Error> {
        match error {
            courier_persistence::Error::Storage(source) => source.downcast_ref::<Error>(),
            _ => None,
        }
    }

    /// Whether `error` says a write's outcome is unknown
    /// ([`Error::OutcomeUnknown`]).
    pub fn is_outcome_unknown(error: &courier_persistence::Error) -> bool {
        matches!(Self::find(error), Some(Error::OutcomeUnknown { .. }))
    }

    pub(crate) fn db(what: &'static str, source: tokio_postgres::Error) -> Self {
        if source.as_db_error().is_none() {
            // No answer from the server: the connection is gone.
            Self::Unavailable(Box::new(source))
        } else {
            Self::Database { what, source }
        }
    }
}

impl From<Error> for courier_persistence::Error {
    fn from(e: Error) -> Self {
        Self::Storage(Box::new(e))
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(Box::new(e))
    }
}
