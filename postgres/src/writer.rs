//! The writer task: group commit, one transaction per group.
//!
//! 1. take every write waiting (up to `max_group`);
//! 2. check each on its own (ids, sizes, no writes to the store's
//!    namespace): a bad one fails alone;
//! 3. `BEGIN`; make sure every journal of the group has a row and lock those
//!    rows (`SELECT … FOR UPDATE`, in id order, so that writers on other
//!    nodes queue behind this one instead of interleaving);
//! 4. check each write against the locked highest sequence numbers plus
//!    what the group staged before it: a write whose events do not continue
//!    their journals one by one fails alone with `SequenceConflict` (this is also how a second
//!    node writing the same persistence id is fenced off);
//! 5. insert the events, raise the highest sequence numbers (never lower),
//!    apply the last put or delete of each key–value record, insert this
//!    commit's marker row into `commits` (and delete the previous one);
//! 6. `COMMIT`; answer every write of the group with its outcome.
//!
//! A failure before `COMMIT` was sent leaves nothing committed: the group's
//! writes get the error, and the next group starts afresh (a networked
//! database does not need the embedded store's poisoning: the server, not
//! this process, decides what is durable). A serialization failure or
//! deadlock retries the group. If the connection is lost *during*
//! `COMMIT`, the writer finds out what happened from the marker row: on a
//! new connection it inserts the same marker id; the primary key makes
//! that insert wait for the old transaction if it is still running, and
//! then either conflict (the group committed: answer `Ok`) or succeed (it
//! did not; the probe is rolled back). Only if that cannot be done within
//! the resolve timeout is the answer [`Error::OutcomeUnknown`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use courier_persistence::{Error as PError, KvWrite, STORE_NAMESPACE, WriteBatch};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::error::Error;
use crate::record;
use crate::store::{Shared, capped, check_id, storable};

type PResult<T> = courier_persistence::Result<T>;

/// How many times a group is retried after a serialization failure.
const RETRIES: usize = 5;

pub(crate) struct Pending {
    pub(crate) batch: WriteBatch,
    pub(crate) done: oneshot::Sender<PResult<()>>,
}

/// A write that passed its own checks, encoded.
struct Checked {
    /// (persistence id, sequence number, framed record), in batch order.
    events: Vec<(String, i64, Vec<u8>)>,
    kv: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
}

/// What became of a group transaction.
enum Outcome {
    /// Committed (or nothing to commit).
    Committed,
    /// Nothing committed; the error to give.
    Failed(Error),
    /// Try again (serialization failure, deadlock).
    Retry(Error),
    /// The connection was lost during `COMMIT`.
    Unknown(Uuid, String),
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedReceiver<Pending>,
    /// The marker of the last group committed, deleted by the next one.
    previous: Option<Uuid>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, requests: mpsc::UnboundedReceiver<Pending>) -> Self {
        Self {
            shared,
            requests,
            previous: None,
        }
    }

    /// Commits groups until every store handle is gone.
    pub(crate) async fn run(mut self) {
        let mut group = Vec::new();
        let max = self.shared.max_group();
        loop {
            if self.requests.recv_many(&mut group, max).await == 0 {
                return;
            }
            // Writers just answered may be about to send: let them join.
            tokio::task::yield_now().await;
            while group.len() < max {
                match self.requests.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
            self.commit_group(std::mem::take(&mut group)).await;
        }
    }

    async fn commit_group(&mut self, group: Vec<Pending>) {
        let mut checked = Vec::with_capacity(group.len());
        let mut dones = Vec::with_capacity(group.len());
        for pending in group {
            match check(&pending.batch) {
                Ok(c) => {
                    checked.push(c);
                    dones.push(pending.done);
                }
                Err(e) => {
                    let _ = pending.done.send(Err(e));
                }
            }
        }
        if checked.is_empty() {
            return;
        }
        let mut attempt = 0;
        let started = std::time::Instant::now();
        loop {
            let marker = Uuid::now_v7();
            let mut verdicts: Vec<Option<PError>> = Vec::new();
            let outcome = self.transaction(&checked, marker, &mut verdicts).await;
            let outcome = match outcome {
                Outcome::Retry(e) if attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "group commit retried");
                    continue;
                }
                Outcome::Retry(e) => Outcome::Failed(e),
                Outcome::Unknown(marker, reason) => self.resolve(marker, reason).await,
                other => other,
            };
            let verdicts = pad(verdicts, checked.len());
            match outcome {
                Outcome::Committed => {
                    let written = verdicts.iter().filter(|v| v.is_none()).count() as u64;
                    if written > 0 {
                        self.shared.metrics.flush(started.elapsed());
                        self.shared.metrics.group(dones.len());
                        self.previous = Some(marker);
                        let stats = &self.shared.stats;
                        stats.writes.fetch_add(written, Ordering::Relaxed);
                        stats.groups.fetch_add(1, Ordering::Relaxed);
                    }
                    for (done, verdict) in dones.into_iter().zip(verdicts) {
                        let _ = done.send(verdict.map_or(Ok(()), Err));
                    }
                }
                Outcome::Failed(e) | Outcome::Retry(e) => {
                    tracing::warn!(error = %chain(&e), "group commit failed: nothing of it was committed");
                    let reason = chain(&e);
                    for (done, verdict) in dones.into_iter().zip(verdicts) {
                        let answer = verdict.unwrap_or_else(|| {
                            Error::GroupFailed {
                                reason: reason.clone(),
                            }
                            .into()
                        });
                        let _ = done.send(Err(answer));
                    }
                }
                Outcome::Unknown(marker, reason) => {
                    tracing::error!(%marker, %reason, "group commit outcome unknown");
                    for (done, verdict) in dones.into_iter().zip(verdicts) {
                        let answer = verdict.unwrap_or_else(|| {
                            Error::OutcomeUnknown {
                                commit: Some(marker),
                                reason: reason.clone(),
                            }
                            .into()
                        });
                        let _ = done.send(Err(answer));
                    }
                }
            }
            return;
        }
    }

    /// One attempt at the group's transaction. `verdicts[i]` is set to the
    /// error of write `i` if it was left out (a sequence conflict).
    async fn transaction(
        &mut self,
        checked: &[Checked],
        marker: Uuid,
        verdicts: &mut Vec<Option<PError>>,
    ) -> Outcome {
        verdicts.clear();
        let sql = &self.shared.sql;
        let mut client = match self.shared.pool.get().await {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e.into()),
        };
        let tx = match client.transaction().await {
            Ok(tx) => tx,
            Err(e) => return failed("starting a group commit", e),
        };
        let pids: Vec<&str> = checked
            .iter()
            .flat_map(|c| c.events.iter().map(|e| e.0.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut highest: HashMap<String, u64> = HashMap::new();
        if !pids.is_empty() {
            if let Err(e) = tx.execute(&sql.ensure_journals, &[&pids]).await {
                return failed("creating journals", e);
            }
            let rows = match tx.query(&sql.lock_journals, &[&pids]).await {
                Ok(rows) => rows,
                Err(e) => return failed("locking journals", e),
            };
            for row in rows {
                let (Ok(pid), Ok(h)) = (row.try_get::<_, String>(0), row.try_get::<_, i64>(1))
                else {
                    return Outcome::Failed(Error::Unavailable(
                        "the journal table has an unexpected shape".into(),
                    ));
                };
                let Ok(h) = u64::try_from(h) else {
                    return Outcome::Failed(Error::Unavailable(
                        format!(
                            "the journal row of {pid} holds a negative highest sequence number {h}"
                        )
                        .into(),
                    ));
                };
                highest.insert(pid, h);
            }
        }
        let mut events = (Vec::new(), Vec::new(), Vec::new());
        let mut kv: BTreeMap<(&str, &[u8]), Option<&[u8]>> = BTreeMap::new();
        for c in checked {
            // Each event must continue its journal as staged so far.
            let mut staged: HashMap<&str, u64> = HashMap::new();
            let conflict = c.events.iter().find_map(|(pid, seq, _)| {
                let last = staged
                    .get(pid.as_str())
                    .or_else(|| highest.get(pid))
                    .copied()
                    .unwrap_or(0);
                let expected = last.saturating_add(1);
                let got = u64::try_from(*seq).unwrap_or(0);
                staged.insert(pid.as_str(), got);
                (got != expected).then(|| PError::SequenceConflict {
                    persistence_id: pid.clone(),
                    expected,
                    got,
                })
            });
            if let Some(conflict) = conflict {
                verdicts.push(Some(conflict));
                continue;
            }
            verdicts.push(None);
            for (pid, last) in staged {
                highest.insert(pid.to_owned(), last);
            }
            for (pid, seq, bytes) in &c.events {
                events.0.push(pid.as_str());
                events.1.push(*seq);
                events.2.push(bytes.as_slice());
            }
            for (ns, key, value) in &c.kv {
                kv.insert((ns.as_str(), key.as_slice()), value.as_deref());
            }
        }
        if verdicts.iter().all(Option::is_some) {
            let _ = tx.rollback().await;
            return Outcome::Committed;
        }
        if !events.0.is_empty() {
            if let Err(e) = tx
                .execute(&sql.insert_events, &[&events.0, &events.1, &events.2])
                .await
            {
                return failed("inserting events", e);
            }
            let (p, h): (Vec<&str>, Vec<i64>) = highest
                .iter()
                .map(|(p, h)| (p.as_str(), capped(*h)))
                .unzip();
            if let Err(e) = tx.execute(&sql.update_highest, &[&p, &h]).await {
                return failed("raising highest sequence numbers", e);
            }
        }
        let (mut put, mut del) = (
            (Vec::new(), Vec::new(), Vec::new()),
            (Vec::new(), Vec::new()),
        );
        for ((ns, key), value) in kv {
            match value {
                Some(v) => {
                    put.0.push(ns);
                    put.1.push(key);
                    put.2.push(v);
                }
                None => {
                    del.0.push(ns);
                    del.1.push(key);
                }
            }
        }
        if !put.0.is_empty() {
            if let Err(e) = tx.execute(&sql.upsert_kv, &[&put.0, &put.1, &put.2]).await {
                return failed("writing records", e);
            }
        }
        if !del.0.is_empty() {
            if let Err(e) = tx.execute(&sql.delete_kv, &[&del.0, &del.1]).await {
                return failed("deleting records", e);
            }
        }
        let now = capped(courier_persistence::now_millis());
        if let Err(e) = tx.execute(&sql.insert_commit, &[&marker, &now]).await {
            return failed("marking the commit", e);
        }
        if let Some(previous) = self.previous.take() {
            if let Err(e) = tx.execute(&sql.delete_commit, &[&previous]).await {
                self.previous = Some(previous);
                return failed("clearing the previous commit marker", e);
            }
        }
        match tx.commit().await {
            Ok(()) => Outcome::Committed,
            Err(e) if e.as_db_error().is_some() => failed("committing", e),
            Err(e) => Outcome::Unknown(
                marker,
                format!("the connection was lost during COMMIT: {e}"),
            ),
        }
    }

    /// Finds out whether the group marked `marker` committed (see the
    /// module documentation), retrying connections until the resolve
    /// timeout.
    async fn resolve(&self, marker: Uuid, reason: String) -> Outcome {
        let deadline = tokio::time::Instant::now() + self.shared.resolve_timeout();
        let mut delay = Duration::from_millis(20);
        let mut last = reason;
        loop {
            match self.probe(marker).await {
                Ok(true) => {
                    tracing::warn!(%marker, "connection lost during COMMIT, but the group committed");
                    return Outcome::Committed;
                }
                Ok(false) => {
                    return Outcome::Failed(Error::Unavailable(
                        format!("the connection was lost during COMMIT and the group did not commit: {last}")
                            .into(),
                    ));
                }
                Err(e) => last = format!("{last}; then, finding out: {e}"),
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Outcome::Unknown(marker, last);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Whether the marker row exists (waiting for the transaction that
    /// inserted it, if it is still running). The probe itself is rolled
    /// back.
    async fn probe(&self, marker: Uuid) -> Result<bool, Error> {
        let mut client = self.shared.pool.get().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| Error::db("probing a commit", e))?;
        let inserted = tx
            .execute(&self.shared.sql.insert_commit, &[&marker, &0i64])
            .await
            .map_err(|e| Error::db("probing a commit", e))?;
        let _ = tx.rollback().await;
        Ok(inserted == 0)
    }
}

/// An error with its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn pad(mut verdicts: Vec<Option<PError>>, len: usize) -> Vec<Option<PError>> {
    verdicts.resize_with(len, || None);
    verdicts
}

fn failed(what: &'static str, e: tokio_postgres::Error) -> Outcome {
    let retry = matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    );
    let e = Error::db(what, e);
    if retry {
        Outcome::Retry(e)
    } else {
        Outcome::Failed(e)
    }
}

/// A write's own checks, before any database is involved.
fn check(batch: &WriteBatch) -> PResult<Checked> {
    let mut events = Vec::with_capacity(batch.event_records().len());
    for e in batch.event_records() {
        check_id("persistence id", &e.persistence_id)?;
        let seq = storable("sequence number", e.seq_nr)?;
        events.push((e.persistence_id.clone(), seq, record::encode_event(e)?));
    }
    let mut kv = Vec::with_capacity(batch.kv_writes().len());
    for w in batch.kv_writes() {
        let (ns, key, value) = match w {
            KvWrite::Put {
                namespace,
                key,
                value,
            } => (namespace, key, Some(record::encode_value(value)?)),
            KvWrite::Delete { namespace, key } => (namespace, key, None),
        };
        check_id("namespace", ns)?;
        if ns == STORE_NAMESPACE {
            return Err(PError::Invalid {
                what: "namespace",
                reason: format!("{STORE_NAMESPACE} is the store's own"),
            });
        }
        kv.push((ns.clone(), key.clone(), value));
    }
    Ok(Checked { events, kv })
}
