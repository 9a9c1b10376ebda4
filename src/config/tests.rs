//! The configuration file: every key, its defaults, and errors that name
//! the key and its line.

use super::*;
use std::path::PathBuf;

use courier_delivery::{MAX_EXPIRE_AFTER, MAX_REDELIVERY_DELAY};

fn err(text: &str) -> String {
    match Config::from_str(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn remote_section_is_validated_with_key_and_line() {
    let ok = Config::from_str(
        "[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nlisten = \"127.0.0.1:7101\"\n",
    )
    .expect("valid");
    let remote = ok.remote.expect("present");
    assert_eq!(remote.get_ref().settings().listen.port(), 7101);
    assert!(Config::from_str("").expect("valid").remote.is_none());

    let short = err("\n[remote]\nnode = \"a\"\nsecret = \"short\"\n");
    assert!(
        short.contains("remote.secret") && short.contains("line 2"),
        "{short}"
    );
    let name = err("[remote]\nnode = \"a/b\"\nsecret = \"0123456789abcdef\"\n");
    assert!(name.contains("remote.node"), "{name}");
    let listen =
        err("[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nlisten = \"nowhere\"\n");
    assert!(
        listen.contains("listen") && listen.contains("line 4"),
        "{listen}"
    );
    let missing = err("[remote]\nnode = \"a\"\n");
    assert!(missing.contains("secret"), "{missing}");
    let backwards = err(
        "[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nreconnect_min = \"5s\"\nreconnect_max = \"1s\"\n",
    );
    assert!(backwards.contains("remote.reconnect_max"), "{backwards}");
}

#[test]
fn empty_text_gives_akka_defaults() {
    let config = Config::from_str("").expect("valid");
    let outbox = config.outbox("any");
    assert_eq!(outbox, OutboxSettings::default());
    assert_eq!(config.persistence.path, PathBuf::from("courier-data"));
    assert_eq!(config.persistent("x"), PersistentSettings::default());
}

#[test]
fn every_key_is_read_and_overrides_apply_by_name() {
    let config = Config::from_str(
        r#"
[persistence]
engine = "fjall"
path = "/tmp/x"
cache_capacity = 1048576
group_commit_max = 64

[snapshots]
every = 100
keep = 3
delete_events = true

[snapshots.actor.counter]
every = 7

[delivery]
redeliver_interval = "250ms"
backoff = { kind = "exponential", max = "10s", jitter = 0.5 }
redelivery_burst_limit = 50
warn_after_attempts = 3
max_unconfirmed = 1000
max_attempts = 9
expire_after = "1h"

[delivery.actor.billing]
redeliver_interval = "1s"
backoff = { kind = "fixed" }
max_unconfirmed = 10
"#,
    )
    .expect("valid");
    assert_eq!(config.persistence.group_commit_max, 64);
    assert_eq!(config.persistence.engine, EngineKind::Fjall);
    assert_eq!(config.persistence.cache_capacity, Some(1_048_576));
    let orders = config.outbox("orders");
    assert_eq!(
        orders.redelivery,
        Redelivery::Backoff {
            min: Duration::from_millis(250),
            max: Duration::from_secs(10),
            jitter: 0.5
        }
    );
    assert_eq!(orders.burst_limit, 50);
    assert_eq!(orders.warn_after_attempts, 3);
    assert_eq!(orders.max_unconfirmed, 1000);
    assert_eq!(orders.max_attempts, Some(9));
    assert_eq!(orders.expire_after, Some(Duration::from_secs(3600)));
    let billing = config.outbox("billing");
    assert_eq!(
        billing.redelivery,
        Redelivery::Fixed {
            interval: Duration::from_secs(1)
        }
    );
    assert_eq!(billing.max_unconfirmed, 10);
    assert_eq!(billing.burst_limit, 50);
    assert_eq!(
        config.persistent("counter").snapshots,
        SnapshotPolicy::every(7).keep(3).delete_events(true)
    );
    assert_eq!(
        config.persistent("other").snapshots,
        SnapshotPolicy::every(100).keep(3).delete_events(true)
    );
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let e = err("[delivery]\nredeliver_interval = \"1s\"\nretries = 3\n");
    assert!(e.contains("retries") && e.contains("line 3"), "{e}");
    let e = err("[delivery.actor.billing]\nmax_attempt = 3\n");
    assert!(e.contains("max_attempt") && e.contains("line 2"), "{e}");
    let e = err("[persistance]\npath = \"x\"\n");
    assert!(e.contains("persistance") && e.contains("line 1"), "{e}");
}

#[test]
fn wrong_types_are_named_with_their_line() {
    let e = err("[delivery]\n\nmax_unconfirmed = \"lots\"\n");
    assert!(e.contains("max_unconfirmed") || e.contains("line 3"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    let e = err("[delivery]\nredeliver_interval = \"5 parsecs\"\n");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn invalid_values_are_named_with_their_line() {
    let e = err("[delivery]\nredeliver_interval = \"0s\"\n");
    assert!(e.contains("line 2") && e.contains("more than zero"), "{e}");
    let e = err("[delivery]\nbackoff = { kind = \"exponential\", jitter = 1.5 }\n");
    assert!(
        e.contains("line 2") && e.contains("between 0.0 and 1.0"),
        "{e}"
    );
    let e = err("[delivery]\nredelivery_burst_limit = 0\n");
    assert!(e.contains("line 2") && e.contains("at least 1"), "{e}");
    let e = err(
        "[delivery]\nredeliver_interval = \"10s\"\n\nbackoff = { kind = \"exponential\", max = \"1s\" }\n",
    );
    assert!(
        e.contains("line 4") && e.contains("delivery.backoff.max") && e.contains("below"),
        "{e}"
    );
    let e = err("[delivery.actor.x]\nbackoff = { kind = \"sometimes\" }\n");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn every_duration_is_bounded_and_the_error_names_key_and_line() {
    // The issue's value: accepted before, it panicked the redelivery timer.
    for (text, key, line) in [
        (
            "[delivery]\nredeliver_interval = \"500000000000y\"\n",
            "redeliver_interval",
            2,
        ),
        (
            "[delivery]\n\nredeliver_interval = \"25h\"\n",
            "redeliver_interval",
            3,
        ),
        (
            "[delivery]\nbackoff = { kind = \"exponential\", max = \"2d\" }\n",
            "max",
            2,
        ),
        ("[delivery]\nexpire_after = \"11y\"\n", "expire_after", 2),
        (
            "[delivery.actor.billing]\nredeliver_interval = \"1000d\"\n",
            "redeliver_interval",
            2,
        ),
    ] {
        let e = err(text);
        assert!(
            e.contains(key) && e.contains(&format!("line {line}")) && e.contains("at most"),
            "{text}: {e}"
        );
    }
    let e = err("[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nreconnect_max = \"2h\"\n");
    assert!(
        e.contains("remote.reconnect_max") && e.contains("line 1"),
        "{e}"
    );
    let e = err("[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nmax_frame = 100000000\n");
    assert!(
        e.contains("remote.max_frame") && e.contains("at most"),
        "{e}"
    );
    // The bounds themselves are accepted.
    let config = Config::from_str(
        "[delivery]\nredeliver_interval = \"1d\"\nexpire_after = \"10y\"\nbackoff = { kind = \"exponential\", max = \"24h\" }\n\n[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nreconnect_max = \"1h\"\nmax_frame = 67108864\n",
    )
    .expect("valid");
    let outbox = config.outbox("any");
    assert_eq!(outbox.redelivery.delay(1, 0.5), MAX_REDELIVERY_DELAY);
    assert_eq!(outbox.expire_after, Some(MAX_EXPIRE_AFTER));
}

/// The error's fields, for programs that report them their own way.
fn invalid(text: &str) -> (Option<String>, Option<usize>, String) {
    match Config::from_str(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(ConfigError::Invalid {
            origin,
            key,
            line,
            reason,
        }) => {
            assert_eq!(origin, "<string>");
            (key, line, reason)
        }
        Err(other) => panic!("not invalid: {other}"),
    }
}

#[test]
fn key_and_line_are_fields_of_the_error() {
    let (key, line, reason) = invalid("[delivery]\n\nmax_unconfirmed = \"lots\"\n");
    assert_eq!(key.as_deref(), Some("delivery.max_unconfirmed"));
    assert_eq!(line, Some(3));
    assert!(reason.contains("invalid type"), "{reason}");

    let (key, line, _) = invalid("[delivery.actor.billing]\nmax_attempts = 0\n");
    assert_eq!(key.as_deref(), Some("delivery.actor.billing.max_attempts"));
    assert_eq!(line, Some(2));

    let (key, line, reason) = invalid("[delivery]\nretries = 3\n");
    assert_eq!(key.as_deref(), Some("delivery.retries"));
    assert_eq!(line, Some(2));
    assert!(reason.starts_with("unknown field"), "{reason}");

    let (key, line, _) = invalid("[persistance]\npath = \"x\"\n");
    assert_eq!(key.as_deref(), Some("persistance"));
    assert_eq!(line, Some(1));

    let (key, line, _) = invalid(
        "[delivery]\nredeliver_interval = \"10s\"\nbackoff = { kind = \"exponential\", max = \"1s\" }\n",
    );
    assert_eq!(key.as_deref(), Some("delivery.backoff.max"));
    assert_eq!(line, Some(3));

    let (key, line, reason) = invalid("[remote]\nnode = \"a\"\nsecret = \"short\"\n");
    assert_eq!(key.as_deref(), Some("remote.secret"));
    assert_eq!(line, Some(1));
    assert!(reason.starts_with("must be"), "{reason}");

    // Not TOML at all: a line, no key.
    let (key, line, _) = invalid("[delivery\n");
    assert_eq!(key, None);
    assert_eq!(line, Some(1));
}

#[test]
fn remote_credentials_come_from_files_or_the_environment_and_are_never_printed() {
    let config = Config::from_str(
        "[remote]\nnode = \"billing-node\"\ncert = \"/etc/courier/node.crt\"\nkey = \"/etc/courier/node.key\"\nca = \"/etc/courier/ca.crt\"\nsecret = \"env:COURIER_SECRET\"\nlisten = \"0.0.0.0:7000\"\n",
    )
    .expect("TLS files and a secret from the environment are read at start");
    let remote = config.remote.expect("present");
    let settings = remote.get_ref().settings();
    assert!(settings.tls.is_some());
    assert_eq!(
        settings.secret,
        Some(courier_remote::Secret::from_env("COURIER_SECRET"))
    );

    let inline = Config::from_str("[remote]\nnode = \"a\"\nsecret = \"never-print-this-secret\"\n")
        .expect("valid");
    let printed = format!("{inline:?}");
    assert!(!printed.contains("never-print-this-secret"), "{printed}");

    let (key, _, reason) = invalid(
        "[remote]\nnode = \"a\"\ncert = \"/etc/courier/node.crt\"\nsecret = \"0123456789abcdef\"\n",
    );
    assert_eq!(key.as_deref(), Some("remote.key"), "{reason}");

    let (key, _, reason) = invalid(
        "[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nlisten = \"0.0.0.0:7000\"\n",
    );
    assert_eq!(key.as_deref(), Some("remote.tls"), "{reason}");
    Config::from_str(
        "[remote]\nnode = \"a\"\nsecret = \"0123456789abcdef\"\nlisten = \"0.0.0.0:7000\"\ninsecure = true\n",
    )
    .expect("insecure allows it");

    let (key, _, reason) =
        invalid("[remote]\nnode = \"a\"\nsecret = \"change me: at least 16 bytes\"\n");
    assert_eq!(key.as_deref(), Some("remote.secret"));
    assert!(reason.contains("sample"), "{reason}");
}

#[test]
fn an_unknown_engine_or_an_empty_cache_is_named_with_its_line() {
    let e = Config::from_str("[persistence]\nengine = \"rocks\"\n")
        .expect_err("not an engine")
        .to_string();
    assert!(
        e.contains("persistence.engine") && e.contains("line 2") && e.contains("fjall"),
        "{e}"
    );
    let e = Config::from_str("[persistence]\npath = \"x\"\ncache_capacity = 0\n")
        .expect_err("an empty cache")
        .to_string();
    assert!(
        e.contains("persistence.cache_capacity") && e.contains("line 3"),
        "{e}"
    );
}

/// An engine the build lacks is refused when the store opens, naming the
/// feature, rather than silently replaced by another engine.
#[cfg(all(feature = "sled", not(feature = "fjall")))]
#[tokio::test]
async fn an_engine_without_its_feature_is_refused_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[persistence]\nengine = \"fjall\"\npath = {:?}\n",
        dir.path().display().to_string()
    );
    let config = Config::from_str(&text).expect("valid");
    let opened = config.persistence.open();
    let e = opened.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("`fjall` feature"), "{e}");
}

#[cfg(feature = "admin")]
#[test]
fn admin_section_names_who_may_repair_and_is_checked() {
    let config =
        Config::from_str("[admin]\nrepair = [\"operator\", \"oncall.example\"]\n").expect("valid");
    assert_eq!(
        config.admin_settings().repair,
        ["operator", "oncall.example"]
    );
    assert!(
        Config::from_str("")
            .expect("valid")
            .admin_settings()
            .repair
            .is_empty()
    );
    let (key, line, reason) = invalid("\n\n[admin]\nrepair = [\"two words\"]\n");
    assert_eq!(key.as_deref(), Some("admin.repair"), "{reason}");
    assert_eq!(line, Some(3), "{reason}");
    assert!(reason.contains("two words"), "{reason}");
    let e = err("[admin]\nrepare = [\"operator\"]\n");
    assert!(e.contains("repare"), "{e}");
}
