//! [`Config`](crate::config::Config): courier's settings from one TOML file, for every layer.
//!
//! The file spans the layers (persistence, delivery, remote), so it is read
//! here, in the facade; each crate keeps its own typed settings
//! ([`OutboxSettings`](crate::delivery::OutboxSettings),
//! [`PersistentSettings`](crate::persistence::PersistentSettings),
//! [`RemoteSettings`](courier_remote::RemoteSettings)) with its own checks.
//!
//! ```toml
//! [persistence]
//! path = "data/courier"
//!
//! [snapshots]
//! every = 1000
//!
//! [delivery]
//! redeliver_interval = "250ms"
//!
//! [delivery.actor.billing]     # overrides for the sender named "billing"
//! max_attempts = 20
//! ```
//!
//! Every key is optional and defaults as documented in
//! `examples/courier.toml`. Unknown keys, wrong types and invalid values are
//! errors that name the key and its line.
//!
//! Every duration is bounded, so that no value can overflow the timers and
//! clocks it feeds: `redeliver_interval` and `backoff.max` are at most
//! [`MAX_REDELIVERY_DELAY`](crate::delivery::MAX_REDELIVERY_DELAY) (1 day),
//! `expire_after` at most
//! [`MAX_EXPIRE_AFTER`](crate::delivery::MAX_EXPIRE_AFTER) (10 years),
//! `remote.reconnect_max` at most
//! [`MAX_RECONNECT_DELAY`](courier_remote::MAX_RECONNECT_DELAY) (1 hour).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use courier_delivery::{MAX_EXPIRE_AFTER, MAX_REDELIVERY_DELAY, OutboxSettings, Redelivery};
#[cfg(feature = "sled")]
use courier_persistence::SledStore;
use courier_persistence::{PersistentSettings, SnapshotPolicy};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// Why a configuration could not be read.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration is not valid; the message names the key and line.
    #[error("invalid configuration in {origin}: {message}")]
    Invalid {
        /// The file, or `<string>`.
        origin: String,
        /// What is wrong, where.
        message: String,
    },
    /// The file could not be read.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// All of courier's settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[persistence]`: where and how journals are stored.
    #[serde(default)]
    pub persistence: PersistenceConfig,
    /// `[snapshots]`: when event-sourced actors take snapshots.
    #[serde(default)]
    pub snapshots: SnapshotSettings,
    /// `[delivery]`: at-least-once delivery.
    #[serde(default)]
    pub delivery: DeliverySettings,
    /// `[remote]`: this process as a node of a cluster (absent: no node;
    /// feature `remote`).
    #[cfg(feature = "remote")]
    #[serde(default)]
    pub remote: Option<Spanned<RemoteConfig>>,
}

/// `[remote]`: a node's name, address, credentials and limits.
#[cfg(feature = "remote")]
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// This node's name (ASCII letters, digits, `-`, `_`, `.`). Required.
    pub node: String,
    /// Where to listen. Default `"127.0.0.1:0"` (loopback, any free port).
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// The secret all nodes of the cluster share, at least 16 bytes.
    /// Required. Keep the file private.
    pub secret: String,
    /// The largest frame sent or accepted, in bytes. Default 4194304
    /// (4 MiB), at least 1024, at most 67108864 (64 MiB).
    #[serde(default = "default_max_frame")]
    pub max_frame: usize,
    /// The first delay before reconnecting to a peer. Default `"100ms"`;
    /// more than zero.
    #[serde(default = "default_reconnect_min", with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// The longest delay before reconnecting. Default `"10s"`; at least
    /// `reconnect_min`, at most `"1h"`.
    #[serde(default = "default_reconnect_max", with = "humantime_serde")]
    pub reconnect_max: Duration,
}

/// The remote layer's own defaults, defined once in `RemoteSettings::new`.
#[cfg(feature = "remote")]
fn remote_defaults() -> courier_remote::RemoteSettings {
    courier_remote::RemoteSettings::new("", "")
}

#[cfg(feature = "remote")]
fn default_listen() -> std::net::SocketAddr {
    remote_defaults().listen
}

#[cfg(feature = "remote")]
fn default_max_frame() -> usize {
    remote_defaults().max_frame
}

#[cfg(feature = "remote")]
fn default_reconnect_min() -> Duration {
    remote_defaults().reconnect_min
}

#[cfg(feature = "remote")]
fn default_reconnect_max() -> Duration {
    remote_defaults().reconnect_max
}

#[cfg(feature = "remote")]
impl RemoteConfig {
    /// These settings as the remote crate takes them.
    pub fn settings(&self) -> courier_remote::RemoteSettings {
        let mut settings = courier_remote::RemoteSettings::new(&self.node, &self.secret);
        settings.listen = self.listen;
        settings.max_frame = self.max_frame;
        settings.reconnect_min = self.reconnect_min;
        settings.reconnect_max = self.reconnect_max;
        settings
    }

    /// The remote crate's own checks, reported with the section's line.
    fn validate(&self, text: &str, span: Range<usize>) -> std::result::Result<(), String> {
        match self.settings().validate() {
            Ok(()) => Ok(()),
            Err(courier_remote::Error::Settings { setting, reason }) => Err(format!(
                "invalid value in `[remote]` at line {}: `remote.{setting}` must be {reason}",
                line_of(text, span)
            )),
            Err(other) => Err(format!(
                "invalid `[remote]` at line {}: {other}",
                line_of(text, span)
            )),
        }
    }
}

/// `[persistence]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    /// The sled directory. Default `"courier-data"`.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The flush policy: at most this many writes share one flush (group
    /// commit). Every write is flushed before it is acknowledged; this only
    /// bounds how many wait for the same flush. Default 4096, at least 1.
    #[serde(default = "default_group", deserialize_with = "positive_usize")]
    pub group_commit_max: usize,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            path: default_path(),
            group_commit_max: default_group(),
        }
    }
}

impl PersistenceConfig {
    /// Opens the sled store at `path` with this flush policy. Must be called
    /// within a tokio runtime.
    ///
    /// # Errors
    ///
    /// The store's error if sled cannot open the directory, or if it finds
    /// acknowledged writes missing.
    #[cfg(feature = "sled")]
    pub fn open(&self) -> courier_persistence::Result<SledStore> {
        SledStore::open_with_max_group(&self.path, self.group_commit_max)
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

impl Config {
    /// Reads and validates a TOML file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] if the file cannot be read,
    /// [`ConfigError::Invalid`] (naming the file, key and line) if it is not
    /// valid.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            context: format!("reading config file {}", path.display()),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            origin: path.display().to_string(),
            message,
        })
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`], naming the key and line, if it is not
    /// valid.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<Self> {
        Self::parse(text).map_err(|message| ConfigError::Invalid {
            origin: "<string>".to_owned(),
            message,
        })
    }

    fn parse(text: &str) -> std::result::Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate(text)?;
        Ok(config)
    }

    fn validate(&self, text: &str) -> std::result::Result<(), String> {
        for (name, o) in &self.delivery.actor {
            if let Some(nested) = o.get_ref().actor.values().next() {
                return Err(nested_override(
                    text,
                    &format!("delivery.actor.{name}"),
                    nested.span(),
                ));
            }
        }
        for (name, o) in &self.snapshots.actor {
            if let Some(nested) = o.get_ref().actor.values().next() {
                return Err(nested_override(
                    text,
                    &format!("snapshots.actor.{name}"),
                    nested.span(),
                ));
            }
        }
        #[cfg(feature = "remote")]
        if let Some(remote) = &self.remote {
            remote.get_ref().validate(text, remote.span())?;
        }
        check_backoff(text, "delivery", &self.delivery, None)?;
        for (name, settings) in &self.delivery.actor {
            check_backoff(
                text,
                &format!("delivery.actor.{name}"),
                settings.get_ref(),
                Some(&self.delivery),
            )?;
        }
        Ok(())
    }

    /// The outbox settings for the sender named `name`: its overrides, else
    /// the defaults.
    pub fn outbox(&self, name: &str) -> OutboxSettings {
        let d = &self.delivery;
        let o = self.delivery.actor.get(name).map(Spanned::get_ref);
        let interval = o
            .and_then(|o| o.redeliver_interval)
            .or(d.redeliver_interval)
            .unwrap_or(Duration::from_secs(5));
        let backoff = o
            .and_then(|o| o.backoff.as_ref())
            .or(d.backoff.as_ref())
            .map(Spanned::get_ref);
        let defaults = OutboxSettings::default();
        OutboxSettings {
            redelivery: redelivery(interval, backoff),
            burst_limit: o
                .and_then(|o| o.redelivery_burst_limit)
                .or(d.redelivery_burst_limit)
                .unwrap_or(defaults.burst_limit),
            warn_after_attempts: o
                .and_then(|o| o.warn_after_attempts)
                .or(d.warn_after_attempts)
                .unwrap_or(defaults.warn_after_attempts),
            max_unconfirmed: o
                .and_then(|o| o.max_unconfirmed)
                .or(d.max_unconfirmed)
                .unwrap_or(defaults.max_unconfirmed),
            max_attempts: o.and_then(|o| o.max_attempts).or(d.max_attempts),
            expire_after: o.and_then(|o| o.expire_after).or(d.expire_after),
        }
    }

    /// The persistence settings (snapshots) for persistence id `id`.
    pub fn persistent(&self, id: &str) -> PersistentSettings {
        let d = &self.snapshots;
        let o = self.snapshots.actor.get(id).map(Spanned::get_ref);
        let every = o.and_then(|o| o.every).or(d.every);
        let keep = o.and_then(|o| o.keep).or(d.keep);
        let delete = o.and_then(|o| o.delete_events).or(d.delete_events);
        let mut policy = SnapshotPolicy::default();
        if let Some(n) = every {
            policy = SnapshotPolicy::every(n);
        }
        if let Some(k) = keep {
            policy = policy.keep(k);
        }
        if let Some(delete) = delete {
            policy = policy.delete_events(delete);
        }
        PersistentSettings {
            snapshots: policy,
            ..PersistentSettings::default()
        }
    }
}

fn redelivery(interval: Duration, backoff: Option<&BackoffSettings>) -> Redelivery {
    match backoff {
        Some(b) if b.kind == BackoffKind::Exponential => Redelivery::Backoff {
            min: interval,
            max: b.max.unwrap_or(Duration::from_secs(60)).max(interval),
            jitter: b.jitter.unwrap_or(0.2),
        },
        _ => Redelivery::Fixed { interval },
    }
}

fn check_backoff(
    text: &str,
    table: &str,
    settings: &DeliverySettings,
    defaults: Option<&DeliverySettings>,
) -> std::result::Result<(), String> {
    let interval = settings
        .redeliver_interval
        .or(defaults.and_then(|d| d.redeliver_interval))
        .unwrap_or(Duration::from_secs(5));
    let backoff = settings
        .backoff
        .as_ref()
        .or(defaults.and_then(|d| d.backoff.as_ref()));
    let Some(backoff) = backoff else {
        return Ok(());
    };
    if backoff.get_ref().kind != BackoffKind::Exponential {
        return Ok(());
    }
    let max = backoff.get_ref().max.unwrap_or(Duration::from_secs(60));
    if max < interval {
        return Err(format!(
            "invalid value at line {}: `{table}.backoff.max` ({max:?}) is below `redeliver_interval` ({interval:?})",
            line_of(text, backoff.span()),
        ));
    }
    Ok(())
}

fn nested_override(text: &str, table: &str, span: Range<usize>) -> String {
    format!(
        "unexpected key at line {}: `{table}.actor`: overrides cannot have overrides",
        line_of(text, span)
    )
}

fn line_of(text: &str, span: Range<usize>) -> usize {
    text.get(..span.start)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

fn positive<'de, D, T>(deserializer: D, what: &str) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialEq + Default,
{
    let value = T::deserialize(deserializer)?;
    if value == T::default() {
        return Err(serde::de::Error::custom(format!("must be {what}")));
    }
    Ok(value)
}

fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    positive(d, "at least 1")
}

fn positive_usize_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<usize>, D::Error> {
    positive(d, "at least 1").map(Some)
}

fn positive_u32_opt<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    positive(d, "at least 1").map(Some)
}

fn positive_u64_opt<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    positive(d, "at least 1").map(Some)
}

/// A duration more than zero and at most `max` (written `max_text`).
fn bounded_duration<'de, D: Deserializer<'de>>(
    d: D,
    max: Duration,
    max_text: &str,
) -> std::result::Result<Option<Duration>, D::Error> {
    let duration: Duration = humantime_serde::deserialize(d)?;
    if duration.is_zero() {
        return Err(serde::de::Error::custom(
            "must be more than zero (for example \"250ms\" or \"5s\")",
        ));
    }
    if duration > max {
        return Err(serde::de::Error::custom(format!(
            "must be at most {max_text}, got {duration:?}"
        )));
    }
    Ok(Some(duration))
}

fn redelivery_delay_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    bounded_duration(d, MAX_REDELIVERY_DELAY, "\"1d\" (1 day)")
}

fn expiry_opt<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Duration>, D::Error> {
    bounded_duration(d, MAX_EXPIRE_AFTER, "\"10y\" (10 years)")
}

fn fraction_opt<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    let value = f64::deserialize(d)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "must be between 0.0 and 1.0, got {value}"
        )));
    }
    Ok(Some(value))
}

// The tests cover the `[remote]` section too.
#[cfg(all(test, feature = "remote"))]
mod tests;
