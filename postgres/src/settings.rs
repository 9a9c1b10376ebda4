//! [`PostgresSettings`]: where the database is and how the store uses it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// The default number of pooled connections.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// The default statement timeout.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default schema.
pub const DEFAULT_SCHEMA: &str = "courier";

/// A password that is never printed: `Debug` shows `"***"`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A password given as it is.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password in the environment variable `name`.
    ///
    /// # Errors
    ///
    /// [`Error::PasswordEnv`] if it is not set or not Unicode.
    pub fn from_env(name: &str) -> Result<Self> {
        std::env::var(name)
            .map(Self)
            .map_err(|_| Error::PasswordEnv {
                name: name.to_owned(),
            })
    }

    /// The password in the file at `path`, without its trailing newline.
    ///
    /// # Errors
    ///
    /// [`Error::PasswordFile`] if the file cannot be read.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::PasswordFile {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self(text.trim_end_matches(['\r', '\n']).to_owned()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How to reach the database and how to use it.
///
/// ```
/// use std::time::Duration;
/// use courier::persistence::postgres::{Password, PostgresSettings};
///
/// let settings = PostgresSettings::new("postgres://courier@127.0.0.1:5432/courier")?
///     .with_password(Password::new("secret"))
///     .with_pool_size(4)?
///     .with_statement_timeout(Duration::from_secs(5))?;
/// assert!(!format!("{settings:?}").contains("secret"));
/// # Ok::<(), courier::persistence::postgres::Error>(())
/// ```
#[derive(Clone)]
pub struct PostgresSettings {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) pool_size: usize,
    pub(crate) statement_timeout: Duration,
    pub(crate) schema: String,
    pub(crate) max_group: usize,
}

impl PostgresSettings {
    /// Settings for the database at `url` (`postgres://user@host:port/db`,
    /// or the `key=value` form libpq accepts), with the defaults: pool of
    /// [`DEFAULT_POOL_SIZE`], [`DEFAULT_STATEMENT_TIMEOUT`], schema
    /// [`DEFAULT_SCHEMA`], a connect timeout of 10 s.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] if the URL does not parse, or asks for TLS
    /// (`sslmode=require`): this build connects in plain text only.
    pub fn new(url: &str) -> Result<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| Error::Settings {
            // The parser's message never repeats the password.
            reason: format!("the url does not parse: {e}"),
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(Error::Settings {
                reason: "the url asks for TLS (sslmode=require), which this build does not offer"
                    .into(),
            });
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("courier");
        Ok(Self {
            config,
            pool_size: DEFAULT_POOL_SIZE,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            schema: DEFAULT_SCHEMA.to_owned(),
            max_group: courier_persistence::MAX_GROUP,
        })
    }

    /// Uses `password` (instead of one in the URL).
    pub fn with_password(mut self, password: Password) -> Self {
        self.config.password(password.expose());
        self
    }

    /// At most `size` connections.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] if `size` is 0.
    pub fn with_pool_size(mut self, size: usize) -> Result<Self> {
        if size == 0 {
            return Err(Error::Settings {
                reason: "the pool size must be at least 1".into(),
            });
        }
        self.pool_size = size;
        Ok(self)
    }

    /// Every statement is cancelled by the server after `timeout`; the
    /// store also gives up waiting for a connection after it.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] if it is zero or longer than a day.
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Result<Self> {
        if timeout.is_zero() || timeout > Duration::from_secs(86_400) {
            return Err(Error::Settings {
                reason: format!("the statement timeout {timeout:?} is not within 1ms..=1d"),
            });
        }
        self.statement_timeout = timeout;
        Ok(self)
    }

    /// Keeps the tables in `schema` (created if missing): one database can
    /// hold several independent courier stores.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] unless the name is 1 to 63 characters of
    /// lowercase ASCII letters, digits and `_`, starting with a letter or `_`.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Result<Self> {
        let schema = schema.into();
        let valid = (1..=63).contains(&schema.len())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(Error::Settings {
                reason: format!(
                    "the schema {schema:?} must be 1 to 63 of a-z, 0-9 and _, not starting with a digit"
                ),
            });
        }
        self.schema = schema;
        Ok(self)
    }

    /// At most `max` writes share one transaction (group commit).
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] if `max` is 0.
    pub fn with_max_group(mut self, max: usize) -> Result<Self> {
        if max == 0 {
            return Err(Error::Settings {
                reason: "the group commit maximum must be at least 1".into(),
            });
        }
        self.max_group = max;
        Ok(self)
    }

    /// Names the store's connections (`application_name`, shown in
    /// `pg_stat_activity`), for example after the node. Default `courier`.
    pub fn with_application_name(mut self, name: &str) -> Self {
        self.config.application_name(name);
        self
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's own `Debug` redacts the password.
        f.debug_struct("PostgresSettings")
            .field("user", &self.config.get_user())
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("dbname", &self.config.get_dbname())
            .field("password", &self.config.get_password().map(|_| "***"))
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("schema", &self.schema)
            .field("max_group", &self.max_group)
            .finish()
    }
}
