//! Per-actor overrides that no sender or persistence id asked for are
//! named, and warned about once.

use std::sync::Arc;

use courier::config::Config;
use courier::delivery::AtLeastOnce;
use courier::persistence::{Journal, MemoryStore};

fn store() -> Arc<dyn Journal> {
    Arc::new(MemoryStore::memory().expect("store"))
}

#[tokio::test]
async fn unused_overrides_are_named_and_warned_about_once() {
    let config = Config::from_str(
        r#"
        [delivery.actor.order-desk]
        max_attempts = 3
        [delivery.actor.ordr-desk]
        max_attempts = 4
        [snapshots.actor.account-1]
        every = 100
        [snapshots.actor.acount-1]
        every = 100
        "#,
    )
    .expect("config");
    let out: AtLeastOnce<String> = config.at_least_once("order-desk", store());
    assert_eq!(out.settings().max_attempts, Some(3));
    let _ = config.clone().persistent("account-1");
    assert_eq!(
        config.unused_overrides(),
        vec!["[delivery.actor.ordr-desk]", "[snapshots.actor.acount-1]"]
    );
    assert_eq!(
        config.warn_unused_overrides(),
        vec!["[delivery.actor.ordr-desk]", "[snapshots.actor.acount-1]"]
    );
    // Once: a second call (from any clone) warns about nothing new.
    assert!(config.clone().warn_unused_overrides().is_empty());
    assert_eq!(config.unused_overrides().len(), 2);
}

/// What was written by the `fmt` subscriber of the test below.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_override_nothing_asked_for_is_warned_about_when_the_last_clone_goes() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let config = Config::from_str(
            "[delivery.actor.order-desk]\nmax_attempts = 3\n[delivery.actor.ordr-desk]\nmax_attempts = 4\n",
        )
        .expect("config");
        let clone = config.clone();
        let _ = config.outbox("order-desk");
        drop(config);
        // A clone still holds it: nothing is final yet.
        assert!(captured.0.lock().expect("log buffer").is_empty());
        drop(clone);
    });
    let log = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8");
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
    assert!(log.contains("[delivery.actor.ordr-desk]"), "{log}");
    assert!(!log.contains("[delivery.actor.order-desk]"), "{log}");
}

#[test]
fn a_warned_override_is_not_warned_about_again_at_the_end() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let config = Config::from_str("[snapshots.actor.acount-1]\nevery = 100\n").expect("config");
        assert_eq!(config.warn_unused_overrides().len(), 1);
    });
    let log = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8");
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
}
