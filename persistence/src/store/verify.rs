//! [`Store::verify`]: one read-only walk over the whole key space that
//! checks every record (its checksum, that it is the record its key names)
//! and every journal's sequence (no gaps between what was deleted and the
//! highest sequence number), and summarises what the store holds. This is
//! what `courier verify` and `courier inspect` run.

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
            let mut walk = Walk::default();
            engine.visit(&[], None, usize::MAX, &mut |key, value| {
                walk.record(key, value);
                Ok(())
            })?;
            Ok(walk.finish())
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

#[derive(Default)]
struct Walk {
    journals: BTreeMap<String, Seen>,
    namespaces: BTreeMap<String, NamespaceSummary>,
    records: u64,
    problems: Vec<Problem>,
    problem_count: u64,
}

impl Walk {
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

    fn record(&mut self, key: &[u8], value: &[u8]) {
        self.records += 1;
        match keys::parse(key) {
            Some(Parsed::Event(pid, seq)) => self.event(pid, seq, key, value),
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
                let summary = self
                    .namespaces
                    .entry(namespace.to_owned())
                    .or_insert_with(|| NamespaceSummary {
                        namespace: namespace.to_owned(),
                        ..NamespaceSummary::default()
                    });
                summary.records += 1;
                summary.bytes += (key.len() + value.len()) as u64;
                if let Err(e) = decode_kv(namespace, suffix, value) {
                    self.problem(Problem::Kv {
                        namespace: namespace.to_owned(),
                        key: keys::printable(suffix),
                        reason: e.to_string(),
                    });
                }
            }
            None => self.problem(Problem::UnknownKey {
                key: keys::printable(key),
            }),
        }
    }

    /// Events come in key order: ascending sequence numbers per id.
    fn event(&mut self, pid: &str, seq: SeqNr, key: &[u8], value: &[u8]) {
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
        if let Err(e) = decode_event(pid, key, value) {
            self.problem(Problem::Event {
                persistence_id: pid.to_owned(),
                seq_nr: seq,
                reason: e.to_string(),
            });
        }
    }

    /// Checks each journal's ends against its metadata (which comes after
    /// its events in key order).
    fn finish(mut self) -> StoreReport {
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
