//! `courier --node …` against a running process over real sockets and
//! mutual TLS: this test process runs a node with the admin endpoint
//! mounted, a sender whose deliveries parked (their destination did not
//! exist yet), and the `courier` binary asks it. Reads work for any
//! certificate of the CA; repairs only for the identity `[admin] repair`
//! names; a certificate from another CA is refused; the requeued delivery
//! is then actually delivered.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use courier::admin::{AdminService, AdminSettings};
use courier::delivery::{DedupInbox, Deliverer, Delivery, OutboxSettings, Receipt, Redelivery};
use courier::persistence::{
    DurableStore, Effect, EngineKind, EventRecord, EventSourced, Journal, Manifest,
    PersistentContext, Snapshots, StoreOptions, WriteBatch, encode_payload,
};
use courier::prelude::*;
use courier::remote::{Node, Registry, RemoteSettings, TlsSettings, Transport};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn cert(&self, name: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// Writes `name`'s certificate and key and this CA under `dir`; the
    /// `--cert --key --ca` arguments for them.
    fn files(&self, dir: &Path, name: &str) -> Vec<String> {
        let (cert, key) = self.cert(name);
        let paths = [
            (dir.join(format!("{name}.crt")), cert),
            (dir.join(format!("{name}.key")), key),
            (dir.join(format!("{name}-ca.crt")), self.pem.clone()),
        ];
        let mut args = Vec::new();
        for ((path, text), flag) in paths.into_iter().zip(["--cert", "--key", "--ca"]) {
            std::fs::write(&path, text).expect("write pem");
            args.push(flag.to_owned());
            args.push(path.display().to_string());
        }
        args.push("--identity".into());
        args.push(name.into());
        args
    }
}

enum DeskCmd {
    Send(&'static str, u64, ReplyTo<()>),
    Unconfirmed(ReplyTo<usize>),
}

/// Parks every delivery after one attempt.
struct Desk {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<u64>>,
}

impl Actor for Desk {
    type Msg = DeskCmd;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        // One attempt, then parked: the first two deliveries park because
        // their destination does not exist yet. The interval is also how
        // long the requeued delivery has to be confirmed before it parks
        // in turn, so it is generous: at 20 ms a loaded CI machine parked
        // it now and then (the shop opens its inbox and commits first).
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed {
                interval: Duration::from_millis(500),
            },
            max_attempts: Some(1),
            ..OutboxSettings::default()
        };
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, "order-desk", journal, settings).await?);
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
struct Shop {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
}

impl Actor for Shop {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "shop").await?);
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

fn courier(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .output()
        .expect("run courier")
}

/// Runs the tool off the runtime (it blocks until the process exits).
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || courier(&args))
        .await
        .expect("join")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn args(node: &str, creds: &[String], command: &[&str]) -> Vec<String> {
    let mut all = vec!["--node".to_owned(), node.to_owned()];
    all.extend(creds.iter().cloned());
    all.extend(command.iter().map(|s| (*s).to_owned()));
    all
}

async fn unconfirmed(desk: &ActorRef<DeskCmd>) -> usize {
    desk.ask(DeskCmd::Unconfirmed, Duration::from_secs(5))
        .await
        .expect("ask")
}

/// Polls `check` until it holds (10 s at most).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_is_read_and_repaired_over_mutual_tls_only_as_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DurableStore::open_engine(
        EngineKind::Sled,
        dir.path().join("store"),
        None,
        StoreOptions::new(),
    )
    .expect("open");
    let journal: Arc<dyn Journal> = Arc::new(store.clone());
    let system = ActorSystem::new("app");

    let ca = Ca::new("courier test CA");
    let (cert, key) = ca.cert("app");
    let settings =
        RemoteSettings::with_tls("app", TlsSettings::from_pem(cert, key, ca.pem.clone()));
    let admin = AdminService::new(
        &system,
        Arc::clone(&journal),
        AdminSettings::read_only().allow_repair("operator"),
    )
    .with_store(store.clone())
    .decode_events_of::<Account>();
    // Three events of the account: two the process decodes, one of a
    // version it does not read.
    let manifest = Account::event_manifest();
    let newer = Manifest::new(manifest.type_name.clone(), manifest.version + 1);
    let stored = [(1, manifest.clone(), 5), (2, manifest, 7), (3, newer, 9)];
    journal
        .write(
            WriteBatch::new().events(stored.into_iter().map(|(seq_nr, manifest, n)| EventRecord {
                persistence_id: "account".into(),
                seq_nr,
                manifest,
                payload: encode_payload(&Deposited { amount: n }).expect("encode"),
                writer_id: uuid::Uuid::nil(),
                timestamp: courier::persistence::now_millis(),
            })),
        )
        .await
        .expect("write events");
    let transport = Transport::tcp("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let node = Node::start_with_services(
        &system,
        settings,
        Registry::new(),
        transport,
        move |routes| admin.mount(routes),
    )
    .await
    .expect("node");
    let address = format!("courier://app@{}", node.address());

    // Two deliveries to a shop that does not exist yet: both park.
    let j = Arc::clone(&journal);
    let desk = system
        .spawn(
            Props::new(move || Desk {
                journal: Arc::clone(&j),
                out: None,
            })
            .with_name("desk"),
        )
        .expect("spawn desk");
    for n in [10, 20] {
        desk.ask(
            |r| DeskCmd::Send("/user/shop", n, r),
            Duration::from_secs(5),
        )
        .await
        .expect("deliver");
    }
    eventually("both parked", || async { unconfirmed(&desk).await == 0 }).await;

    let certs = tempfile::tempdir().expect("tempdir");
    let operator = ca.files(certs.path(), "operator");
    let reader = ca.files(certs.path(), "reader");
    let elsewhere = certs.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let stranger = Ca::new("another CA").files(&elsewhere, "operator");

    // Reading works for any certificate of the CA, as offline.
    let out = run(args(&address, &reader, &["parked", "list", "--json"])).await;
    assert!(out.status.success(), "{}", text(&out));
    let parked: Value = serde_json::from_slice(&out.stdout).expect("json");
    let parked = parked.as_array().expect("array");
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert_eq!(parked[0]["sender"], "order-desk");
    assert_eq!(parked[0]["destination"], "/user/shop");
    let first = parked[0]["id"].as_u64().expect("id");
    let second = parked[1]["id"].as_u64().expect("id");
    // A page at a time, as offline.
    let page = [
        "parked",
        "list",
        "--sender",
        "order-desk",
        "--limit",
        "1",
        "--json",
    ];
    let out = run(args(&address, &reader, &page)).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown[0]["id"].as_u64(), Some(first));
    let hint = format!("--sender order-desk --after {first}");
    assert!(text(&out).contains(&hint), "{}", text(&out));
    let after = first.to_string();
    let page = [
        "parked",
        "list",
        "--sender",
        "order-desk",
        "--after",
        &after,
        "--json",
    ];
    let out = run(args(&address, &reader, &page)).await;
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown[0]["id"].as_u64(), Some(second));
    let out = run(args(&address, &reader, &["inspect"])).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.contains("SENDERS"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("  order-desk ") && l.trim_end().ends_with(" 2")),
        "{shown}"
    );
    let out = run(args(&address, &reader, &["verify"])).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("all sound"), "{}", text(&out));
    let out = run(args(
        &address,
        &reader,
        &["top", "--iterations", "2", "--interval", "100ms"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("SENDERS of").count(),
        2,
        "{}",
        text(&out)
    );

    // Repair without permission: refused, nothing changed.
    let id = first.to_string();
    let out = run(args(
        &address,
        &reader,
        &["parked", "requeue", "--sender", "order-desk", &id],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not allowed"), "{}", text(&out));
    // A certificate from another CA: refused before any answer.
    let out = run(args(&address, &stranger, &["parked", "list"])).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("order-desk"));
    // A bad id, and an id that is not parked: typed refusals.
    let out = run(args(
        &address,
        &operator,
        &["parked", "requeue", "--sender", "order-desk", "0"],
    ))
    .await;
    assert!(text(&out).contains("bad request"), "{}", text(&out));
    let out = run(args(
        &address,
        &operator,
        &["parked", "purge", "--sender", "order-desk", "999"],
    ))
    .await;
    assert!(text(&out).contains("not found"), "{}", text(&out));
    let out = run(args(&address, &reader, &["parked", "list"])).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("/user/shop")
            .count(),
        2
    );

    // The shop exists now; the operator requeues the first delivery and
    // purges the second, through the running sender.
    let j = Arc::clone(&journal);
    let shop = system
        .spawn(
            Props::new(move || Shop {
                journal: Arc::clone(&j),
                inbox: None,
            })
            .with_name("shop"),
        )
        .expect("spawn shop");
    let out = run(args(
        &address,
        &operator,
        &["parked", "requeue", "--sender", "order-desk", &id, "--json"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let reply: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(reply["requeued"][0]["id"].as_u64(), Some(first));
    assert!(reply["requeued"][0]["new_id"].as_u64() > Some(second));
    let out = run(args(
        &address,
        &operator,
        &[
            "parked",
            "purge",
            "--sender",
            "order-desk",
            &second.to_string(),
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));

    // Delivered and confirmed (the shop's inbox applied it); nothing
    // pending or parked remains.
    eventually("the requeued delivery confirmed", || async {
        unconfirmed(&desk).await == 0
    })
    .await;
    let _ = &shop;
    let out = run(args(&address, &reader, &["parked", "list", "--json"])).await;
    let left: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left:?}");
    let out = run(args(&address, &reader, &["inspect", "--json"])).await;
    let inspected: Value = serde_json::from_slice(&out.stdout).expect("json");
    let inbox = &inspected["inboxes"][0];
    assert_eq!(inbox["receiver"], "shop", "{inspected}");
    assert_eq!(inbox["senders"][0]["sender"], "order-desk");

    // Events, decoded by the decoder the process registered; the one of
    // an unknown version as bytes, with the reason.
    let out = run(args(&address, &reader, &["events", "account", "--json"])).await;
    assert!(out.status.success(), "{}", text(&out));
    let events: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        events[0]["payload_json"],
        serde_json::json!({ "amount": 5 }),
        "{events}"
    );
    assert_eq!(
        events[1]["payload_json"],
        serde_json::json!({ "amount": 7 }),
        "{events}"
    );
    assert_eq!(events[2]["payload_json"], Value::Null, "{events}");
    let refused = events[2]["decode_error"].as_str().unwrap_or_default();
    assert!(refused.contains("unknown event manifest"), "{events}");
    let out = run(args(&address, &reader, &["events", "account"])).await;
    assert!(text(&out).contains(r#"{"amount":7}"#), "{}", text(&out));

    node.shutdown().await;
    system.shutdown().await;
    drop(journal);
    store.close().await.expect("close");
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Deposited {
    amount: u64,
}

/// An event-sourced account, for its events' decoder.
struct Account(u64);

impl EventSourced for Account {
    type Command = u64;
    type Event = Deposited;

    async fn handle_command(
        &mut self,
        amount: u64,
        _: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(Effect::persist(Deposited { amount }))
    }

    fn apply_event(&mut self, event: Deposited) {
        self.0 += event.amount;
    }
}

impl Snapshots for Account {
    type Snapshot = u64;

    fn to_snapshot(&self) -> u64 {
        self.0
    }

    fn apply_snapshot(&mut self, balance: u64) {
        self.0 = balance;
    }
}
