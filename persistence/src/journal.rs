//! The [`Journal`] trait: append-only event logs per persistence id, plus
//! key–value records that commit atomically with events.
//!
//! Semantics follow Akka's journal SPI: a [`WriteBatch`] is atomic (all of
//! its events and records, for any number of persistence ids, or none);
//! replay is bounded by `from`, `to` and `max` and streamed in pages; the
//! highest sequence number never goes down, not even when every event is
//! deleted; deletion is "up to and including" a sequence number.
//!
//! "Ok" from [`Journal::write`] means durable: flushed to disk by backends
//! that have a disk.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::record::{EventRecord, SeqNr};

/// A change to a key–value record in a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvWrite {
    /// Set the record at (`namespace`, `key`).
    Put {
        /// The key space (for example `"outbox"`).
        namespace: String,
        /// The key within it.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove the record at (`namespace`, `key`).
    Delete {
        /// The key space.
        namespace: String,
        /// The key within it.
        key: Vec<u8>,
    },
}

/// Events and key–value records written in one atomic, durable step.
///
/// Events for one persistence id must be contiguous and continue the
/// journal (`first seq_nr == highest + 1`); otherwise the write fails with
/// [`Error::SequenceConflict`] or [`Error::Invalid`] and nothing is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) events: Vec<EventRecord>,
    pub(crate) kv: Vec<KvWrite>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event.
    pub fn event(mut self, record: EventRecord) -> Self {
        self.events.push(record);
        self
    }

    /// Adds events.
    pub fn events(mut self, records: impl IntoIterator<Item = EventRecord>) -> Self {
        self.events.extend(records);
        self
    }

    /// Adds a key–value put.
    pub fn put(
        mut self,
        namespace: impl Into<String>,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        self.kv.push(KvWrite::Put {
            namespace: namespace.into(),
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a key–value delete.
    pub fn delete(mut self, namespace: impl Into<String>, key: impl Into<Vec<u8>>) -> Self {
        self.kv.push(KvWrite::Delete {
            namespace: namespace.into(),
            key: key.into(),
        });
        self
    }

    /// Appends everything in `other`.
    pub fn extend(&mut self, other: WriteBatch) {
        self.events.extend(other.events);
        self.kv.extend(other.kv);
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.kv.is_empty()
    }

    /// The events in the batch.
    pub fn event_records(&self) -> &[EventRecord] {
        &self.events
    }

    /// The key–value writes in the batch.
    pub fn kv_writes(&self) -> &[KvWrite] {
        &self.kv
    }
}

/// Which events a replay returns: `from <= seq_nr <= to`, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayRange {
    /// The lowest sequence number (inclusive).
    pub from: SeqNr,
    /// The highest sequence number (inclusive).
    pub to: SeqNr,
    /// At most this many events.
    pub max: u64,
}

impl ReplayRange {
    /// Every event.
    pub fn all() -> Self {
        Self {
            from: 1,
            to: SeqNr::MAX,
            max: u64::MAX,
        }
    }

    /// Starting at `from` (inclusive).
    pub fn from(mut self, from: SeqNr) -> Self {
        self.from = from;
        self
    }

    /// Up to `to` (inclusive).
    pub fn to(mut self, to: SeqNr) -> Self {
        self.to = to;
        self
    }

    /// At most `max` events.
    pub fn max(mut self, max: u64) -> Self {
        self.max = max;
        self
    }
}

impl Default for ReplayRange {
    fn default() -> Self {
        Self::all()
    }
}

/// An append-only journal of events per persistence id, with key–value
/// records on the side. Object safe: use it as `Arc<dyn Journal>`.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Writes `batch` atomically. `Ok` means durable.
    ///
    /// # Errors
    ///
    /// [`Error::SequenceConflict`] / [`Error::Invalid`] for a batch that does
    /// not continue its journals (nothing is written), [`Error::Poisoned`]
    /// once an earlier flush failed, storage errors.
    async fn write(&self, batch: WriteBatch) -> Result<()>;

    /// Which store this journal writes to: the same value for every handle
    /// and clone of one store, distinct between stores open at the same
    /// time; `None` if the journal cannot tell. A journal that wraps
    /// another answers with the inner one's. Used by [`same_store`], which
    /// guards writes that must land where they are read back (an
    /// [`Effect::with_writes_in`](crate::Effect::with_writes_in)).
    fn store_identity(&self) -> Option<usize> {
        None
    }

    /// One page of events: at most `limit` of `persistence_id` with
    /// `from <= seq_nr <= to`, ascending, skipping deleted ones. Each record
    /// is checksum-verified. Use [`replay`] to stream a whole range with gap
    /// checks.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] / [`Error::Decode`] naming the record, storage
    /// errors.
    async fn read_events(
        &self,
        persistence_id: &str,
        from: SeqNr,
        to: SeqNr,
        limit: usize,
    ) -> Result<Vec<EventRecord>>;

    /// The highest sequence number ever written for `persistence_id` (0 if
    /// none). Never decreases, also after deletions.
    ///
    /// # Errors
    ///
    /// Storage errors, or a corrupt metadata record.
    async fn highest_seq_nr(&self, persistence_id: &str) -> Result<SeqNr>;

    /// The highest sequence number deleted with
    /// [`delete_events_to`](Self::delete_events_to) (0 if none).
    ///
    /// # Errors
    ///
    /// Storage errors, or a corrupt metadata record.
    async fn deleted_to(&self, persistence_id: &str) -> Result<SeqNr>;

    /// Deletes every event of `persistence_id` up to and including `to`
    /// (capped at the highest). Durable when it returns.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    async fn delete_events_to(&self, persistence_id: &str, to: SeqNr) -> Result<()>;

    /// The key–value record at (`namespace`, `key`).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] if its checksum fails, storage errors.
    async fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The key–value records at `keys` of `namespace`, in that order
    /// (`None` where there is none). The embedded store reads them as one
    /// read, so a caller with many keys waits once for durability (a read
    /// answers only what is durable); the default asks
    /// [`kv_get`](Self::kv_get) for each.
    ///
    /// # Errors
    ///
    /// As [`kv_get`](Self::kv_get), for the first record that fails.
    async fn kv_get_many(&self, namespace: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.push(self.kv_get(namespace, key).await?);
        }
        Ok(found)
    }

    /// Up to `limit` key–value records of `namespace` in key order, starting
    /// after `after` (or at the beginning).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] if a checksum fails, storage errors.
    async fn kv_scan(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// What a [`replay`] went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// How many events were handed over.
    pub events: u64,
    /// The sequence number of the last one (0 if none).
    pub last_seq_nr: SeqNr,
}

/// Whether `a` and `b` are one store: the same journal object, or journals
/// that report the same [`store_identity`](Journal::store_identity).
/// `false` when neither tells.
pub fn same_store(a: &dyn Journal, b: &dyn Journal) -> bool {
    if std::ptr::addr_eq(a as *const dyn Journal, b as *const dyn Journal) {
        return true;
    }
    matches!((a.store_identity(), b.store_identity()), (Some(x), Some(y)) if x == y)
}

/// Streams the events of `persistence_id` in `range` to `on_event`, `page`
/// events at a time (never the whole history in memory), checking that the
/// sequence has no holes. The next page is read while the current one is
/// handed over, so reading and applying overlap.
///
/// # Errors
///
/// [`Error::SequenceGap`] naming the persistence id and the missing sequence
/// number; the journal's read errors; whatever `on_event` returns. Replay
/// stops at the first error: it never skips.
pub async fn replay<F>(
    journal: &dyn Journal,
    persistence_id: &str,
    range: ReplayRange,
    page: usize,
    mut on_event: F,
) -> Result<ReplayStats>
where
    F: FnMut(EventRecord) -> Result<()> + Send,
{
    let page = page.max(1);
    let mut stats = ReplayStats::default();
    if range.max == 0 || range.from > range.to {
        return Ok(stats);
    }
    let highest = journal.highest_seq_nr(persistence_id).await?;
    let lowest = journal.deleted_to(persistence_id).await?.saturating_add(1);
    let end = range.to.min(highest);
    let mut next = range.from.max(lowest);
    // How many events are still wanted after those already requested.
    let mut budget = range.max;
    let request = |from: SeqNr, budget: &mut u64| {
        let want = (*budget).min(page as u64);
        *budget -= want;
        journal.read_events(persistence_id, from, end, want as usize)
    };
    if next > end {
        return Ok(stats);
    }
    let mut current = request(next, &mut budget).await?;
    while let Some(last) = current.last().map(|r| r.seq_nr) {
        // Start reading the page after this one before handing this one over.
        let following = last.checked_add(1).filter(|f| *f <= end && budget > 0);
        let mut prefetch = following.map(|from| Box::pin(request(from, &mut budget)));
        let mut early = None;
        if let Some(fut) = prefetch.as_mut() {
            std::future::poll_fn(|cx| {
                if let std::task::Poll::Ready(result) = fut.as_mut().poll(cx) {
                    early = Some(result);
                }
                std::task::Poll::Ready(())
            })
            .await;
        }
        for record in current {
            if record.seq_nr != next {
                return Err(Error::SequenceGap {
                    persistence_id: persistence_id.to_owned(),
                    expected: next,
                    found: record.seq_nr,
                });
            }
            next = next.saturating_add(1);
            stats.events += 1;
            stats.last_seq_nr = record.seq_nr;
            on_event(record)?;
        }
        current = match (early, prefetch) {
            (Some(result), _) => result?,
            (None, Some(fut)) => fut.await?,
            (None, None) => break,
        };
    }
    if next <= end && stats.events < range.max {
        // The journal says events up to `end` exist, but they ran out.
        return Err(Error::SequenceGap {
            persistence_id: persistence_id.to_owned(),
            expected: next,
            found: end.saturating_add(1),
        });
    }
    Ok(stats)
}
