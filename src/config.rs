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

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_delivery::{AtLeastOnce, OutboxSettings, Outgoing, Redelivery};
use courier_persistence::Journal;
use courier_persistence::{
    Persistent, PersistentProps, PersistentSettings, SnapshotForm, SnapshotPolicy,
};
use serde::Deserialize;
use toml::Spanned;

mod postgres;
#[cfg(feature = "remote")]
mod remote;
mod sections;
mod values;

pub use postgres::PostgresConfig;
#[cfg(feature = "remote")]
pub use remote::RemoteConfig;
pub use sections::{
    BackoffKind, BackoffSettings, DeliverySettings, EngineKind, PersistenceConfig, SnapshotSettings,
};
use values::line_of;

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration is not valid: `key` (when known) at `line` (when
    /// known) is wrong for `reason`.
    #[error("invalid configuration in {origin}{}: {reason}", at(key.as_deref(), *line))]
    Invalid {
        /// The file, or `<string>`.
        origin: String,
        /// The dotted key at fault, as in `delivery.actor.billing.max_attempts`
        /// (`None` when the text is not TOML at all).
        key: Option<String>,
        /// The 1-based line of the key (or of its table).
        line: Option<usize>,
        /// What is wrong with it.
        reason: String,
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

/// `` `key` at line N``, as far as they are known.
fn at(key: Option<&str>, line: Option<usize>) -> String {
    match (key, line) {
        (Some(key), Some(line)) => format!(": `{key}` at line {line}"),
        (Some(key), None) => format!(": `{key}`"),
        (None, Some(line)) => format!(" at line {line}"),
        (None, None) => String::new(),
    }
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// What is wrong, before the origin is known.
struct Invalid {
    key: Option<String>,
    line: Option<usize>,
    reason: String,
}

impl Invalid {
    fn into_error(self, origin: String) -> ConfigError {
        ConfigError::Invalid {
            origin,
            key: self.key,
            line: self.line,
            reason: self.reason,
        }
    }

    /// toml's own error: its span gives the line, the path the key.
    fn from_toml(text: &str, error: &toml::de::Error, path: Option<String>) -> Self {
        let mut key = path;
        // An unknown key at the top has no path: name the key itself.
        if key.is_none() {
            key = error
                .message()
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| name.to_owned());
        }
        Invalid {
            key,
            line: error.span().map(|span| line_of(text, span)),
            reason: error.message().trim_end().to_owned(),
        }
    }
}

/// The dotted path of a key, without the segments that `toml::Spanned`
/// adds on the way; `None` for the root.
fn dotted(path: &serde_path_to_error::Path) -> Option<String> {
    let segments: Vec<String> = path
        .iter()
        .map(ToString::to_string)
        .filter(|segment| !segment.starts_with("$__") && segment != "?")
        .collect();
    (!segments.is_empty()).then(|| segments.join("."))
}

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
    /// `[admin]`: who may repair through this process's admin endpoint
    /// (absent: read-only; feature `admin`). See
    /// [`Config::admin_settings`].
    #[cfg(feature = "admin")]
    #[serde(default)]
    pub admin: Option<Spanned<courier_admin::AdminSettings>>,
    /// Which per-actor overrides were asked for, shared by clones.
    #[serde(skip)]
    names: NameUse,
}

/// The sections of per-actor overrides: `[delivery.actor.<name>]` and
/// `[snapshots.actor.<id>]`, by the name they override.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Overrides {
    Delivery,
    Snapshots,
}

impl Overrides {
    fn section(self, name: &str) -> String {
        match self {
            Self::Delivery => format!("[delivery.actor.{name}]"),
            Self::Snapshots => format!("[snapshots.actor.{name}]"),
        }
    }
}

#[derive(Default)]
struct Used {
    /// The override sections of the file this configuration was read from.
    declared: BTreeSet<(Overrides, String)>,
    asked: BTreeSet<(Overrides, String)>,
    reported: BTreeSet<(Overrides, String)>,
}

impl Used {
    /// Logs a WARN for each of `keys` not asked for nor reported yet, and
    /// marks it reported; the sections it warned about.
    fn warn(&mut self, keys: impl IntoIterator<Item = (Overrides, String)>) -> Vec<String> {
        let mut warned = Vec::new();
        for key in keys {
            if self.asked.contains(&key) || self.reported.contains(&key) {
                continue;
            }
            let section = key.0.section(&key.1);
            tracing::warn!(
                section = %section,
                "per-actor override used by no sender or persistence id (misspelt name?)"
            );
            warned.push(section);
            self.reported.insert(key);
        }
        warned
    }
}

/// The last clone of a configuration is gone: whatever override of its file
/// nothing asked for was never used, and says so (unless
/// [`Config::warn_unused_overrides`] already did).
impl Drop for Used {
    fn drop(&mut self) {
        let declared = std::mem::take(&mut self.declared);
        self.warn(declared);
    }
}

/// The names whose settings were asked for. Not part of the configuration's
/// value: two configs with the same settings are equal, whatever was asked.
#[derive(Clone, Default)]
struct NameUse(Arc<Mutex<Used>>);

impl NameUse {
    fn asked(&self, kind: Overrides, name: &str) {
        courier_core::sync::lock(&self.0)
            .asked
            .insert((kind, name.to_owned()));
    }
}

impl PartialEq for NameUse {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for NameUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameUse")
    }
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
        Self::parse(&text).map_err(|invalid| invalid.into_error(path.display().to_string()))
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`], naming the key and line, if it is not
    /// valid.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<Self> {
        Self::parse(text).map_err(|invalid| invalid.into_error("<string>".to_owned()))
    }

    fn parse(text: &str) -> std::result::Result<Self, Invalid> {
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| Invalid::from_toml(text, &e, None))?;
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = dotted(e.path());
            Invalid::from_toml(text, e.inner(), path)
        })?;
        config.validate(text)?;
        courier_core::sync::lock(&config.names.0).declared = config.overrides().collect();
        Ok(config)
    }

    fn validate(&self, text: &str) -> std::result::Result<(), Invalid> {
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
        #[cfg(feature = "admin")]
        if let Some(admin) = &self.admin {
            admin.get_ref().validate().map_err(|reason| Invalid {
                key: Some("admin.repair".to_owned()),
                line: Some(line_of(text, admin.span())),
                reason,
            })?;
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

    /// The `[admin]` section's settings for
    /// [`AdminService::new`](courier_admin::AdminService::new): who may
    /// repair (read-only when the section is absent).
    ///
    /// ```
    /// use courier::config::Config;
    ///
    /// let config = Config::from_str("[admin]\nrepair = [\"operator\"]\n")?;
    /// assert_eq!(config.admin_settings().repair, ["operator"]);
    /// assert!(Config::from_str("")?.admin_settings().repair.is_empty());
    /// # Ok::<(), courier::config::ConfigError>(())
    /// ```
    #[cfg(feature = "admin")]
    pub fn admin_settings(&self) -> courier_admin::AdminSettings {
        self.admin
            .as_ref()
            .map(|admin| admin.get_ref().clone())
            .unwrap_or_default()
    }

    /// The at-least-once sender named `name` (the outbox's name, the log
    /// fields' and the override section's), keeping its outbox in
    /// `journal`, with [`outbox(name)`](Self::outbox)'s settings. Start it
    /// in the owning actor's `started` hook.
    pub fn at_least_once<M: Outgoing>(
        &self,
        name: &str,
        journal: Arc<dyn Journal>,
    ) -> AtLeastOnce<M> {
        AtLeastOnce::new(name, journal, self.outbox(name))
    }

    /// The per-actor override sections (`[delivery.actor.<name>]`,
    /// `[snapshots.actor.<id>]`) whose name no call to
    /// [`outbox`](Self::outbox), [`at_least_once`](Self::at_least_once) or
    /// [`persistent`](Self::persistent) on this configuration (or a clone)
    /// (or [`persistent_props`](Self::persistent_props)) asked for so far:
    /// usually a misspelt sender name or persistence id.
    pub fn unused_overrides(&self) -> Vec<String> {
        let used = courier_core::sync::lock(&self.names.0);
        self.overrides()
            .filter(|key| !used.asked.contains(key))
            .map(|(kind, name)| kind.section(&name))
            .collect()
    }

    /// Logs a WARN naming each [unused override](Self::unused_overrides)
    /// section, once per section (over every clone of this configuration),
    /// and returns the sections it warned about now. Call it once the
    /// actors that read their settings from this configuration are started.
    /// Without this call the same WARNs are logged when the last clone of
    /// a configuration read from a file or string is dropped.
    pub fn warn_unused_overrides(&self) -> Vec<String> {
        courier_core::sync::lock(&self.names.0).warn(self.overrides())
    }

    fn overrides(&self) -> impl Iterator<Item = (Overrides, String)> + '_ {
        let delivery = self
            .delivery
            .actor
            .keys()
            .map(|name| (Overrides::Delivery, name.clone()));
        let snapshots = self
            .snapshots
            .actor
            .keys()
            .map(|id| (Overrides::Snapshots, id.clone()));
        delivery.chain(snapshots)
    }

    /// The outbox settings for the sender named `name`: its overrides, else
    /// the defaults.
    pub fn outbox(&self, name: &str) -> OutboxSettings {
        self.names.asked(Overrides::Delivery, name);
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

    /// The props of the event-sourced actor with persistence id `id`
    /// (the journal's id, the log fields' and the override section's),
    /// with [`persistent(id)`](Self::persistent)'s snapshot settings:
    /// `[snapshots.actor.<id>]`, else `[snapshots]`. Its stores are the
    /// actor system's defaults (see
    /// [`PersistenceConfig::open_as_default`]) unless the props name
    /// others.
    ///
    /// ```
    /// use courier::config::Config;
    /// use courier::prelude::*;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Default, Serialize, Deserialize)]
    /// struct Counter(u64);
    ///
    /// impl EventSourced for Counter {
    ///     type Command = u64;
    ///     type Event = u64;
    ///
    ///     async fn handle_command(&mut self, n: u64, _: &mut Ctx<Self>) -> Handled<Self> {
    ///         Ok(Effect::persist(n))
    ///     }
    ///
    ///     fn apply_event(&mut self, n: u64) {
    ///         self.0 += n;
    ///     }
    /// }
    ///
    /// let config = Config::from_str("[snapshots.actor.counter-1]\nevery = 100\n")?;
    /// let props = config.persistent_props("counter-1", Counter::default);
    /// assert_eq!(props.settings().snapshots.every, Some(100));
    /// assert!(config.unused_overrides().is_empty());
    /// # Ok::<(), courier::config::ConfigError>(())
    /// ```
    pub fn persistent_props<E, Form>(
        &self,
        id: &str,
        make: impl Fn() -> E + Send + Sync + 'static,
    ) -> PersistentProps<E>
    where
        E: SnapshotForm<Form>,
    {
        Persistent::props(id, make).with_settings(self.persistent(id))
    }

    /// The persistence settings (snapshots) for persistence id `id`.
    pub fn persistent(&self, id: &str) -> PersistentSettings {
        self.names.asked(Overrides::Snapshots, id);
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
) -> std::result::Result<(), Invalid> {
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
        return Err(Invalid {
            key: Some(format!("{table}.backoff.max")),
            line: Some(line_of(text, backoff.span())),
            reason: format!("{max:?} is below `redeliver_interval` ({interval:?})"),
        });
    }
    Ok(())
}

fn nested_override(text: &str, table: &str, span: Range<usize>) -> Invalid {
    Invalid {
        key: Some(format!("{table}.actor")),
        line: Some(line_of(text, span)),
        reason: "overrides cannot have overrides".to_owned(),
    }
}

// The tests cover the `[remote]` section too.
#[cfg(all(test, feature = "remote"))]
mod tests;
