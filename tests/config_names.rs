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
