//! [`Inbox`]: the receiver's record of what it has applied, as pure logic.
//!
//! Per sender (name and incarnation) the inbox keeps a watermark, below and
//! at which every delivery id is done, and the set of done ids above it.
//! Ids arrive mostly in order, so the watermark advances and the set stays
//! small: its size is bounded by the sender's in-flight window. Each
//! delivery also carries the sender's `settled_below` (every lower id is
//! confirmed or parked and will never be sent again), which lifts the
//! watermark over ids the receiver will never see, such as parked ones.
//!
//! Every change is returned as an [`InboxChange`] so that the adapter can
//! write exactly that to disk.

use std::collections::{BTreeSet, HashMap};

use crate::envelope::{DeliveryId, SenderId};

/// Whether a delivery is new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Not applied yet: apply it, then [`record`](Inbox::record) it.
    New,
    /// Applied before: ack it again, do not apply it.
    Duplicate,
}

/// One sender's window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Every id up to and including this one is done (0: none).
    pub watermark: u64,
    /// Done ids above the watermark.
    pub above: BTreeSet<u64>,
}

impl Window {
    /// Whether delivery `id` is done.
    pub fn is_done(&self, id: u64) -> bool {
        id <= self.watermark || self.above.contains(&id)
    }

    /// Plans recording delivery `id` as done, without changing the window
    /// (see [`Inbox::plan`]).
    pub fn plan(&self, id: DeliveryId, settled_below: DeliveryId) -> InboxChange {
        let new = !self.is_done(id.0);
        let done = |n: u64| self.above.contains(&n) || (new && n == id.0);
        let mut watermark = self.watermark.max(settled_below.0.saturating_sub(1));
        while done(watermark + 1) {
            watermark += 1;
        }
        let mut change = InboxChange::default();
        if watermark != self.watermark {
            change.watermark = Some(watermark);
        }
        // An id added and lifted over in one step never needs to be stored.
        if new && id.0 > watermark {
            change.added.push(id.0);
        }
        change
            .removed
            .extend(self.above.range(..=watermark).copied());
        change
    }

    /// Applies a planned change (see [`Inbox::apply`]).
    pub fn apply(&mut self, change: &InboxChange) {
        if let Some(w) = change.watermark {
            self.watermark = self.watermark.max(w);
        }
        self.above.extend(change.added.iter().copied());
        for r in &change.removed {
            self.above.remove(r);
        }
        let kept = self.above.split_off(&(self.watermark + 1));
        self.above = kept;
    }

    /// The one change that takes `self` to `to`, a window planned further
    /// (by changes applied one after another): what to write once for
    /// several deliveries recorded in one write.
    pub fn diff(&self, to: &Window) -> InboxChange {
        InboxChange {
            watermark: (to.watermark != self.watermark).then_some(to.watermark),
            added: to.above.difference(&self.above).copied().collect(),
            removed: self.above.difference(&to.above).copied().collect(),
        }
    }
}

/// What changed in one sender's window, to be written durably.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboxChange {
    /// The new watermark, if it moved.
    pub watermark: Option<u64>,
    /// Ids added above the watermark.
    pub added: Vec<u64>,
    /// Ids no longer kept above the watermark.
    pub removed: Vec<u64>,
}

impl InboxChange {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.watermark.is_none() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// The receiver's dedup state for all its senders.
#[derive(Clone, Debug, Default)]
pub struct Inbox {
    windows: HashMap<SenderId, Window>,
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether delivery `id` from `sender` is new.
    pub fn check(&self, sender: &SenderId, id: DeliveryId) -> Receipt {
        match self.windows.get(sender) {
            Some(window) if window.is_done(id.0) => Receipt::Duplicate,
            _ => Receipt::New,
        }
    }

    /// Plans recording delivery `id` from `sender` as done, without
    /// changing the inbox: write the returned change durably, then
    /// [`apply`](Self::apply) it. `settled_below` is the sender's promise
    /// that it will never send a lower id again.
    pub fn plan(
        &self,
        sender: &SenderId,
        id: DeliveryId,
        settled_below: DeliveryId,
    ) -> InboxChange {
        match self.windows.get(sender) {
            Some(window) => window.plan(id, settled_below),
            None => Window::default().plan(id, settled_below),
        }
    }

    /// Applies a planned change once it is durable. Changes planned one
    /// after another and applied in the same order leave the inbox as
    /// [`record`](Self::record) would; the watermark never moves down.
    pub fn apply(&mut self, sender: &SenderId, change: &InboxChange) {
        self.windows
            .entry(sender.clone())
            .or_default()
            .apply(change);
    }

    /// Records delivery `id` from `sender` as done at once:
    /// [`plan`](Self::plan) then [`apply`](Self::apply), for callers whose
    /// state is not written anywhere (models, tests).
    pub fn record(
        &mut self,
        sender: &SenderId,
        id: DeliveryId,
        settled_below: DeliveryId,
    ) -> InboxChange {
        let change = self.plan(sender, id, settled_below);
        self.apply(sender, &change);
        change
    }

    /// Restores one sender's window after a restart.
    pub fn restore(&mut self, sender: SenderId, window: Window) {
        self.windows.insert(sender, window);
    }

    /// One sender's window.
    pub fn window(&self, sender: &SenderId) -> Option<&Window> {
        self.windows.get(sender)
    }

    /// How many ids are kept above the watermarks, over all senders: the
    /// inbox's size beyond one watermark per sender.
    pub fn kept(&self) -> usize {
        self.windows.values().map(|w| w.above.len()).sum()
    }

    /// How many sender incarnations the inbox knows.
    pub fn senders(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn sender(name: &str) -> SenderId {
        SenderId {
            name: name.to_owned(),
            incarnation: Uuid::from_u128(1),
        }
    }

    #[test]
    fn in_order_ids_only_move_the_watermark() {
        let mut inbox = Inbox::new();
        let s = sender("a");
        for id in 1..=100 {
            assert_eq!(inbox.check(&s, DeliveryId(id)), Receipt::New);
            let change = inbox.record(&s, DeliveryId(id), DeliveryId(id));
            assert_eq!(change.watermark, Some(id));
            assert!(change.added.is_empty() && change.removed.is_empty());
        }
        assert_eq!(inbox.check(&s, DeliveryId(57)), Receipt::Duplicate);
        assert_eq!(inbox.kept(), 0);
    }

    #[test]
    fn out_of_order_ids_are_kept_until_the_gap_closes() {
        let mut inbox = Inbox::new();
        let s = sender("a");
        let c = inbox.record(&s, DeliveryId(3), DeliveryId(1));
        assert_eq!((c.watermark, c.added.clone()), (None, vec![3]));
        inbox.record(&s, DeliveryId(2), DeliveryId(1));
        assert_eq!(inbox.check(&s, DeliveryId(3)), Receipt::Duplicate);
        assert_eq!(inbox.check(&s, DeliveryId(1)), Receipt::New);
        let c = inbox.record(&s, DeliveryId(1), DeliveryId(1));
        assert_eq!(c.watermark, Some(3));
        assert_eq!(c.added, Vec::<u64>::new());
        let mut removed = c.removed;
        removed.sort_unstable();
        assert_eq!(removed, [2, 3]);
        assert_eq!(inbox.kept(), 0);
    }

    #[test]
    fn settled_below_lifts_the_watermark_over_ids_never_seen() {
        let mut inbox = Inbox::new();
        let s = sender("a");
        inbox.record(&s, DeliveryId(2), DeliveryId(1));
        inbox.record(&s, DeliveryId(4), DeliveryId(1));
        // Id 1 was parked at the sender; id 3 is still pending.
        let c = inbox.record(&s, DeliveryId(5), DeliveryId(3));
        assert_eq!(c.watermark, Some(2));
        assert_eq!(c.removed, [2]);
        assert_eq!(inbox.check(&s, DeliveryId(1)), Receipt::Duplicate);
        assert_eq!(inbox.check(&s, DeliveryId(3)), Receipt::New);
        assert_eq!(inbox.kept(), 2);
    }

    #[test]
    fn a_plan_changes_nothing_until_applied() {
        let mut inbox = Inbox::new();
        let s = sender("a");
        let change = inbox.plan(&s, DeliveryId(1), DeliveryId(1));
        assert_eq!(change.watermark, Some(1));
        // The write failed: nothing was applied, the redelivery is new.
        assert_eq!(inbox.check(&s, DeliveryId(1)), Receipt::New);
        assert_eq!(inbox.senders(), 0);
        inbox.apply(&s, &change);
        assert_eq!(inbox.check(&s, DeliveryId(1)), Receipt::Duplicate);
    }

    #[test]
    fn one_diff_writes_what_several_changes_applied_in_turn_would() {
        let s = sender("a");
        let mut inbox = Inbox::new();
        inbox.record(&s, DeliveryId(1), DeliveryId(1));
        inbox.record(&s, DeliveryId(4), DeliveryId(1));
        let start = inbox.window(&s).cloned().unwrap_or_default();
        let mut planned = start.clone();
        for (id, settled) in [(6, 2), (2, 2), (3, 2), (9, 5)] {
            let change = planned.plan(DeliveryId(id), DeliveryId(settled));
            planned.apply(&change);
        }
        let mut written = start.clone();
        written.apply(&start.diff(&planned));
        assert_eq!(written, planned);
        assert_eq!(planned.watermark, 4);
        assert_eq!(planned.above.iter().copied().collect::<Vec<_>>(), [6, 9]);
        // The durable records: the watermark, and exactly the ids above it.
        let diff = start.diff(&planned);
        assert_eq!(diff.watermark, Some(4));
        assert_eq!(diff.added, [6, 9]);
        assert_eq!(diff.removed, [4]);
        assert!(start.diff(&start).is_empty());
    }

    #[test]
    fn incarnations_and_senders_are_kept_apart() {
        let mut inbox = Inbox::new();
        let old = sender("a");
        let new = SenderId {
            incarnation: Uuid::from_u128(2),
            ..sender("a")
        };
        inbox.record(&old, DeliveryId(1), DeliveryId(1));
        assert_eq!(inbox.check(&new, DeliveryId(1)), Receipt::New);
        assert_eq!(inbox.check(&sender("b"), DeliveryId(1)), Receipt::New);
        assert_eq!(inbox.check(&old, DeliveryId(1)), Receipt::Duplicate);
    }
}
