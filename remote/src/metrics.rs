//! The remote layer's metrics, through the [`metrics`] facade. The labels
//! are bounded: `peer` is the name of a node this node dials (configured,
//! or a peer that authenticated), `reason` one of five rejection reasons;
//! nothing is labelled by what an unauthenticated peer says it is.
//!
//! | name | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `courier_remote_peers_connected` | gauge | — | outbound links up (connected and authenticated) |
//! | `courier_remote_link_up` | gauge | `peer` | 1 while the link to that peer is up, else 0 |
//! | `courier_remote_link_failures_total` | counter | `peer` | connection attempts that failed and links that were lost |
//! | `courier_remote_outbound_rejections_total` | counter | `peer`, `reason` | envelopes this node sent that the peer rejected |
//! | `courier_remote_inbound_links` | gauge | — | authenticated inbound links open |
//! | `courier_remote_inbound_rejections_total` | counter | `reason` | envelopes from peers that this node rejected |
//! | `courier_remote_refused_links_total` | counter | — | inbound links refused (no hello, bad credentials, oversized) |

use ::metrics::{Counter, Gauge, counter, gauge};

use crate::rejection::RejectionReason;

/// The metrics of the link to one peer.
pub(crate) struct PeerMetrics {
    peer: String,
    connected: Gauge,
    up: Gauge,
    pub(crate) failures: Counter,
}

impl PeerMetrics {
    pub(crate) fn new(peer: &str) -> Self {
        let label = [("peer", peer.to_owned())];
        let up = gauge!("courier_remote_link_up", &label);
        up.set(0.0);
        Self {
            peer: peer.to_owned(),
            connected: gauge!("courier_remote_peers_connected"),
            up,
            failures: counter!("courier_remote_link_failures_total", &label),
        }
    }

    /// Marks the link up until the guard is dropped (whichever way the
    /// link ends, the task dropped at shutdown included).
    pub(crate) fn up(&self) -> UpGuard {
        self.up.set(1.0);
        self.connected.increment(1.0);
        UpGuard {
            up: self.up.clone(),
            connected: self.connected.clone(),
        }
    }

    /// A rejection the peer sent for one of this node's envelopes.
    pub(crate) fn rejected(&self, reason: RejectionReason) {
        counter!(
            "courier_remote_outbound_rejections_total",
            "peer" => self.peer.clone(),
            "reason" => reason.label(),
        )
        .increment(1);
    }
}

/// A link counted as up.
pub(crate) struct UpGuard {
    up: Gauge,
    connected: Gauge,
}

impl Drop for UpGuard {
    fn drop(&mut self) {
        self.up.set(0.0);
        self.connected.decrement(1.0);
    }
}

/// An authenticated inbound link, counted while it lasts.
pub(crate) struct InboundGuard(Gauge);

impl InboundGuard {
    pub(crate) fn enter() -> Self {
        let gauge = gauge!("courier_remote_inbound_links");
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InboundGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// An envelope from a peer that this node rejected.
pub(crate) fn inbound_rejected(reason: RejectionReason) {
    counter!("courier_remote_inbound_rejections_total", "reason" => reason.label()).increment(1);
}

/// An inbound link refused before it was authenticated (or for breaking a
/// limit).
pub(crate) fn link_refused() {
    counter!("courier_remote_refused_links_total").increment(1);
}
