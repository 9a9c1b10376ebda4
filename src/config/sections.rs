//! The sections of the file that the persistence and delivery layers read:
//! `[persistence]`, `[snapshots]`, `[delivery]` and their per-actor
//! overrides.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(any(feature = "sled", feature = "fjall"))]
use courier_persistence::{DurableStore, StoreOptions};
use serde::Deserialize;
use toml::Spanned;

use super::values::{
    expiry_opt, fraction_opt, positive_u32_opt, positive_u64_opt, positive_usize,
    positive_usize_opt, redelivery_delay_opt,
};

/// `[persistence]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    /// Which store holds journals, snapshots, outboxes and inboxes:
    /// `"sled"` (the default) or `"fjall"` (needs courier's `fjall`
    /// feature), embedded in `path`, or `"postgres"`, the shared store of
    /// `[persistence.postgres]` (needs the `postgres` feature).
    #[serde(default)]
    pub engine: EngineKind,
    /// The embedded engine's directory. Default `"courier-data"`.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The engine's block cache in bytes, what bounds the memory a long
    /// replay takes. Default: unset, the engine's own (1 GiB for sled,
    /// 32 MiB for fjall); at least 1.
    #[serde(default, deserialize_with = "positive_u64_opt")]
    pub cache_capacity: Option<u64>,
    /// The flush policy: at most this many writes share one flush (group
    /// commit). Every write is flushed before it is acknowledged; this only
    /// bounds how many wait for the same flush. Default 4096, at least 1.
    #[serde(default = "default_group", deserialize_with = "positive_usize")]
    pub group_commit_max: usize,
    /// `[persistence.postgres]`, for `engine = "postgres"`.
    #[serde(default)]
    pub postgres: super::PostgresConfig,
}

/// `[persistence] engine`: one of the embedded engines
/// ([`courier_persistence::EngineKind`]) or the shared PostgreSQL store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EngineKind {
    /// The embedded sled engine in `path` (feature `sled`, the default).
    #[default]
    Sled,
    /// The embedded fjall engine in `path` (feature `fjall`).
    Fjall,
    /// The shared PostgreSQL store of `[persistence.postgres]` (feature
    /// `postgres`).
    Postgres,
}

impl EngineKind {
    /// The embedded engine this names; `None` for PostgreSQL.
    pub fn embedded(self) -> Option<courier_persistence::EngineKind> {
        match self {
            Self::Sled => Some(courier_persistence::EngineKind::Sled),
            Self::Fjall => Some(courier_persistence::EngineKind::Fjall),
            Self::Postgres => None,
        }
    }

    /// Its name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Fjall => "fjall",
            Self::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    /// `"sled"`, `"fjall"` or `"postgres"`, as in the file.
    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Sled, Self::Fjall, Self::Postgres]
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("{s:?} is not an engine (expected sled, fjall or postgres)"))
    }
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            engine: EngineKind::default(),
            postgres: super::PostgresConfig::default(),
            path: default_path(),
            cache_capacity: None,
            group_commit_max: default_group(),
        }
    }
}

impl PersistenceConfig {
    /// Opens the store at `path` on the configured embedded engine, with
    /// its cache capacity and flush policy. Must be called within a tokio
    /// runtime. (`engine = "postgres"` is opened with `open_postgres`.)
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](courier_persistence::Error::Invalid) if this build
    /// lacks the engine (its feature is off) or the engine is PostgreSQL;
    /// the store's error if the engine cannot open the directory, or if it
    /// finds acknowledged writes missing.
    #[cfg(any(feature = "sled", feature = "fjall"))]
    pub fn open(&self) -> courier_persistence::Result<DurableStore> {
        let Some(kind) = self.engine.embedded() else {
            return Err(courier_persistence::Error::Invalid {
                what: "persistence.engine",
                reason: format!(
                    "\"{}\" is not an embedded engine: open it with `open_postgres`",
                    self.engine
                ),
            });
        };
        let options = StoreOptions::new().max_group(self.group_commit_max);
        DurableStore::open_engine(kind, &self.path, self.cache_capacity, options)
    }

    /// Opens the store as [`open`](Self::open) does and makes it the
    /// default journal and snapshot store of `system`
    /// ([`Persistence`](courier_persistence::Persistence)): the one its
    /// persistent actors use when their props name none (Akka's journal
    /// plugin from `application.conf`). Returns it for the senders and
    /// receivers that take a journal.
    ///
    /// ```
    /// use courier::config::Config;
    /// use courier::persistence::Persistence;
    /// use courier::ActorSystem;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> anyhow::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data").display().to_string().replace('\\', "/");
    /// let config = Config::from_str(&format!("[persistence]\npath = \"{path}\"\n"))?;
    /// let system = ActorSystem::new("docs");
    /// let store = config.persistence.open_as_default(&system)?;
    /// assert!(Persistence::of(&system).journal().is_some());
    /// # drop(store);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); the system's defaults are then unchanged.
    #[cfg(any(feature = "sled", feature = "fjall"))]
    pub fn open_as_default(
        &self,
        system: &courier_core::ActorSystem,
    ) -> courier_persistence::Result<std::sync::Arc<DurableStore>> {
        let store = std::sync::Arc::new(self.open()?);
        courier_persistence::Persistence::of(system).set_store(std::sync::Arc::clone(&store));
        Ok(store)
    }
}

fn default_path() -> PathBuf {
    PathBuf::from("courier-data")
}

fn default_group() -> usize {
    courier_persistence::MAX_GROUP
}

/// `[snapshots]`, and per-actor overrides in `[snapshots.actor.<name>]`
/// (the same keys; each unset key falls back to `[snapshots]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    /// Overrides by persistence id (only in `[snapshots]` itself).
    #[serde(default)]
    pub actor: BTreeMap<String, Spanned<SnapshotSettings>>,
    /// Take a snapshot every this many events. Default: never.
    #[serde(default, deserialize_with = "positive_u64_opt")]
    pub every: Option<u64>,
    /// Keep this many snapshots. Default 2, at least 1.
    #[serde(default, deserialize_with = "positive_usize_opt")]
    pub keep: Option<usize>,
    /// Delete events covered by the oldest kept snapshot. Default false.
    #[serde(default)]
    pub delete_events: Option<bool>,
}

/// `[delivery]`, and per-sender overrides in `[delivery.actor.<name>]`
/// (the same keys; each unset key falls back to `[delivery]`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Overrides by sender name (only in `[delivery]` itself).
    #[serde(default)]
    pub actor: BTreeMap<String, Spanned<DeliverySettings>>,
    /// Time before an unconfirmed delivery is sent again (with backoff: the
    /// first delay). Default `"5s"`, more than zero, at most `"1d"`.
    #[serde(default, deserialize_with = "redelivery_delay_opt")]
    pub redeliver_interval: Option<Duration>,
    /// Fixed interval or exponential backoff. Default fixed.
    #[serde(default)]
    pub backoff: Option<Spanned<BackoffSettings>>,
    /// At most this many deliveries sent per tick. Default 10000, at least 1.
    #[serde(default, deserialize_with = "positive_usize_opt")]
    pub redelivery_burst_limit: Option<usize>,
    /// Warn about a delivery unconfirmed after this many sends. Default 5,
    /// at least 1.
    #[serde(default, deserialize_with = "positive_u32_opt")]
    pub warn_after_attempts: Option<u32>,
    /// At most this many unconfirmed deliveries. Default 100000, at least 1.
    #[serde(default, deserialize_with = "positive_usize_opt")]
    pub max_unconfirmed: Option<usize>,
    /// Park a delivery after this many sends. Default: never.
    #[serde(default, deserialize_with = "positive_u32_opt")]
    pub max_attempts: Option<u32>,
    /// Park a delivery this long after it was accepted. Default: never;
    /// more than zero, at most `"10y"`.
    #[serde(default, deserialize_with = "expiry_opt")]
    pub expire_after: Option<Duration>,
}

/// `backoff = { kind = "exponential", max = "1m", jitter = 0.2 }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSettings {
    /// `"fixed"` or `"exponential"`.
    pub kind: BackoffKind,
    /// The longest delay (exponential only). Default `"1m"`; at least
    /// `redeliver_interval`, at most `"1d"`.
    #[serde(default, deserialize_with = "redelivery_delay_opt")]
    pub max: Option<Duration>,
    /// Spread of each delay as a fraction, `0.0..=1.0` (exponential only).
    /// Default 0.2.
    #[serde(default, deserialize_with = "fraction_opt")]
    pub jitter: Option<f64>,
}

/// The shape of the redelivery schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffKind {
    /// The same interval every time.
    Fixed,
    /// Doubling from the interval up to `max`.
    Exponential,
}
