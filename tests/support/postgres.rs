//! The PostgreSQL server of the `postgres_*` scenarios:
//! `COURIER_POSTGRES_URL` (and `COURIER_POSTGRES_PASSWORD`), as
//! `scripts/postgres.sh` exports them. Under `CI=true` a missing URL is a
//! failure; otherwise the scenario is skipped with a notice. Each scenario
//! works in a schema of its own.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{Deliverer, OutboxSettings, Redelivery};
use courier::persistence::postgres::{Password, PostgresSettings, PostgresStore};
use courier::persistence::{Effect, EventSourced, Journal, PersistentContext, Snapshots};
use courier::prelude::*;

/// The test database's URL, or `None` (with a notice) outside CI.
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

/// A schema name no other scenario uses.
pub fn new_schema() -> String {
    format!("t_{}", uuid::Uuid::now_v7().simple())
}

/// Settings for `schema` of the test database.
pub fn settings(schema: &str) -> PostgresSettings {
    let url = url().expect("COURIER_POSTGRES_URL");
    let mut settings = PostgresSettings::new(&url)
        .expect("COURIER_POSTGRES_URL")
        .with_schema(schema)
        .expect("schema")
        .with_pool_size(4)
        .expect("pool size");
    if let Ok(password) = Password::from_env("COURIER_POSTGRES_PASSWORD") {
        settings = settings.with_password(password);
    }
    settings
}

/// The store of `schema`.
pub async fn open(schema: &str) -> Arc<PostgresStore> {
    Arc::new(
        PostgresStore::open(settings(schema))
            .await
            .expect("open the postgres store"),
    )
}

/// The sender: each order is an event, committed with its outbox entry in
/// one write.
pub struct Desk {
    pub journal: Arc<dyn Journal>,
    pub placed: u64,
    pub out: Option<Deliverer<u64>>,
}

pub enum DeskCmd {
    PlaceNext(ReplyTo<u64>),
    Unconfirmed(ReplyTo<usize>),
}

impl Desk {
    pub fn new(journal: Arc<dyn Journal>) -> Self {
        Self {
            journal,
            placed: 0,
            out: None,
        }
    }
}

impl EventSourced for Desk {
    type Command = DeskCmd;
    type Event = u64;

    async fn handle_command(
        &mut self,
        cmd: DeskCmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        let out = self.out.as_ref().ok_or("not recovered")?;
        Ok(match cmd {
            DeskCmd::PlaceNext(reply) => {
                let order = self.placed + 1;
                let prepared = out.prepare("/user/ledger", |_| order)?;
                Effect::persist(order)
                    .with_writes(prepared.writes())
                    .then(move |_: &Self, _| {
                        prepared.send();
                    })
                    .reply(reply, |s: &Self| s.placed)
            }
            DeskCmd::Unconfirmed(reply) => {
                reply.reply(out.unconfirmed());
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, order: u64) {
        self.placed = order;
    }

    async fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(100),
            },
            ..OutboxSettings::default()
        };
        self.out = Some(Deliverer::start(ctx, "desk", Arc::clone(&self.journal), settings).await?);
        Ok(())
    }
}

impl Snapshots for Desk {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.placed
    }

    fn apply_snapshot(&mut self, placed: u64) {
        self.placed = placed;
    }
}
