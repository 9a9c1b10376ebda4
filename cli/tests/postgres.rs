//! The reading commands on a PostgreSQL store (`postgres://…#schema`),
//! against a real server: `COURIER_POSTGRES_URL` (and
//! `COURIER_POSTGRES_PASSWORD`), as `scripts/postgres.sh` exports them.
//! Under `CI=true` a missing URL fails the test; elsewhere it is skipped.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{Deliverer, OutboxSettings, Redelivery};
use courier::persistence::postgres::{Password, PostgresSettings, PostgresStore};
use courier::persistence::{EventRecord, Journal, Manifest, WriteBatch};
use courier::prelude::*;
use serde_json::Value;

fn url() -> Option<String> {
    match std::env::var("COURIER_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but COURIER_POSTGRES_URL is not set: .ci/run starts a server with scripts/postgres.sh"
            );
            eprintln!("skipped: COURIER_POSTGRES_URL is not set");
            None
        }
    }
}

/// Delivers to `/user/nobody`: parked after `max_attempts`, else pending.
struct Desk {
    name: &'static str,
    journal: Arc<dyn Journal>,
    max_attempts: Option<u32>,
    out: Option<Deliverer<u64>>,
}

enum DeskCmd {
    Send(u64, ReplyTo<()>),
    Unconfirmed(ReplyTo<usize>),
}

impl Actor for Desk {
    type Msg = DeskCmd;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(20),
            },
            max_attempts: self.max_attempts,
            ..OutboxSettings::default()
        };
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, self.name, journal, settings).await?);
        Ok(())
    }

    async fn handle(&mut self, msg: DeskCmd, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let out = self.out.as_ref().ok_or("not started")?;
        match msg {
            DeskCmd::Send(n, done) => {
                out.deliver("/user/nobody", |_| n).await?;
                done.reply(());
            }
            DeskCmd::Unconfirmed(reply) => reply.reply(out.unconfirmed()),
        }
        Ok(())
    }
}

fn courier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .output()
        .expect("run courier")
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        courier(&args)
    })
    .await
    .expect("join")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn spawn(
    system: &ActorSystem,
    name: &'static str,
    journal: &Arc<dyn Journal>,
    max_attempts: Option<u32>,
) -> ActorRef<DeskCmd> {
    let journal = Arc::clone(journal);
    system
        .spawn(
            Props::new(move || Desk {
                name,
                journal: Arc::clone(&journal),
                max_attempts,
                out: None,
            })
            .with_name(name),
        )
        .expect("spawn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reading_commands_read_a_postgres_store_and_repairs_are_refused() {
    let Some(url) = url() else { return };
    let schema = format!("cli_{}", uuid::Uuid::now_v7().simple());
    let mut settings = PostgresSettings::new(&url)
        .expect("url")
        .with_schema(schema.clone())
        .expect("schema");
    if let Ok(password) = Password::from_env("COURIER_POSTGRES_PASSWORD") {
        settings = settings.with_password(password);
    }
    let store = PostgresStore::open(settings).await.expect("open");
    let journal: Arc<dyn Journal> = Arc::new(store.clone());
    let events = (1..=3).map(|seq| EventRecord {
        persistence_id: "orders".into(),
        seq_nr: seq,
        manifest: Manifest::new("shop.OrderPlaced", 1),
        payload: vec![seq as u8; 4],
        writer_id: uuid::Uuid::nil(),
        timestamp: courier::persistence::now_millis(),
    });
    journal
        .write(WriteBatch::new().events(events))
        .await
        .expect("write");
    let system = ActorSystem::new("pg");
    let parking = spawn(&system, "desk", &journal, Some(1));
    let pending = spawn(&system, "till", &journal, None);
    for n in [10, 20] {
        parking
            .ask(|r| DeskCmd::Send(n, r), Duration::from_secs(5))
            .await
            .expect("send");
    }
    pending
        .ask(|r| DeskCmd::Send(30, r), Duration::from_secs(5))
        .await
        .expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while parking
        .ask(DeskCmd::Unconfirmed, Duration::from_secs(5))
        .await
        .expect("ask")
        > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "never parked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    system.shutdown().await;

    let target = format!("{url}#{schema}");
    let inspected = json(&run(vec!["inspect".into(), target.clone(), "--json".into()]).await);
    let senders = inspected["senders"].as_array().expect("senders");
    let desk = senders.iter().find(|s| s["name"] == "desk").expect("desk");
    assert_eq!(desk["parked"], 2);
    let till = senders.iter().find(|s| s["name"] == "till").expect("till");
    assert_eq!(till["pending"], 1);
    let journals = inspected["journals"].as_array().expect("journals listed");
    let orders = journals
        .iter()
        .find(|j| j["persistence_id"] == "orders")
        .expect("orders");
    assert_eq!(orders["highest"], 3, "{orders}");
    assert_eq!(inspected["problems"], 0);

    let parked = json(
        &run(vec![
            "parked".into(),
            "list".into(),
            target.clone(),
            "--json".into(),
        ])
        .await,
    );
    assert_eq!(parked.as_array().map(Vec::len), Some(2), "{parked}");
    let pend = json(
        &run(vec![
            "pending".into(),
            target.clone(),
            "--sender".into(),
            "till".into(),
            "--json".into(),
        ])
        .await,
    );
    assert_eq!(pend[0]["destination"], "/user/nobody");
    let events = json(
        &run(vec![
            "events".into(),
            target.clone(),
            "orders".into(),
            "--json".into(),
        ])
        .await,
    );
    assert_eq!(events.as_array().map(Vec::len), Some(3));
    assert_eq!(events[2]["manifest"], "shop.OrderPlaced/1");
    let top = run(vec![
        "top".into(),
        target.clone(),
        "--iterations".into(),
        "1".into(),
    ])
    .await;
    assert!(top.status.success());
    assert!(String::from_utf8_lossy(&top.stdout).contains("  desk "));

    // Shared store: no offline repair (said, not pretended); verify reads
    // every row.
    let id = parked[0]["id"].as_u64().expect("id").to_string();
    let out = run(vec![
        "parked".into(),
        "requeue".into(),
        target.clone(),
        "--sender".into(),
        "desk".into(),
        id,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node"));
    let out = run(vec!["verify".into(), target.clone(), "--json".into()]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified = json(&out);
    assert_eq!(verified["clean"], true, "{verified}");
    assert_eq!(verified["journals"], 1, "{verified}");
    let parked_after = inspect_parked(&journal).await;
    assert_eq!(parked_after, 2, "a refused repair changed nothing");

    // Reading never writes: a schema that is not there is refused, and
    // is still not there afterwards.
    let missing = format!("{url}#cli_missing_{}", uuid::Uuid::now_v7().simple());
    for _ in 0..2 {
        let out = run(vec!["inspect".into(), missing.clone()]).await;
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no courier store"), "{stderr}");
    }
}

async fn inspect_parked(journal: &Arc<dyn Journal>) -> usize {
    courier::delivery::inspect::parked(journal, "desk")
        .await
        .expect("parked")
        .len()
}
