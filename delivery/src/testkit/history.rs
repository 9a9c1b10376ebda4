//! A history checker for at-least-once delivery with a dedup inbox: Jepsen's
//! total-queue check, for your own ledgers.
//!
//! Record what the sender was told and what the receiver applied, then
//! [`History::check`] sorts every message into what went wrong with it:
//!
//! - **lost**: `deliver` returned `Ok` (the message was accepted), yet it was
//!   never applied;
//! - **unexpected**: applied, yet never sent nor maybe sent;
//! - **duplicated**: applied more than once.
//!
//! All three must be empty. A message whose `deliver` had no known outcome
//! (the process died during the call, or the test stopped looking before the
//! outbox drained) is *maybe sent*: applying it once or not at all are both
//! fine, applying it twice is not.
//!
//! Keys name messages, so each key must stand for one message: recording
//! `sent(k)` twice is the same as recording it once.
//!
//! ```
//! use courier::delivery::testkit::History;
//!
//! // What the sender was told, and what the receiver's ledger holds.
//! let mut history = History::from_ledgers(1..=5_u64, [1, 2, 2, 4, 5, 9]);
//! // The process died while delivering 6 and 9: either outcome is fine.
//! history.maybe_sent(6).maybe_sent(9);
//!
//! let report = history.check();
//! assert!(!report.is_clean());
//! assert_eq!(report.lost, [3]);
//! assert!(report.unexpected.is_empty());
//! assert_eq!(report.duplicated, [(2, 2)]);
//! // The Display is meant for assertion messages.
//! assert_eq!(
//!     report.to_string(),
//!     "5 sent, 2 maybe sent, 5 applied: 1 lost [3], 0 unexpected, 1 duplicated [2 ×2]"
//! );
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How many keys of each kind a [`Report`]'s `Display` lists before it says
/// how many more there are; `{:#}` lists them all.
const SHOWN: usize = 10;

/// What a sender and a receiver did with each message, keyed by a message
/// identity of your choosing (an order number, a delivery id, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History<K> {
    sent: BTreeSet<K>,
    maybe_sent: BTreeSet<K>,
    applied: BTreeMap<K, u64>,
}

impl<K: Ord + Clone + fmt::Debug> Default for History<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone + fmt::Debug> History<K> {
    /// An empty history.
    pub fn new() -> Self {
        Self {
            sent: BTreeSet::new(),
            maybe_sent: BTreeSet::new(),
            applied: BTreeMap::new(),
        }
    }

    /// A history of `sent` messages (each accepted by `deliver`) and of
    /// `applied` ones, one item per application: a key applied twice
    /// appears twice.
    pub fn from_ledgers(
        sent: impl IntoIterator<Item = K>,
        applied: impl IntoIterator<Item = K>,
    ) -> Self {
        let mut history = Self::new();
        for k in sent {
            history.sent(k);
        }
        for k in applied {
            history.applied(k);
        }
        history
    }

    /// The sender's `deliver` returned `Ok` for `k`: it was accepted, so it
    /// must be applied.
    pub fn sent(&mut self, k: K) -> &mut Self {
        self.sent.insert(k);
        self
    }

    /// The outcome of delivering `k` is unknown (the process died during
    /// `deliver`, or it may still be in flight): it may be applied once, or
    /// not at all.
    pub fn maybe_sent(&mut self, k: K) -> &mut Self {
        self.maybe_sent.insert(k);
        self
    }

    /// The receiver applied `k`'s effect (once more).
    pub fn applied(&mut self, k: K) -> &mut Self {
        *self.applied.entry(k).or_insert(0) += 1;
        self
    }

    /// What went wrong, if anything.
    pub fn check(&self) -> Report<K> {
        let lost = self
            .sent
            .iter()
            .filter(|k| !self.applied.contains_key(*k))
            .cloned()
            .collect();
        let unexpected = self
            .applied
            .keys()
            .filter(|k| !self.sent.contains(*k) && !self.maybe_sent.contains(*k))
            .cloned()
            .collect();
        let duplicated = self
            .applied
            .iter()
            .filter(|(_, times)| **times > 1)
            .map(|(k, times)| (k.clone(), *times))
            .collect();
        Report {
            sent: self.sent.len(),
            // A key both sent and maybe sent was sent: count it once.
            maybe_sent: self.maybe_sent.difference(&self.sent).count(),
            applied: self.applied.len(),
            lost,
            unexpected,
            duplicated,
        }
    }
}

/// The outcome of [`History::check`]: each list is sorted by key and must be
/// empty.
///
/// Its `Display` is one line meant for assertion messages: the counts, then
/// up to ten keys of each kind (`{:#}` shows them all).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report<K> {
    /// How many distinct keys were sent.
    pub sent: usize,
    /// How many distinct keys were maybe sent and not also sent.
    pub maybe_sent: usize,
    /// How many distinct keys were applied at least once.
    pub applied: usize,
    /// Sent, never applied.
    pub lost: Vec<K>,
    /// Applied, never sent nor maybe sent.
    pub unexpected: Vec<K>,
    /// Applied more than once, with how many times.
    pub duplicated: Vec<(K, u64)>,
}

impl<K> Report<K> {
    /// Nothing lost, nothing unexpected, nothing applied twice.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty() && self.duplicated.is_empty()
    }
}

impl<K: fmt::Debug> fmt::Display for Report<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if f.alternate() { usize::MAX } else { SHOWN };
        write!(
            f,
            "{} sent, {} maybe sent, {} applied: {} lost",
            self.sent,
            self.maybe_sent,
            self.applied,
            self.lost.len()
        )?;
        list(f, &self.lost, shown, |f, k| write!(f, "{k:?}"))?;
        write!(f, ", {} unexpected", self.unexpected.len())?;
        list(f, &self.unexpected, shown, |f, k| write!(f, "{k:?}"))?;
        write!(f, ", {} duplicated", self.duplicated.len())?;
        list(f, &self.duplicated, shown, |f, (k, times)| {
            write!(f, "{k:?} ×{times}")
        })
    }
}

/// ` [a, b, … and N more]`, or nothing for an empty list.
fn list<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    shown: usize,
    item: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    f.write_str(" [")?;
    for (i, it) in items.iter().take(shown).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, it)?;
    }
    if items.len() > shown {
        write!(f, ", … and {} more", items.len() - shown)?;
    }
    f.write_str("]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_sent_key_applied_once_is_clean() {
        let report = History::from_ledgers(1..=3, [3, 1, 2]).check();
        assert!(report.is_clean(), "{report}");
        assert_eq!(
            report.to_string(),
            "3 sent, 0 maybe sent, 3 applied: 0 lost, 0 unexpected, 0 duplicated"
        );
    }

    #[test]
    fn a_sent_key_never_applied_is_lost() {
        let report = History::from_ledgers(1..=3, [1, 3]).check();
        assert!(!report.is_clean());
        assert_eq!(report.lost, [2]);
        assert!(report.unexpected.is_empty() && report.duplicated.is_empty());
    }

    #[test]
    fn a_key_applied_but_never_sent_is_unexpected() {
        let report = History::from_ledgers([1], [1, 7]).check();
        assert!(!report.is_clean());
        assert_eq!(report.unexpected, [7]);
        assert!(report.lost.is_empty() && report.duplicated.is_empty());
    }

    #[test]
    fn a_key_applied_twice_is_duplicated_with_its_count() {
        let report = History::from_ledgers([1, 2], [1, 2, 2, 2]).check();
        assert!(!report.is_clean());
        assert_eq!(report.duplicated, [(2, 3)]);
        assert!(report.lost.is_empty() && report.unexpected.is_empty());
    }

    #[test]
    fn a_maybe_sent_key_may_be_applied_once_or_not_at_all_but_not_twice() {
        let mut history = History::from_ledgers([1], [1, 2]);
        history.maybe_sent(2).maybe_sent(3);
        assert!(history.check().is_clean(), "{}", history.check());
        history.applied(3).applied(3);
        assert_eq!(history.check().duplicated, [(3, 2)]);
    }

    #[test]
    fn a_key_both_sent_and_maybe_sent_must_be_applied_and_counts_once() {
        let mut history = History::new();
        history.sent(1).maybe_sent(1);
        let report = history.check();
        assert_eq!(report.lost, [1]);
        assert_eq!((report.sent, report.maybe_sent), (1, 0));
    }

    #[test]
    fn display_lists_at_most_ten_of_each_unless_alternate() {
        let report = History::from_ledgers(0..25_u32, []).check();
        let line = report.to_string();
        assert!(
            line.ends_with(
                "25 lost [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … and 15 more], 0 unexpected, 0 duplicated"
            ),
            "{line}"
        );
        let all = format!("{report:#}");
        assert!(all.contains("23, 24]") && !all.contains("more"), "{all}");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Sent(u8),
        MaybeSent(u8),
        Applied(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few keys, so that every category shows up often.
        prop_oneof![
            (0..12_u8).prop_map(Op::Sent),
            (0..12_u8).prop_map(Op::MaybeSent),
            (0..12_u8).prop_map(Op::Applied),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_counting_every_key(ops in proptest::collection::vec(op(), 0..60)) {
            let mut history = History::new();
            for op in &ops {
                match *op {
                    Op::Sent(k) => history.sent(k),
                    Op::MaybeSent(k) => history.maybe_sent(k),
                    Op::Applied(k) => history.applied(k),
                };
            }
            let report = history.check();

            // The model: count each key's operations by scanning the list.
            let count = |k: u8, want: fn(&Op) -> Option<u8>| {
                ops.iter().filter(|op| want(op) == Some(k)).count() as u64
            };
            let (mut lost, mut unexpected, mut duplicated) = (vec![], vec![], vec![]);
            for k in 0..12_u8 {
                let sent = count(k, |op| match op { Op::Sent(k) => Some(*k), _ => None });
                let maybe = count(k, |op| match op { Op::MaybeSent(k) => Some(*k), _ => None });
                let applied = count(k, |op| match op { Op::Applied(k) => Some(*k), _ => None });
                if sent > 0 && applied == 0 {
                    lost.push(k);
                }
                if applied > 0 && sent == 0 && maybe == 0 {
                    unexpected.push(k);
                }
                if applied > 1 {
                    duplicated.push((k, applied));
                }
            }
            prop_assert_eq!(report.is_clean(), lost.is_empty() && unexpected.is_empty() && duplicated.is_empty());
            prop_assert_eq!(report.lost, lost);
            prop_assert_eq!(report.unexpected, unexpected);
            prop_assert_eq!(report.duplicated, duplicated);
        }
    }
}
