//! `[persistence] engine = "postgres"` from a TOML file, against the real
//! server: the password comes from a file or a variable, a wrong one is
//! refused, and neither ever shows in `Debug`.

#[path = "support/postgres.rs"]
mod pg;

use courier::config::{Config, EngineKind};
use courier::persistence::Journal;
use courier::persistence::WriteBatch;
use courier::persistence::postgres::Error as PgError;

fn config(url: &str, password_line: &str, schema: &str) -> Config {
    let text = format!(
        "[persistence]\nengine = \"postgres\"\n\n[persistence.postgres]\nurl = \"{url}\"\n\
         {password_line}\npool_size = 2\nstatement_timeout = \"5s\"\nschema = \"{schema}\"\n"
    );
    Config::from_str(&text).expect("valid configuration")
}

#[tokio::test]
async fn the_store_opens_from_the_file_with_the_password_from_a_file_or_a_variable() {
    let Some(url) = pg::url() else {
        return;
    };
    let password = std::env::var("COURIER_POSTGRES_PASSWORD").unwrap_or_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{password}\n")).expect("write");
    let schema = pg::new_schema();

    let from_file = config(&url, &format!("password_file = {:?}", file), &schema);
    assert_eq!(from_file.persistence.engine, EngineKind::Postgres);
    let store = from_file.persistence.open_postgres().await.expect("open");
    store
        .write(WriteBatch::new().put("cfg", "k", "v"))
        .await
        .expect("write");
    assert!(!format!("{:?}", store.settings()).contains(&password) || password.is_empty());

    let from_env = config(
        &url,
        "password_env = \"COURIER_POSTGRES_PASSWORD\"",
        &schema,
    );
    let again = from_env.persistence.open_postgres().await.expect("open");
    assert_eq!(
        again.kv_get("cfg", b"k").await.expect("read"),
        Some(b"v".to_vec())
    );

    if !password.is_empty() {
        std::fs::write(&file, "not-the-password\n").expect("write");
        let refused = from_file.persistence.open_postgres().await;
        assert!(
            matches!(refused, Err(PgError::Unavailable(_))),
            "a wrong password must be refused: {:?}",
            refused.err()
        );
    }
}
