//! `[remote]`: this process as a node (feature `remote`).

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Invalid;
use super::values::line_of;

/// `[remote]`: a node's name, address, credentials and limits.
///
/// Production nodes set `cert`, `key` and `ca` (mutual TLS); a `secret`
/// alone is for development on loopback. The files and a secret from a file
/// or the environment are read when the node starts.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// This node's name (ASCII letters, digits, `-`, `_`, `.`; a DNS name
    /// with TLS). Required.
    pub node: String,
    /// Where to listen. Default `"127.0.0.1:0"` (loopback, any free port).
    /// Anything but loopback needs TLS (or `insecure = true`).
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// This node's certificate chain, a PEM file; its certificate names the
    /// node as a DNS subject alternative name. With `key` and `ca`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// This node's private key, a PEM file. Keep it private.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The cluster's CA certificates, a PEM file: every peer's certificate
    /// must be signed by one.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The shared secret, at least 16 bytes: `"env:VAR"` reads the
    /// environment variable `VAR`, `"file:PATH"` the file, anything else is
    /// the secret itself. Required without TLS (development on loopback),
    /// optional with it. Never printed.
    #[serde(default)]
    pub secret: Option<courier_remote::Secret>,
    /// Allows listening on a non-loopback address without TLS, on a network
    /// where nobody can read or inject traffic. Default false.
    #[serde(default)]
    pub insecure: bool,
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
    /// The most connections accepted at once. Default 256.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The most HTTP/2 streams a peer may open on one connection. Default 8.
    #[serde(default = "default_max_streams")]
    pub max_streams: u32,
    /// How long each step of a handshake may take. Default `"5s"`, at most
    /// `"1m"`.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// The largest hello a peer may open a link with, in bytes. Default
    /// 1024, from 64 to 65536.
    #[serde(default = "default_max_hello")]
    pub max_hello: usize,
    /// The most envelopes in one batch. Default 4096.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// The messages queued for one peer; beyond it `try_tell` reports
    /// `Full` and `send` waits. Default 1024.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// The messages sent to one peer and not yet reported received.
    /// Default 8192; at least `max_batch`.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How long an accepted connection may carry no authenticated link.
    /// Default `"30s"`; at least `handshake_timeout`.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How often an HTTP/2 ping checks that a peer is alive. Default `"10s"`.
    #[serde(default = "default_keepalive_interval", with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the peer is declared down.
    /// Default `"20s"`.
    #[serde(default = "default_keepalive_timeout", with = "humantime_serde")]
    pub keepalive_timeout: Duration,
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

fn default_max_connections() -> usize {
    remote_defaults().max_connections
}

fn default_max_streams() -> u32 {
    remote_defaults().max_streams
}

fn default_handshake_timeout() -> Duration {
    remote_defaults().handshake_timeout
}

fn default_max_hello() -> usize {
    remote_defaults().max_hello
}

fn default_max_batch() -> usize {
    remote_defaults().max_batch
}

fn default_queue_capacity() -> usize {
    remote_defaults().queue_capacity
}

fn default_max_in_flight() -> usize {
    remote_defaults().max_in_flight
}

fn default_idle_timeout() -> Duration {
    remote_defaults().idle_timeout
}

fn default_keepalive_interval() -> Duration {
    remote_defaults().keepalive_interval
}

fn default_keepalive_timeout() -> Duration {
    remote_defaults().keepalive_timeout
}

impl RemoteConfig {
    /// These settings as the remote crate takes them.
    pub fn settings(&self) -> courier_remote::RemoteSettings {
        let mut settings = courier_remote::RemoteSettings::new(&self.node, "");
        settings.secret.clone_from(&self.secret);
        if let (Some(cert), Some(key), Some(ca)) = (&self.cert, &self.key, &self.ca) {
            settings.tls = Some(courier_remote::TlsSettings::from_files(cert, key, ca));
        }
        settings.insecure = self.insecure;
        settings.listen = self.listen;
        settings.max_frame = self.max_frame;
        settings.reconnect_min = self.reconnect_min;
        settings.reconnect_max = self.reconnect_max;
        settings.max_connections = self.max_connections;
        settings.max_streams = self.max_streams;
        settings.handshake_timeout = self.handshake_timeout;
        settings.max_hello = self.max_hello;
        settings.max_batch = self.max_batch;
        settings.queue_capacity = self.queue_capacity;
        settings.max_in_flight = self.max_in_flight;
        settings.idle_timeout = self.idle_timeout;
        settings.keepalive_interval = self.keepalive_interval;
        settings.keepalive_timeout = self.keepalive_timeout;
        settings
    }

    /// The remote crate's own checks, reported with the section's line.
    pub(super) fn validate(&self, text: &str, span: Range<usize>) -> Result<(), Invalid> {
        let line = Some(line_of(text, span));
        let tls = [("cert", &self.cert), ("key", &self.key), ("ca", &self.ca)];
        if tls.iter().any(|(_, set)| set.is_some()) {
            if let Some((missing, _)) = tls.iter().find(|(_, set)| set.is_none()) {
                return Err(Invalid {
                    key: Some(format!("remote.{missing}")),
                    line,
                    reason: "must be set with `cert`, `key` and `ca`: TLS needs all three".into(),
                });
            }
        }
        match self.settings().validate() {
            Ok(()) => Ok(()),
            Err(courier_remote::Error::Settings { setting, reason }) => Err(Invalid {
                key: Some(format!("remote.{setting}")),
                line,
                reason: format!("must be {reason}"),
            }),
            Err(courier_remote::Error::Credentials { setting, reason }) => Err(Invalid {
                key: Some(format!("remote.{setting}")),
                line,
                reason,
            }),
            Err(other) => Err(Invalid {
                key: Some("remote".to_owned()),
                line,
                reason: other.to_string(),
            }),
        }
    }
}
