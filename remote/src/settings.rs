//! [`RemoteSettings`]: what a node is configured with (the `[remote]`
//! section of the configuration), the bounds each setting must keep, and
//! the defaults, defined here once.
//!
//! The bounds are part of the type rather than of the TOML reader: a node
//! started from code is checked exactly as one started from a file, and no
//! setting can make the frame decoder or the reconnect arithmetic misbehave.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::tls::{Tls, TlsSettings};

/// The largest frame accepted unless configured otherwise: 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = 4 << 20;

/// The largest `max_frame` a node accepts: the codec's limit, 64 MiB.
pub const MAX_FRAME_LIMIT: usize = courier_codec::MAX_LEN;

/// The longest `reconnect_max` a node accepts: 1 hour. A peer that has been
/// unreachable longer is still tried once an hour.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(3600);

/// The smallest `max_frame` a node accepts: a frame must hold at least a
/// small message with its recipient and manifest.
const MIN_FRAME: usize = 1024;

/// The shortest secret a node accepts, in bytes.
const MIN_SECRET: usize = 16;

/// The longest `handshake_timeout` a node accepts.
const MAX_HANDSHAKE: Duration = Duration::from_secs(60);

/// The bounds of `max_hello`: room for a node name and a nonce, and no
/// more than a hello ever needs.
const MIN_HELLO: usize = 64;
const MAX_HELLO: usize = 64 * 1024;

/// Room above `max_frame` that gRPC allows a message for its framing. The
/// frame limit itself is enforced per frame with a typed rejection, so
/// gRPC must never be the one to cut off a frame that is within it.
const FRAMING: usize = 64 * 1024;

/// A node's settings (the `[remote]` section of the configuration).
///
/// A node authenticates its peers one of two ways: mutual TLS
/// ([`tls`](Self::tls), for production: encrypted, every peer proves its
/// name with a certificate from the cluster's CA) or, **for development on
/// loopback only**, the shared [`secret`](Self::secret) alone, which
/// authenticates the handshake but leaves every message readable and
/// forgeable on the wire. [`validate`](Self::validate) refuses a node
/// without TLS that listens on anything but loopback, unless
/// [`insecure`](Self::insecure) says the network is trusted.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteSettings {
    /// This node's name, the `node` in `courier://node@host:port/…`. With
    /// TLS it must be a DNS name, and the node's certificate must carry it.
    pub node: String,
    /// Where to listen. Default `127.0.0.1:0` (loopback, any free port).
    pub listen: SocketAddr,
    /// Mutual TLS: this node's certificate and key and the cluster's CA.
    /// Default none.
    pub tls: Option<TlsSettings>,
    /// The secret shared by every node of the cluster, proven in the
    /// handshake (at least 16 bytes, not a sample from courier's docs).
    /// Without [`tls`](Self::tls) it is the only authentication, for
    /// development on loopback; with TLS it is optional and checked too.
    pub secret: Option<Secret>,
    /// Allows a node without TLS to listen on a non-loopback address: only
    /// on a network where nobody can read or inject traffic. Default false.
    pub insecure: bool,
    /// The largest frame sent or accepted, in bytes. Default 4 MiB; from
    /// 1 KiB to [`MAX_FRAME_LIMIT`] (64 MiB).
    pub max_frame: usize,
    /// The first delay before reconnecting to a peer. Default 100 ms; more
    /// than zero.
    pub reconnect_min: Duration,
    /// The longest delay before reconnecting. Default 10 s; at least
    /// `reconnect_min`, at most [`MAX_RECONNECT_DELAY`] (1 hour).
    pub reconnect_max: Duration,
    /// The most connections accepted at once; one more is closed at once.
    /// Default 256; at least 1.
    pub max_connections: usize,
    /// The most HTTP/2 streams (links) a peer may open on one connection.
    /// Default 8; at least 1.
    pub max_streams: u32,
    /// How long an accepting node waits for each step of a peer's
    /// handshake (TLS, then hello and proof), and a connecting node for
    /// the peer's answers. Default 5 s; more than zero, at most 1 minute.
    pub handshake_timeout: Duration,
    /// The largest hello a peer may open a link with, in bytes. Default
    /// 1 KiB; from 64 bytes to 64 KiB.
    pub max_hello: usize,
    /// The most envelopes in one batch: a node sends no more, and ends a
    /// link whose peer sends more. Default 4096; at least 1.
    pub max_batch: usize,
    /// The messages queued for one peer: beyond it, `try_tell` on a remote
    /// reference reports `Full` and `send` waits for room. Default 1024; at
    /// least 1.
    pub queue_capacity: usize,
    /// The messages sent to one peer and not yet reported received: at
    /// the limit, nothing more is sent until the peer answers (and the
    /// queue fills behind it). Default 8192; at least `max_batch`.
    pub max_in_flight: usize,
    /// How long an accepted connection may carry no authenticated link
    /// (from the moment it is accepted, or its last link ended) before it
    /// is closed. Default 30 s; at least `handshake_timeout`.
    pub idle_timeout: Duration,
    /// How often each side of a connection sends an HTTP/2 ping. Default
    /// 10 s; more than zero.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is declared
    /// dead: its watchers hear `Terminated` and its in-flight messages
    /// become dead letters. Default 20 s; more than zero.
    pub keepalive_timeout: Duration,
}

/// Credentials read from the settings: the secret's bytes and the TLS
/// configurations. No `Debug`: it holds the secret.
pub(crate) struct Credentials {
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) tls: Option<Tls>,
}

impl RemoteSettings {
    /// Development settings: authenticated by a shared `secret` alone, on
    /// loopback (see the type's documentation), defaults for the rest.
    pub fn new(node: impl Into<String>, secret: impl Into<String>) -> Self {
        let mut settings = Self::defaults(node.into());
        settings.secret = Some(Secret::new(secret));
        settings
    }

    /// Production settings: mutual TLS with `tls`, defaults for the rest.
    pub fn with_tls(node: impl Into<String>, tls: TlsSettings) -> Self {
        let mut settings = Self::defaults(node.into());
        settings.tls = Some(tls);
        settings
    }

    fn defaults(node: String) -> Self {
        Self {
            node,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            secret: None,
            insecure: false,
            max_frame: DEFAULT_MAX_FRAME,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            max_connections: 256,
            max_streams: 8,
            handshake_timeout: Duration::from_secs(5),
            max_hello: 1024,
            max_batch: 4096,
            queue_capacity: 1024,
            max_in_flight: 8192,
            idle_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
        }
    }

    /// The largest gRPC message either end of a link sends or accepts: a
    /// full frame plus its framing.
    pub(crate) fn grpc_message_limit(&self) -> usize {
        self.max_frame.saturating_add(FRAMING)
    }

    /// Checks the settings without reading anything: a secret given
    /// inline is checked here, while secret files and variables and the
    /// TLS files are read (and checked) by `Node::start`.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] naming the setting and what it must be;
    /// [`Error::Credentials`] for an inline secret that is a sample.
    pub fn validate(&self) -> Result<()> {
        self.check()
    }

    /// Checks the settings and reads the credentials.
    pub(crate) fn credentials(&self) -> Result<Credentials> {
        self.check()?;
        let secret = match &self.secret {
            None => None,
            Some(secret) => Some(
                secret
                    .load(MIN_SECRET)
                    .map_err(|reason| Error::Credentials {
                        setting: "secret",
                        reason,
                    })?,
            ),
        };
        let tls = match &self.tls {
            None => None,
            Some(tls) => Some(tls.load(&self.node)?),
        };
        Ok(Credentials { secret, tls })
    }

    pub(crate) fn check(&self) -> Result<()> {
        let invalid =
            |setting: &'static str, reason: String| Err(Error::Settings { setting, reason });
        if self.node.is_empty()
            || !self
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return invalid(
                "node",
                "a name of ASCII letters, digits, '-', '_' or '.'".into(),
            );
        }
        if let Some(secret) = &self.secret {
            if secret.inline_len().is_some_and(|len| len < MIN_SECRET) {
                return invalid("secret", format!("at least {MIN_SECRET} bytes"));
            }
            secret
                .check(MIN_SECRET)
                .map_err(|reason| Error::Credentials {
                    setting: "secret",
                    reason,
                })?;
        }
        if self.tls.is_some() && crate::tls::server_name(&self.node).is_err() {
            return invalid("node", "a DNS name when TLS is on".into());
        }
        if self.tls.is_none() && self.secret.is_none() {
            return invalid(
                "tls",
                "set (`cert`, `key`, `ca`), or a `secret` for development on loopback".into(),
            );
        }
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.insecure {
            return invalid(
                "tls",
                format!(
                    "set to listen on {}, which is not loopback: without TLS anyone on the network reads and forges the traffic (`insecure = true` allows it on a network you trust)",
                    self.listen
                ),
            );
        }
        if self.max_frame < MIN_FRAME {
            return invalid("max_frame", format!("at least {MIN_FRAME} bytes"));
        }
        if self.max_frame > MAX_FRAME_LIMIT {
            return invalid(
                "max_frame",
                format!(
                    "at most {MAX_FRAME_LIMIT} bytes ({} MiB)",
                    MAX_FRAME_LIMIT >> 20
                ),
            );
        }
        if self.reconnect_min.is_zero() {
            return invalid("reconnect_min", "more than zero".into());
        }
        if self.reconnect_max < self.reconnect_min {
            return invalid("reconnect_max", "at least reconnect_min".into());
        }
        if self.reconnect_max > MAX_RECONNECT_DELAY {
            return invalid("reconnect_max", "at most \"1h\"".into());
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "at least 1".into());
        }
        if self.max_streams == 0 {
            return invalid("max_streams", "at least 1".into());
        }
        if self.handshake_timeout.is_zero() || self.handshake_timeout > MAX_HANDSHAKE {
            return invalid("handshake_timeout", "more than zero, at most \"1m\"".into());
        }
        if !(MIN_HELLO..=MAX_HELLO).contains(&self.max_hello) {
            return invalid(
                "max_hello",
                format!("from {MIN_HELLO} to {MAX_HELLO} bytes"),
            );
        }
        if self.max_batch == 0 {
            return invalid("max_batch", "at least 1".into());
        }
        if self.queue_capacity == 0 {
            return invalid("queue_capacity", "at least 1".into());
        }
        if self.max_in_flight < self.max_batch {
            return invalid("max_in_flight", "at least max_batch".into());
        }
        if self.idle_timeout < self.handshake_timeout {
            return invalid("idle_timeout", "at least handshake_timeout".into());
        }
        if self.keepalive_interval.is_zero() {
            return invalid("keepalive_interval", "more than zero".into());
        }
        if self.keepalive_timeout.is_zero() {
            return invalid("keepalive_timeout", "more than zero".into());
        }
        Ok(())
    }
}
