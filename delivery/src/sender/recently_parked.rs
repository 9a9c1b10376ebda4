//! [`RecentlyParked`]: the ids a sender parked last, as pure logic.
//!
//! A delivery is parked when no ack came in time, but its receiver may
//! still be applying it: its ack then comes just after the park. The sender
//! remembers the ids it parked last so that such an ack deletes the parked
//! record (an operator who requeued it would have it applied twice), where
//! an ack of an id it does not remember is a repeat, and changes nothing.
//!
//! Invariant: at most [`REMEMBERED`] ids, the latest parked; an id leaves
//! when it is forgotten (acked, requeued, purged) or pushed out by newer
//! ones.

use std::collections::VecDeque;

use crate::envelope::DeliveryId;

/// How many parked ids a sender remembers.
pub(super) const REMEMBERED: usize = 1024;

/// The last [`REMEMBERED`] ids a sender parked, oldest first.
#[derive(Debug, Default)]
pub(super) struct RecentlyParked {
    ids: VecDeque<DeliveryId>,
}

impl RecentlyParked {
    /// Remembers that `id` was parked, forgetting the oldest id when full.
    pub(super) fn insert(&mut self, id: DeliveryId) {
        if self.ids.len() >= REMEMBERED {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
    }

    /// Forgets `id`; returns whether it was remembered. Costs nothing while
    /// no id is remembered, which is when nearly every call comes (most
    /// acks that find nothing pending repeat an earlier one).
    pub(super) fn remove(&mut self, id: DeliveryId) -> bool {
        // The latest parked is the likeliest to be acked late: search from
        // the back.
        match self.ids.iter().rposition(|parked| *parked == id) {
            Some(at) => {
                self.ids.remove(at);
                true
            }
            None => false,
        }
    }

    /// How many ids are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_forgotten_once() {
        let mut parked = RecentlyParked::default();
        assert!(!parked.remove(DeliveryId(1)), "nothing remembered");
        parked.insert(DeliveryId(1));
        parked.insert(DeliveryId(3));
        assert!(!parked.remove(DeliveryId(2)));
        assert!(parked.remove(DeliveryId(1)));
        assert!(
            !parked.remove(DeliveryId(1)),
            "a repeated ack finds nothing"
        );
        assert!(parked.remove(DeliveryId(3)));
        assert_eq!(parked.len(), 0);
    }

    #[test]
    fn only_the_latest_are_remembered() {
        let mut parked = RecentlyParked::default();
        let total = REMEMBERED as u64 + 10;
        for id in 1..=total {
            parked.insert(DeliveryId(id));
        }
        assert_eq!(parked.len(), REMEMBERED);
        assert!(!parked.remove(DeliveryId(10)), "pushed out");
        assert!(parked.remove(DeliveryId(11)), "the oldest still remembered");
        assert!(parked.remove(DeliveryId(total)));
        assert_eq!(parked.len(), REMEMBERED - 2);
    }
}
