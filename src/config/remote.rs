//! `[remote]`: this process as a node (feature `remote`).

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;

use super::Invalid;
use super::values::line_of;

/// `[remote]`: a node's name, address, credentials and limits.
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
fn remote_defaults() -> courier_remote::RemoteSettings {
    courier_remote::RemoteSettings::new("", "")
}

fn default_listen() -> std::net::SocketAddr {
    remote_defaults().listen
}

fn default_max_frame() -> usize {
    remote_defaults().max_frame
}

fn default_reconnect_min() -> Duration {
    remote_defaults().reconnect_min
}

fn default_reconnect_max() -> Duration {
    remote_defaults().reconnect_max
}

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
    pub(super) fn validate(&self, text: &str, span: Range<usize>) -> Result<(), Invalid> {
        let line = Some(line_of(text, span));
        match self.settings().validate() {
            Ok(()) => Ok(()),
            Err(courier_remote::Error::Settings { setting, reason }) => Err(Invalid {
                key: Some(format!("remote.{setting}")),
                line,
                reason: format!("must be {reason}"),
            }),
            Err(other) => Err(Invalid {
                key: Some("remote".to_owned()),
                line,
                reason: other.to_string(),
            }),
        }
    }
}
