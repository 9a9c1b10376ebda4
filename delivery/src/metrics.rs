//! The delivery layer's metrics, through the [`metrics`] facade: courier
//! records, the program chooses an exporter (or none, and then they cost a
//! no-op call). Names follow Prometheus; the only labels are the sender's
//! or the receiver's name, so their number is bounded by the actors a
//! program runs, never by its messages.
//!
//! | name | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `courier_delivery_delivered_total` | counter | `sender` | deliveries accepted (durable in the outbox) |
//! | `courier_delivery_redelivered_total` | counter | `sender` | attempts after the first (also the first after a restart) |
//! | `courier_delivery_confirmed_total` | counter | `sender` | deliveries confirmed by their receiver's ack |
//! | `courier_delivery_parked_total` | counter | `sender` | deliveries moved to the parked store |
//! | `courier_delivery_requeued_total` | counter | `sender` | parked deliveries sent again (`Deliverer::requeue`) |
//! | `courier_delivery_purged_total` | counter | `sender` | parked deliveries deleted (`Deliverer::purge`) |
//! | `courier_delivery_parked` | gauge | `sender` | deliveries parked now (set when the sender starts, then moved by each park, requeue and purge it makes, and by an ack that comes just after a park) |
//! | `courier_delivery_unconfirmed` | gauge | `sender` | deliveries not yet confirmed |
//! | `courier_delivery_oldest_unconfirmed_seconds` | gauge | `sender` | age of the oldest of them (0 when none) |
//! | `courier_delivery_latency_seconds` | histogram | `sender` | from `deliver` to its confirm |
//! | `courier_delivery_applied_total` | counter | `receiver` | deliveries applied (their inbox record durable) |
//! | `courier_delivery_duplicates_total` | counter | `receiver` | duplicates suppressed (acked again, not applied) |
//! | `courier_delivery_inbox_kept_ids` | gauge | `receiver` | ids the inbox keeps above its watermarks |
//!
//! Handles are registered when a sender or inbox starts: install the
//! recorder (the exporter) before starting the actors.

use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

/// One sender's metrics.
pub(crate) struct SenderMetrics {
    pub(crate) delivered: Counter,
    pub(crate) redelivered: Counter,
    pub(crate) confirmed: Counter,
    parked: Counter,
    requeued: Counter,
    purged: Counter,
    unconfirmed: Gauge,
    oldest: Gauge,
    latency: Histogram,
    parked_now: Gauge,
}

impl SenderMetrics {
    pub(crate) fn new(sender: &str) -> Self {
        let label = || [("sender", sender.to_owned())];
        Self {
            delivered: counter!("courier_delivery_delivered_total", &label()),
            redelivered: counter!("courier_delivery_redelivered_total", &label()),
            confirmed: counter!("courier_delivery_confirmed_total", &label()),
            parked: counter!("courier_delivery_parked_total", &label()),
            requeued: counter!("courier_delivery_requeued_total", &label()),
            purged: counter!("courier_delivery_purged_total", &label()),
            unconfirmed: gauge!("courier_delivery_unconfirmed", &label()),
            oldest: gauge!("courier_delivery_oldest_unconfirmed_seconds", &label()),
            latency: histogram!("courier_delivery_latency_seconds", &label()),
            parked_now: gauge!("courier_delivery_parked", &label()),
        }
    }

    /// The outbox as it is now: how many are unconfirmed, and since when
    /// the oldest waits.
    pub(crate) fn outbox(&self, unconfirmed: usize, oldest_age: Option<Duration>) {
        self.unconfirmed.set(unconfirmed as f64);
        self.oldest
            .set(oldest_age.map_or(0.0, |age| age.as_secs_f64()));
    }

    /// With the parked store as the sender found it on start.
    pub(crate) fn with_parked(self, parked: usize) -> Self {
        self.parked_now.set(parked as f64);
        self
    }

    /// One more delivery parked.
    pub(crate) fn parked_one(&self) {
        self.parked.increment(1);
        self.parked_now.increment(1.0);
    }

    /// `count` parked deliveries left the parked store: sent again
    /// (`requeued`) or deleted.
    pub(crate) fn unparked(&self, count: usize, requeued: bool) {
        if requeued {
            self.requeued.increment(count as u64);
        } else {
            self.purged.increment(count as u64);
        }
        self.parked_now.decrement(count as f64);
    }

    /// A parked delivery left the parked store because its ack came after
    /// all: not a requeue, nor a purge.
    pub(crate) fn unparked_acked(&self) {
        self.parked_now.decrement(1.0);
    }

    /// A delivery confirmed `latency` after it was accepted.
    pub(crate) fn confirmed_after(&self, latency: Duration) {
        self.confirmed.increment(1);
        self.latency.record(latency.as_secs_f64());
    }
}

/// One inbox's metrics.
pub(crate) struct InboxMetrics {
    pub(crate) applied: Counter,
    pub(crate) duplicates: Counter,
    pub(crate) kept: Gauge,
}

impl InboxMetrics {
    pub(crate) fn new(receiver: &str) -> Self {
        let label = || [("receiver", receiver.to_owned())];
        Self {
            applied: counter!("courier_delivery_applied_total", &label()),
            duplicates: counter!("courier_delivery_duplicates_total", &label()),
            kept: gauge!("courier_delivery_inbox_kept_ids", &label()),
        }
    }
}
