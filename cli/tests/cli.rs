//! The `courier` tool on real sled stores: one made through the library
//! (events, a confirmed stream into an inbox, pending and parked
//! deliveries), then read, repaired, corrupted on purpose and verified.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use courier::delivery::{DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery};
use courier::persistence::{
    DurableStore, EngineKind, EventRecord, Journal, Manifest, SledStore, StoreOptions, WriteBatch,
};
use courier::prelude::*;
use serde_json::Value;

/// Delivers `(destination, n)` on command.
struct Desk {
    name: &'static str,
    journal: Arc<dyn Journal>,
    max_attempts: Option<u32>,
    out: Option<Deliverer<u64>>,
}

enum DeskCmd {
    Send(&'static str, u64, ReplyTo<()>),
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
            DeskCmd::Send(to, n, done) => {
                out.deliver(to, |_| n).await?;
                done.reply(());
            }
            DeskCmd::Unconfirmed(reply) => reply.reply(out.unconfirmed()),
        }
        Ok(())
    }
}

/// Applies each delivery once.
struct Warehouse {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
}

impl Actor for Warehouse {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "warehouse").await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        match inbox.check(&d) {
            Receipt::Duplicate => d.send_ack(),
            Receipt::New => inbox.commit(&d).await?,
        }
        Ok(())
    }
}

fn desk(
    system: &ActorSystem,
    name: &'static str,
    journal: &Arc<dyn Journal>,
    max: Option<u32>,
) -> ActorRef<DeskCmd> {
    let journal = Arc::clone(journal);
    system
        .spawn(
            Props::new(move || Desk {
                name,
                journal: Arc::clone(&journal),
                max_attempts: max,
                out: None,
            })
            .with_name(name),
        )
        .expect("spawn")
}

async fn settle(desk: &ActorRef<DeskCmd>, left: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = desk
            .ask(DeskCmd::Unconfirmed, Duration::from_secs(5))
            .await
            .expect("ask");
        if n == left {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{n} unconfirmed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A store with journal "orders" (5 events), sender "till" (3 confirmed
/// into the warehouse's inbox, 1 pending) and sender "desk" (2 parked).
async fn make_store(dir: &Path) {
    make_store_on(EngineKind::Sled, dir).await;
}

async fn make_store_on(kind: EngineKind, dir: &Path) {
    let store = DurableStore::open_engine(kind, dir, None, StoreOptions::new()).expect("open");
    let journal: Arc<dyn Journal> = Arc::new(store.clone());
    let events = (1..=5).map(|seq| EventRecord {
        persistence_id: "orders".into(),
        seq_nr: seq,
        manifest: Manifest::new("shop.OrderPlaced", 1),
        payload: vec![seq as u8; 8],
        writer_id: uuid::Uuid::nil(),
        timestamp: courier::persistence::now_millis(),
    });
    journal
        .write(WriteBatch::new().events(events))
        .await
        .expect("write");

    let system = ActorSystem::new("maker");
    let j = Arc::clone(&journal);
    system
        .spawn(
            Props::new(move || Warehouse {
                journal: Arc::clone(&j),
                inbox: None,
            })
            .with_name("warehouse"),
        )
        .expect("spawn");
    let till = desk(&system, "till", &journal, None);
    for n in 1..=3 {
        till.ask(
            |r| DeskCmd::Send("/user/warehouse", n, r),
            Duration::from_secs(5),
        )
        .await
        .expect("send");
    }
    settle(&till, 0).await;
    till.ask(
        |r| DeskCmd::Send("/user/nobody", 4, r),
        Duration::from_secs(5),
    )
    .await
    .expect("send");
    let parking = desk(&system, "desk", &journal, Some(1));
    for n in [10, 20] {
        parking
            .ask(
                |r| DeskCmd::Send("/user/nobody", n, r),
                Duration::from_secs(5),
            )
            .await
            .expect("send");
    }
    settle(&parking, 0).await;
    system.shutdown().await;
    drop(journal);
    store.close().await.expect("close");
}

fn courier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .output()
        .expect("run courier")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = courier(&all);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("json")
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_dir() {
            for (k, v) in contents(&path) {
                out.insert(format!("{}/{k}", entry.file_name().to_string_lossy()), v);
            }
        } else {
            out.insert(
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(&path).expect("read"),
            );
        }
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn inspect_pending_parked_events_and_verify_read_a_store_without_writing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    runtime().block_on(make_store(&store));
    let path = store.to_str().expect("utf-8 path");
    let before = contents(&store);

    let text = courier(&["inspect", path]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    for expected in [
        "JOURNALS",
        "orders",
        "SENDERS",
        "till",
        "desk",
        "INBOXES",
        "warehouse",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }

    let inspect = json(&["inspect", path]);
    let journal = &inspect["journals"][0];
    assert_eq!(journal["persistence_id"], "orders");
    assert_eq!(journal["events"], 5);
    assert_eq!(journal["highest"], 5);
    let senders = inspect["senders"].as_array().expect("senders");
    let till = senders.iter().find(|s| s["name"] == "till").expect("till");
    assert_eq!(till["pending"], 1);
    assert_eq!(till["destinations"]["/user/nobody"], 1);
    let desk = senders.iter().find(|s| s["name"] == "desk").expect("desk");
    assert_eq!(
        (desk["pending"].clone(), desk["parked"].clone()),
        (0.into(), 2.into())
    );
    let inbox = &inspect["inboxes"][0];
    assert_eq!(inbox["receiver"], "warehouse");
    assert_eq!(inbox["senders"][0]["sender"], "till");
    assert_eq!(inbox["senders"][0]["watermark"], 3);
    assert_eq!(inspect["problems"], 0);

    let pending = json(&["pending", path]);
    assert_eq!(pending.as_array().map(Vec::len), Some(1));
    assert_eq!(pending[0]["sender"], "till");
    assert_eq!(pending[0]["id"], 4);
    assert_eq!(pending[0]["destination"], "/user/nobody");

    let parked = json(&["parked", "list", path, "--sender", "desk"]);
    assert_eq!(parked.as_array().map(Vec::len), Some(2));
    assert!(
        parked[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{parked}"
    );

    let events = json(&["events", path, "orders", "--from", "2", "--to", "4"]);
    let seqs: Vec<u64> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["seq_nr"].as_u64())
        .collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!(events[0]["manifest"], "shop.OrderPlaced/1");
    assert_eq!(events[0]["payload_hex"], "0202020202020202");

    let verify = courier(&["verify", path]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("all sound"), "{}", stdout(&verify));

    // Not one byte of the store changed.
    assert!(
        before == contents(&store),
        "a reading command wrote to the store"
    );
}

#[test]
fn parked_deliveries_are_requeued_under_new_ids_and_purged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    runtime().block_on(make_store(&store));
    let path = store.to_str().expect("utf-8 path");
    let parked = json(&["parked", "list", path]);
    let ids: Vec<u64> = parked
        .as_array()
        .expect("parked")
        .iter()
        .filter_map(|p| p["id"].as_u64())
        .collect();
    assert_eq!(ids.len(), 2);

    // A page at a time: the first, a hint naming the next page, the rest.
    let first = courier(&[
        "parked", "list", path, "--sender", "desk", "--limit", "1", "--json",
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let page: Value = serde_json::from_slice(&first.stdout).expect("json");
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page[0]["id"].as_u64(), Some(ids[0]));
    let hint = format!("--sender desk --after {}", ids[0]);
    assert!(stderr(&first).contains(&hint), "{}", stderr(&first));
    let after = ids[0].to_string();
    let rest = courier(&[
        "parked", "list", path, "--sender", "desk", "--after", &after, "--json",
    ]);
    let page: Value = serde_json::from_slice(&rest.stdout).expect("json");
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page[0]["id"].as_u64(), Some(ids[1]));
    assert!(!stderr(&rest).contains("more follow"), "{}", stderr(&rest));
    // Every sender at once: cut at the limit, with a hint.
    let cut = courier(&["pending", path, "--limit", "0"]);
    assert!(stderr(&cut).contains("more follow"), "{}", stderr(&cut));
    let refused = courier(&["pending", path, "--after", "1"]);
    assert_eq!(refused.status.code(), Some(2), "--after without --sender");

    let requeued = json(&[
        "parked",
        "requeue",
        path,
        "--sender",
        "desk",
        &ids[0].to_string(),
    ]);
    let new_id = requeued["requeued"][0]["new_id"].as_u64().expect("new id");
    assert!(new_id > ids[1], "{requeued}");
    let purged = courier(&[
        "parked",
        "purge",
        path,
        "--sender",
        "desk",
        &ids[1].to_string(),
    ]);
    assert!(purged.status.success(), "{}", stderr(&purged));

    let inspect = json(&["inspect", path]);
    let desk = inspect["senders"]
        .as_array()
        .expect("senders")
        .iter()
        .find(|s| s["name"] == "desk")
        .cloned()
        .expect("desk");
    assert_eq!(
        (desk["pending"].clone(), desk["parked"].clone()),
        (1.into(), 0.into())
    );
    let pending = json(&["pending", path, "--sender", "desk"]);
    assert_eq!(pending[0]["id"].as_u64(), Some(new_id));

    // Purging what is not parked is refused, and says so.
    let again = courier(&[
        "parked",
        "purge",
        path,
        "--sender",
        "desk",
        &ids[1].to_string(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("no parked delivery"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn all_repairs_every_parked_delivery_of_the_sender_and_refuses_ids_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    runtime().block_on(make_store(&store));
    let path = store.to_str().expect("utf-8 path");
    let both = courier(&["parked", "requeue", path, "--sender", "desk", "--all", "1"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(stderr(&both).contains("not both"), "{}", stderr(&both));
    let none = courier(&["parked", "requeue", path, "--sender", "desk"]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(stderr(&none).contains("--all"), "{}", stderr(&none));

    let requeued = json(&["parked", "requeue", path, "--sender", "desk", "--all"]);
    assert_eq!(
        requeued["requeued"].as_array().map(Vec::len),
        Some(2),
        "{requeued}"
    );
    assert_eq!(
        json(&["parked", "list", path]).as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(
        json(&["pending", path, "--sender", "desk"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Nothing parked: nothing to do, and it says so.
    let again = courier(&["parked", "purge", path, "--sender", "desk", "--all"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("no parked deliveries of desk"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn verify_names_each_damaged_record_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    runtime().block_on(make_store(&store));
    // Flip a byte of event orders#2 in sled itself (key layout:
    // docs/architecture.md), leaving the engine's own structures sound.
    {
        let db = sled::open(&store).expect("sled");
        let mut key = vec![1, 0, 6];
        key.extend_from_slice(b"orders");
        key.extend_from_slice(&2u64.to_be_bytes());
        let mut value = db.get(&key).expect("get").expect("event 2").to_vec();
        let last = value.len() - 1;
        value[last] ^= 0x10;
        db.insert(&key, value).expect("insert");
        db.flush().expect("flush");
    }
    let path = store.to_str().expect("utf-8 path");
    let verify = courier(&["verify", path]);
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains("BAD event orders#2"),
        "{}",
        stdout(&verify)
    );
    let report = {
        let output = courier(&["verify", path, "--json"]);
        assert_eq!(output.status.code(), Some(1));
        serde_json::from_slice::<Value>(&output.stdout).expect("json")
    };
    assert_eq!(report["clean"], false);
    assert_eq!(report["problem_count"], 1);
    assert_eq!(report["problems"][0]["kind"], "event");
    assert_eq!(report["problems"][0]["persistence_id"], "orders");
    assert_eq!(report["problems"][0]["seq_nr"], 2);
}

#[test]
fn a_store_in_use_or_missing_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let rt = runtime();
    rt.block_on(make_store(&store));
    let path = store.to_str().expect("utf-8 path");
    let held = rt.block_on(async { SledStore::open(&store).expect("open") });
    let busy = courier(&["inspect", path]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(
        stderr(&busy).contains("open in another process"),
        "{}",
        stderr(&busy)
    );
    let busy = courier(&["parked", "purge", path, "--sender", "desk", "1"]);
    assert_eq!(busy.status.code(), Some(2));
    rt.block_on(held.close()).expect("close");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let missing = courier(&["verify", empty.to_str().expect("utf-8")]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("is not a courier store"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_fjall_store_is_read_verified_and_refused_while_held_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let rt = runtime();
    rt.block_on(make_store_on(EngineKind::Fjall, &store));
    let path = store.to_str().expect("utf-8 path");
    let before = contents(&store);
    let inspect = json(&["inspect", path]);
    assert_eq!(inspect["journals"][0]["persistence_id"], "orders");
    assert_eq!(inspect["journals"][0]["events"], 5);
    assert_eq!(inspect["inboxes"][0]["senders"][0]["watermark"], 3);
    let verify = courier(&["verify", path]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(
        before == contents(&store),
        "a reading command wrote to the store"
    );

    let held = rt.block_on(async {
        DurableStore::open_engine(EngineKind::Fjall, &store, None, StoreOptions::new())
            .expect("open")
    });
    let busy = courier(&["verify", path]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(
        stderr(&busy).contains("open in another process"),
        "{}",
        stderr(&busy)
    );
    rt.block_on(held.close()).expect("close");
}

#[test]
fn top_refreshes_a_bounded_number_of_times_from_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    runtime().block_on(make_store(&store));
    let path = store.to_str().expect("utf-8 path");
    let out = courier(&["top", path, "--iterations", "2", "--interval", "50ms"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("SENDERS of").count(), 2, "{text}");
    // "desk": nothing pending, 2 parked; no redelivery counter offline,
    // and the pending change known from the second screen on.
    assert!(
        text.lines()
            .any(|l| l.starts_with("  desk ") && l.contains(" 2 ") && l.contains(" - ")),
        "{text}"
    );
    assert!(text.contains("0.0/s"), "{text}");
    let lines: Vec<Value> = stdout(&courier(&[
        "top",
        path,
        "--iterations",
        "2",
        "--interval",
        "50ms",
        "--json",
    ]))
    .lines()
    .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
    .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["senders"][0]["pending_rate"], 0.0);
    assert!(
        courier(&["top", path, "--iterations", "1", "--interval", "0s"])
            .status
            .code()
            == Some(2)
    );
}

/// A JSON document's shape: its keys and the kinds of their values, not
/// the values; an array by the shapes of all its elements merged.
fn shape(value: &Value) -> Value {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => {
            let merged = items.iter().map(shape).reduce(|a, b| merge(&a, &b));
            Value::Array(merged.into_iter().collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), shape(value)))
                .collect(),
        ),
    }
}

/// Two shapes as one: objects key by key, arrays element by element, and
/// different kinds as `"a|b"`.
fn merge(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (key, theirs) in y {
                let merged = match x.get(key) {
                    Some(ours) => merge(ours, theirs),
                    None => theirs.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(x), Value::Array(y)) => {
            let merged = x.iter().chain(y).cloned().reduce(|a, b| merge(&a, &b));
            Value::Array(merged.into_iter().collect())
        }
        (Value::String(x), Value::String(y)) => {
            let mut kinds: Vec<&str> = x.split('|').chain(y.split('|')).collect();
            kinds.sort_unstable();
            kinds.dedup();
            kinds.join("|").into()
        }
        (x, y) if x == y => x.clone(),
        (x, y) => panic!("shapes of different kinds: {x} and {y}"),
    }
}

/// The `--json` output of every reading command keeps the shape scripts
/// rely on (cli/tests/json_shapes.json). A change of shape fails here:
/// when it is meant, write the file anew with `COURIER_BLESS=1` and say so
/// in the release notes.
#[test]
fn json_output_keeps_its_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    runtime().block_on(make_store(&store));
    let path = store.to_str().expect("utf-8 path");
    let mut shapes = serde_json::Map::new();
    let commands: [(&str, &[&str]); 6] = [
        ("inspect", &["inspect", path]),
        ("pending", &["pending", path]),
        ("parked list", &["parked", "list", path]),
        ("events", &["events", path, "orders"]),
        ("verify", &["verify", path]),
        ("top", &["top", path, "--iterations", "1"]),
    ];
    for (name, args) in commands {
        shapes.insert(name.to_owned(), shape(&json(args)));
    }
    let found = serde_json::to_string_pretty(&Value::Object(shapes)).expect("json") + "\n";
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/json_shapes.json");
    if std::env::var_os("COURIER_BLESS").is_some() {
        std::fs::write(file, &found).expect("write the shapes");
    }
    let expected = std::fs::read_to_string(file).expect("tests/json_shapes.json");
    assert_eq!(
        found, expected,
        "the --json output changed shape (COURIER_BLESS=1 writes the new one)"
    );
}
