//! `[persistence.postgres]`: the shared PostgreSQL store, used when
//! `[persistence] engine = "postgres"`.
//!
//! The table is read in every build (it is only data), so that one file
//! serves every node; opening the store needs the `postgres` feature. The
//! password never sits in the file: it comes from an environment variable
//! (`password_env`) or a file (`password_file`, as container secrets are
//! mounted), and `Debug` never prints it, nor a password left in the URL.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::values::{bounded_duration, positive_usize};

/// The longest `statement_timeout`.
const MAX_STATEMENT_TIMEOUT: Duration = Duration::from_secs(86_400);

/// `[persistence.postgres]`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The database, as `postgres://user@host:port/dbname` (better without
    /// the password: see `password_env` and `password_file`). Required
    /// when `engine = "postgres"`.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The file holding the password (its trailing newline is dropped).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// At most this many connections per node. Default 8, at least 1.
    #[serde(default = "default_pool_size", deserialize_with = "positive_usize")]
    pub pool_size: usize,
    /// The server cancels any statement running longer; a lost commit is
    /// also resolved within it. Default `"30s"`, more than zero, at most
    /// `"1d"`.
    #[serde(
        default = "default_statement_timeout",
        deserialize_with = "statement_timeout"
    )]
    pub statement_timeout: Duration,
    /// The schema holding courier's tables (created if missing). Default
    /// `"courier"`; 1 to 63 of `a-z`, `0-9`, `_`, not starting with a digit.
    #[serde(default = "default_schema", deserialize_with = "schema_name")]
    pub schema: String,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: None,
            password_env: None,
            password_file: None,
            pool_size: default_pool_size(),
            statement_timeout: default_statement_timeout(),
            schema: default_schema(),
        }
    }
}

/// A URL with any password in it replaced by `***`.
fn redacted(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            let user = userinfo.split(':').next().unwrap_or_default();
            let shown = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            return format!("{scheme}://{shown}@{host}{}", redact_query(path));
        }
        return format!("{scheme}://{authority}{}", redact_query(path));
    }
    // The `key=value` form.
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn redact_query(path: &str) -> String {
    let Some((before, query)) = path.split_once('?') else {
        return path.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{before}?{}", query.join("&"))
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url.as_deref().map(redacted))
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("schema", &self.schema)
            .finish()
    }
}

fn default_pool_size() -> usize {
    8
}

fn default_statement_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_schema() -> String {
    "courier".to_owned()
}

fn statement_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    bounded_duration(d, MAX_STATEMENT_TIMEOUT, "\"1d\" (1 day)")
        .map(|d| d.unwrap_or_else(default_statement_timeout))
}

fn schema_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let schema = String::deserialize(d)?;
    let valid = (1..=63).contains(&schema.len())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(serde::de::Error::custom(format!(
            "{schema:?} must be 1 to 63 of a-z, 0-9 and _, not starting with a digit"
        )));
    }
    Ok(schema)
}

#[cfg(feature = "postgres")]
impl PostgresConfig {
    /// The store's settings, with the password read from its variable or
    /// file, and at most `max_group` writes per transaction.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`](courier_postgres::Error::Settings) without a
    /// `url`, with both `password_env` and `password_file`, or with a URL
    /// that does not parse; the password's
    /// [`PasswordEnv`](courier_postgres::Error::PasswordEnv) /
    /// [`PasswordFile`](courier_postgres::Error::PasswordFile).
    pub fn settings(
        &self,
        max_group: usize,
    ) -> courier_postgres::Result<courier_postgres::PostgresSettings> {
        use courier_postgres::{Error, Password, PostgresSettings};
        let Some(url) = &self.url else {
            return Err(Error::Settings {
                reason: "`persistence.postgres.url` is required with engine = \"postgres\"".into(),
            });
        };
        let mut settings = PostgresSettings::new(url)?
            .with_pool_size(self.pool_size)?
            .with_statement_timeout(self.statement_timeout)?
            .with_schema(self.schema.clone())?
            .with_max_group(max_group)?;
        match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(Error::Settings {
                    reason: "give `persistence.postgres.password_env` or `password_file`, not both"
                        .into(),
                });
            }
            (Some(name), None) => settings = settings.with_password(Password::from_env(name)?),
            (None, Some(path)) => settings = settings.with_password(Password::from_file(path)?),
            (None, None) => {}
        }
        Ok(settings)
    }
}

#[cfg(feature = "postgres")]
impl super::PersistenceConfig {
    /// Opens the PostgreSQL store of `[persistence.postgres]` (whatever
    /// `engine` says: the caller chooses by looking at it). Must be called
    /// within a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`PostgresConfig::settings`] and
    /// [`PostgresStore::open`](courier_postgres::PostgresStore::open).
    ///
    /// # Cancel safety
    ///
    /// As [`PostgresStore::open`](courier_postgres::PostgresStore::open).
    pub async fn open_postgres(&self) -> courier_postgres::Result<courier_postgres::PostgresStore> {
        let settings = self.postgres.settings(self.group_commit_max)?;
        courier_postgres::PostgresStore::open(settings).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_never_printed() {
        for url in [
            "postgres://courier:s3cret@db:5432/courier",
            "postgres://courier@db/courier?password=s3cret&sslmode=disable",
            "host=db user=courier password=s3cret",
        ] {
            let config = PostgresConfig {
                url: Some(url.to_owned()),
                ..PostgresConfig::default()
            };
            let shown = format!("{config:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        assert_eq!(
            redacted("postgres://courier@db:5432/courier"),
            "postgres://courier@db:5432/courier"
        );
    }

    #[test]
    fn the_table_parses_and_bad_values_name_their_key() {
        use crate::config::{Config, ConfigError, EngineKind};
        let config = Config::from_str(
            "[persistence]\nengine = \"postgres\"\n[persistence.postgres]\n\
             url = \"postgres://courier@127.0.0.1:5432/courier\"\npool_size = 3\n\
             statement_timeout = \"2s\"\nschema = \"orders_1\"\n",
        )
        .expect("valid");
        assert_eq!(config.persistence.engine, EngineKind::Postgres);
        let pg = &config.persistence.postgres;
        assert_eq!(pg.pool_size, 3);
        assert_eq!(pg.statement_timeout, Duration::from_secs(2));
        assert_eq!(pg.schema, "orders_1");
        for (text, key) in [
            ("[persistence]\nengine = \"mysql\"\n", "persistence.engine"),
            (
                "[persistence.postgres]\npool_size = 0\n",
                "persistence.postgres.pool_size",
            ),
            (
                "[persistence.postgres]\nstatement_timeout = \"0s\"\n",
                "persistence.postgres.statement_timeout",
            ),
            (
                "[persistence.postgres]\nschema = \"Bad-Name\"\n",
                "persistence.postgres.schema",
            ),
            (
                "[persistence.postgres]\npassword = \"x\"\n",
                "persistence.postgres",
            ),
        ] {
            let error = Config::from_str(text).expect_err(text);
            assert!(
                matches!(&error, ConfigError::Invalid { key: Some(k), line: Some(_), .. } if k.starts_with(key)),
                "{text}: {error:?}"
            );
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn settings_take_the_password_from_a_variable_or_a_file_and_never_show_it() {
        let dir = std::env::temp_dir().join(format!("courier-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("password");
        std::fs::write(&file, "from-the-file\n").expect("write");
        let mut config = PostgresConfig {
            url: Some("postgres://courier@127.0.0.1/courier".into()),
            password_file: Some(file.clone()),
            ..PostgresConfig::default()
        };
        let settings = config.settings(16).expect("settings");
        assert!(!format!("{settings:?}").contains("from-the-file"));
        let missing = PostgresConfig {
            password_file: None,
            password_env: Some("COURIER_TEST_NO_SUCH_PASSWORD_VARIABLE".into()),
            ..config.clone()
        };
        assert!(matches!(
            missing.settings(16),
            Err(courier_postgres::Error::PasswordEnv { .. })
        ));
        config.password_env = Some("HOME".into());
        assert!(matches!(
            config.settings(16),
            Err(courier_postgres::Error::Settings { .. })
        ));
        config.password_env = None;
        config.url = None;
        assert!(matches!(
            config.settings(16),
            Err(courier_postgres::Error::Settings { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
