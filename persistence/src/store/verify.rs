//! [`Store::verify`]: one read-only walk over the whole key space that
//! checks every record (its checksum, that it is the record its key names)
//! and every journal's sequence (no gaps between what was deleted and the
//! highest sequence number), and summarises what the store holds. This is
//! what `courier verify` and `courier inspect` run. [`Verifier`] is the
//! same check for a backend with its own layout (PostgreSQL's tables):
//! it is fed the records one by one.

use std::collections::BTreeMap;

use super::reads::{decode_event, decode_kv, decode_snapshot};
use super::{Meta, Store};
use crate::engine::Engine;
use crate::error::Result;
use crate::keys::{self, Parsed};
use crate::record::{self, SeqNr};

/// How many problems a report lists; past that it only counts them.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// What [`Store::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreReport {
    /// Every persistence id with events, metadata or snapshots, by id.
    pub journals: Vec<JournalSummary>,
    /// Every key–value namespace, by name (the store's own `courier.store`
    /// and the delivery layer's records among them).
    pub namespaces: Vec<NamespaceSummary>,
    /// How many records were read in all.
    pub records: u64,
    /// The first [`MAX_LISTED_PROBLEMS`] problems, in key order.
    pub problems: Vec<Problem>,
    /// How many problems there were in all (more than `problems.len()`
    /// when the list was cut).
    pub problem_count: u64,
}

impl StoreReport {
    /// Whether every record read back intact and no journal has a gap.
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }
}

/// One persistence id's journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalSummary {
    /// The persistence id.
    pub persistence_id: String,
    /// How many events are stored.
    pub events: u64,
    /// The lowest stored event's sequence number, if any is stored.
    pub lowest: Option<SeqNr>,
    /// The highest sequence number (it never goes down, even when events
    /// are deleted).
    pub highest: SeqNr,
    /// Events up to here were deleted on purpose.
    pub deleted_to: SeqNr,
    /// The sequence numbers of the stored snapshots, ascending.
    pub snapshots: Vec<SeqNr>,
}

/// One key–value namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceSummary {
    /// The namespace.
    pub namespace: String,
    /// How many records it holds.
    pub records: u64,
    /// Their stored size in bytes (keys and framed values).
    pub bytes: u64,
}

/// A record that does not read back, or a hole in a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// An event that does not decode or is not the one its key names.
    Event {
        /// Its persistence id.
        persistence_id: String,
        /// Its sequence number.
        seq_nr: SeqNr,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot that does not decode or belongs elsewhere.
    Snapshot {
        /// Its persistence id.
        persistence_id: String,
        /// Its sequence number.
        seq_nr: SeqNr,
        /// What is wrong.
        reason: String,
    },
    /// A journal's metadata (highest and deleted-to marks) that does not
    /// decode.
    Meta {
        /// Its persistence id.
        persistence_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A key–value record whose checksum or frame is wrong.
    Kv {
        /// Its namespace.
        namespace: String,
        /// Its key, printable (text or hex, cut to 64 bytes).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Events missing between what was deleted and the highest sequence
    /// number: `from..=to` are not stored.
    Gap {
        /// The persistence id.
        persistence_id: String,
        /// The first missing sequence number.
        from: SeqNr,
        /// The last missing sequence number.
        to: SeqNr,
    },
    /// A key courier never writes.
    UnknownKey {
        /// The key, printable.
        key: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Event {
                persistence_id,
                seq_nr,
                reason,
            } => write!(f, "event {persistence_id}#{seq_nr}: {reason}"),
            Problem::Snapshot {
                persistence_id,
                seq_nr,
                reason,
            } => write!(f, "snapshot {persistence_id}#{seq_nr}: {reason}"),
            Problem::Meta {
                persistence_id,
                reason,
            } => write!(f, "journal metadata of {persistence_id}: {reason}"),
            Problem::Kv {
                namespace,
                key,
                reason,
            } => write!(f, "record {namespace}/{key}: {reason}"),
            Problem::Gap {
                persistence_id,
                from,
                to,
            } => write!(
                f,
                "journal {persistence_id}: events {from} to {to} are missing"
            ),
            Problem::UnknownKey { key } => write!(f, "unknown key {key}"),
        }
    }
}

impl<E: Engine> Store<E> {
    /// Reads every record of the store once and checks it; writes nothing.
    /// A damaged record is a [`Problem`] in the report, not an error, so
    /// that one walk lists them all. Runs off the runtime for engines that
    /// block; it takes as long as reading the whole store.
    ///
    /// # Errors
    ///
    /// The engine's I/O errors, and [`Error::Closed`](crate::Error::Closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use courier::persistence::{Journal, MemoryStore, WriteBatch};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), courier::persistence::Error> {
    /// let store = MemoryStore::memory()?;
    /// store.write(WriteBatch::new().put("settings", "mode", "fast")).await?;
    /// let report = store.verify().await?;
    /// assert!(report.is_clean());
    /// assert!(report.namespaces.iter().any(|n| n.namespace == "settings"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn verify(&self) -> Result<StoreReport> {
        self.read(|engine| {
            let mut walk = Verifier::new();
            engine.visit(&[], None, usize::MAX, &mut |key, value| {
                walk.record(key, value);
                Ok(())
            })?;
            Ok(walk.summarise())
        })
        .await
    }
}

/// What the walk has seen so far of one persistence id.
#[derive(Default)]
struct Seen {
    summary: JournalSummary,
    /// The last stored event's sequence number.
    last: Option<SeqNr>,
    meta: Option<Meta>,
}

/// Checks records one by one and sums them up in a [`StoreReport`], as
/// [`Store::verify`] does over its key space: for a backend that stores the
/// same framed records ([`format`](crate::format)) in a layout of its own.
/// Feed each persistence id's events in ascending order (ids may
/// interleave), then [`finish`](Self::finish).
///
/// ```
/// use courier::persistence::format::{encode_event, frame_value};
/// use courier::persistence::{EventRecord, Manifest, Problem, Verifier};
///
/// # fn main() -> Result<(), courier::persistence::Error> {
/// let event = |seq_nr| EventRecord {
///     persistence_id: "orders".into(),
///     seq_nr,
///     manifest: Manifest::new("Placed", 1),
///     payload: vec![1, 2, 3],
///     writer_id: uuid::Uuid::nil(),
///     timestamp: 0,
/// };
/// let mut verifier = Verifier::new();
/// verifier.event("orders", 1, &encode_event(&event(1))?);
/// verifier.event("orders", 3, &encode_event(&event(3))?);
/// verifier.marks("orders", 3, 0);
/// verifier.kv("settings", b"mode", &frame_value(b"fast".to_vec()));
/// let report = verifier.finish();
/// assert_eq!(report.records, 4);
/// assert!(matches!(report.problems[..], [Problem::Gap { from: 2, to: 2, .. }]));
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct Verifier {
    journals: BTreeMap<String, Seen>,
    namespaces: BTreeMap<String, NamespaceSummary>,
    records: u64,
    problems: Vec<Problem>,
    problem_count: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("records", &self.records)
            .field("problem_count", &self.problem_count)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Nothing checked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An event's framed record, stored as `persistence_id`'s `seq_nr`:
    /// checks its checksum, that it is that event, and that it follows the
    /// id's previous one without a hole.
    pub fn event(&mut self, persistence_id: &str, seq_nr: SeqNr, record: &[u8]) {
        self.records += 1;
        self.event_at(persistence_id, seq_nr, |pid, seq| {
            crate::format::decode_event(record, pid, seq).map(drop)
        });
    }

    /// A snapshot's framed record, stored as `persistence_id`'s `seq_nr`.
    pub fn snapshot(&mut self, persistence_id: &str, seq_nr: SeqNr, record: &[u8]) {
        self.records += 1;
        self.journal(persistence_id).summary.snapshots.push(seq_nr);
        if let Err(e) = crate::format::decode_snapshot(record, persistence_id, seq_nr) {
            self.problem(Problem::Snapshot {
                persistence_id: persistence_id.to_owned(),
                seq_nr,
                reason: e.to_string(),
            });
        }
    }

    /// A journal's marks: its highest sequence number and the mark up to
    /// which its events were deleted on purpose.
    pub fn marks(&mut self, persistence_id: &str, highest: SeqNr, deleted_to: SeqNr) {
        self.records += 1;
        self.journal(persistence_id).meta = Some(Meta {
            highest,
            deleted_to,
        });
    }

    /// A key–value record with its framed value.
    pub fn kv(&mut self, namespace: &str, key: &[u8], value: &[u8]) {
        self.records += 1;
        self.kv_at(namespace, key, key.len(), value);
    }

    /// The report, each journal's ends checked against its marks.
    pub fn finish(self) -> StoreReport {
        self.summarise()
    }
    fn problem(&mut self, problem: Problem) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(problem);
        }
    }

    fn journal(&mut self, pid: &str) -> &mut Seen {
        self.journals.entry(pid.to_owned()).or_insert_with(|| Seen {
            summary: JournalSummary {
                persistence_id: pid.to_owned(),
                ..JournalSummary::default()
            },
            ..Seen::default()
        })
    }

    /// One record of the embedded key space, told by its key.
    fn record(&mut self, key: &[u8], value: &[u8]) {
        self.records += 1;
        match keys::parse(key) {
            Some(Parsed::Event(pid, seq)) => {
                self.event_at(pid, seq, |pid, _| decode_event(pid, key, value).map(drop));
            }
            Some(Parsed::Meta(pid)) => match record::decode_record::<Meta>(value, pid, 0) {
                Ok(meta) => self.journal(pid).meta = Some(meta),
                Err(e) => {
                    self.journal(pid);
                    self.problem(Problem::Meta {
                        persistence_id: pid.to_owned(),
                        reason: e.to_string(),
                    });
                }
            },
            Some(Parsed::Snapshot(pid, seq)) => {
                self.journal(pid).summary.snapshots.push(seq);
                if let Err(e) = decode_snapshot(pid, &(key.to_vec(), value.to_vec())) {
                    self.problem(Problem::Snapshot {
                        persistence_id: pid.to_owned(),
                        seq_nr: seq,
                        reason: e.to_string(),
                    });
                }
            }
            Some(Parsed::Kv(namespace, suffix)) => {
                self.kv_at(namespace, suffix, key.len(), value);
            }
            None => self.problem(Problem::UnknownKey {
                key: keys::printable(key),
            }),
        }
    }

    /// A key–value record; `key_len` is its stored key's size.
    fn kv_at(&mut self, namespace: &str, key: &[u8], key_len: usize, value: &[u8]) {
        let summary = self
            .namespaces
            .entry(namespace.to_owned())
            .or_insert_with(|| NamespaceSummary {
                namespace: namespace.to_owned(),
                ..NamespaceSummary::default()
            });
        summary.records += 1;
        summary.bytes += (key_len + value.len()) as u64;
        if let Err(e) = decode_kv(namespace, key, value) {
            self.problem(Problem::Kv {
                namespace: namespace.to_owned(),
                key: keys::printable(key),
                reason: e.to_string(),
            });
        }
    }

    /// An event (ascending sequence numbers per id), checked by `decode`.
    fn event_at(&mut self, pid: &str, seq: SeqNr, decode: impl FnOnce(&str, SeqNr) -> Result<()>) {
        let seen = self.journal(pid);
        let gap = match seen.last {
            Some(last) if seq > last + 1 => Some((last + 1, seq - 1)),
            _ => None,
        };
        seen.last = Some(seq);
        seen.summary.events += 1;
        seen.summary.lowest.get_or_insert(seq);
        if let Some((from, to)) = gap {
            self.problem(Problem::Gap {
                persistence_id: pid.to_owned(),
                from,
                to,
            });
        }
        if let Err(e) = decode(pid, seq) {
            self.problem(Problem::Event {
                persistence_id: pid.to_owned(),
                seq_nr: seq,
                reason: e.to_string(),
            });
        }
    }

    /// Checks each journal's ends against its metadata (which comes after
    /// its events in key order).
    fn summarise(mut self) -> StoreReport {
        let journals = std::mem::take(&mut self.journals);
        let mut summaries = Vec::with_capacity(journals.len());
        for (pid, seen) in journals {
            let meta = seen.meta.unwrap_or_default();
            let mut summary = seen.summary;
            summary.deleted_to = meta.deleted_to;
            summary.highest = meta.highest.max(seen.last.unwrap_or(0));
            // Everything after the deleted mark up to the highest must be
            // stored: a missing head or tail is as lost as a hole.
            let first_expected = meta.deleted_to.saturating_add(1);
            match summary.lowest {
                Some(lowest) if lowest > first_expected => self.problem(Problem::Gap {
                    persistence_id: pid.clone(),
                    from: first_expected,
                    to: lowest - 1,
                }),
                None if summary.highest > meta.deleted_to => self.problem(Problem::Gap {
                    persistence_id: pid.clone(),
                    from: first_expected,
                    to: summary.highest,
                }),
                _ => {}
            }
            // (No let chains: the crates keep Rust 1.85.)
            if let Some(last) = seen.last {
                if summary.highest > last && last >= meta.deleted_to {
                    self.problem(Problem::Gap {
                        persistence_id: pid.clone(),
                        from: last + 1,
                        to: summary.highest,
                    });
                }
            }
            summaries.push(summary);
        }
        StoreReport {
            journals: summaries,
            namespaces: self.namespaces.into_values().collect(),
            records: self.records,
            problems: self.problems,
            problem_count: self.problem_count,
        }
    }
}
