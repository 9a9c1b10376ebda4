//! The database the tests run against: `COURIER_POSTGRES_URL` (and
//! `COURIER_POSTGRES_PASSWORD`), as `scripts/postgres.sh` exports them.
//! Each store gets a schema of its own, so tests never see each other.
#![allow(dead_code)]

use courier_persistence::tck::Fixture;
use courier_persistence::{Journal, SnapshotStore};
use courier_postgres::{Password, PostgresSettings, PostgresStore};

/// The URL of the test database. Under `CI=true` a missing one is a
/// failure; otherwise the test is skipped with a notice.
pub fn url() -> Option<String> {
    match std::env::var("COURIER_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but COURIER_POSTGRES_URL is not set: .ci/run starts a server with \
                 scripts/postgres.sh"
            );
            eprintln!(
                "skipped: COURIER_POSTGRES_URL is not set (run the tests under \
                 `scripts/postgres.sh run cargo test ...`)"
            );
            None
        }
    }
}

/// Settings for a new, empty schema of the test database.
pub fn settings() -> Option<PostgresSettings> {
    let url = url()?;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut settings = PostgresSettings::new(&url)
        .expect("COURIER_POSTGRES_URL")
        .with_schema(schema)
        .expect("schema")
        .with_pool_size(2)
        .expect("pool size");
    if let Ok(password) = Password::from_env("COURIER_POSTGRES_PASSWORD") {
        settings = settings.with_password(password);
    }
    Some(settings)
}

/// A store on a new, empty schema.
pub async fn store() -> Option<Pg> {
    let settings = settings()?;
    Some(Pg(PostgresStore::open(settings)
        .await
        .expect("open the store")))
}

/// The store as a TCK fixture.
pub struct Pg(pub PostgresStore);

impl Fixture for Pg {
    fn journal(&self) -> &dyn Journal {
        &self.0
    }
    fn snapshots(&self) -> &dyn SnapshotStore {
        &self.0
    }
}

/// A plain client of the test database, for tests that reach behind the
/// store (damaging rows, killing connections).
pub async fn client() -> tokio_postgres::Client {
    let url = url().expect("COURIER_POSTGRES_URL");
    let mut config: tokio_postgres::Config = url.parse().expect("url");
    if let Ok(password) = std::env::var("COURIER_POSTGRES_PASSWORD") {
        config.password(password);
    }
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// Event `seq` of `pid`, written by `writer`.
pub fn event(pid: &str, seq: u64, writer: uuid::Uuid) -> courier_persistence::EventRecord {
    courier_persistence::EventRecord {
        persistence_id: pid.to_owned(),
        seq_nr: seq,
        manifest: courier_persistence::Manifest::new("test.Event", 1),
        payload: format!("{pid}-{seq}").into_bytes(),
        writer_id: writer,
        timestamp: seq,
    }
}
