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

/// Room above `max_frame` that gRPC allows a message for its framing. The
/// frame limit itself is enforced per frame with a typed rejection, so
/// gRPC must never be the one to cut off a frame that is within it.
const FRAMING: usize = 64 * 1024;

/// A node's settings (the `[remote]` section of the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteSettings {
    /// This node's name, the `node` in `courier://node@host:port/…`.
    pub node: String,
    /// Where to listen. Default `127.0.0.1:0` (loopback, any free port).
    pub listen: SocketAddr,
    /// The secret shared by every node of the cluster.
    pub secret: String,
    /// The largest frame sent or accepted, in bytes. Default 4 MiB; from
    /// 1 KiB to [`MAX_FRAME_LIMIT`] (64 MiB).
    pub max_frame: usize,
    /// The first delay before reconnecting to a peer. Default 100 ms; more
    /// than zero.
    pub reconnect_min: Duration,
    /// The longest delay before reconnecting. Default 10 s; at least
    /// `reconnect_min`, at most [`MAX_RECONNECT_DELAY`] (1 hour).
    pub reconnect_max: Duration,
}

impl RemoteSettings {
    /// Settings with defaults for everything but the name and the secret.
    pub fn new(node: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret: secret.into(),
            max_frame: DEFAULT_MAX_FRAME,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
        }
    }

    /// The largest gRPC message either end of a link sends or accepts: a
    /// full frame plus its framing.
    pub(crate) fn grpc_message_limit(&self) -> usize {
        self.max_frame.saturating_add(FRAMING)
    }

    /// Checks the settings; `Node::start` does too.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] naming the setting and what it must be.
    pub fn validate(&self) -> Result<()> {
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
        if self.secret.len() < MIN_SECRET {
            return invalid("secret", format!("at least {MIN_SECRET} bytes"));
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
        Ok(())
    }
}
