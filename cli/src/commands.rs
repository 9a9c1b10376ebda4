//! The commands: each reads through the library's own inspection API
//! (`Store::verify`, `courier::delivery::inspect`) and prints a table or
//! JSON.

use std::process::ExitCode;
use std::sync::Arc;

use courier::delivery::DeliveryId;
use courier::delivery::inspect::{self, StoredDelivery};
use courier::persistence::{Journal, Problem, StoreReport};
use serde_json::{Value, json};

use crate::output::{Table, age, hex};
use crate::{Command, Listing, ParkedAction, Selection, open};

pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Why repairs refuse a PostgreSQL store.
const SHARED: &str = "a PostgreSQL store is shared: a running sender on any node may hold it, so repair it through that node (`courier --node … parked requeue|purge`)";

/// Events read per page by `events`.
const PAGE: usize = 1000;
/// Payload bytes shown per event.
const SHOWN: usize = 32;

pub(crate) async fn run(command: Command, json: bool) -> Result<ExitCode> {
    match command {
        Command::Inspect(store) => {
            let source = open::Source::open(store.path()?).await?;
            let report = source.report().await?;
            let journal = source.journal();
            let senders = inspect::senders(&journal).await?;
            let inboxes = inspect::inboxes(&journal).await?;
            if json {
                print_json(&json!({
                    "journals": report.as_ref().map(journals_json),
                    "senders": senders.iter().map(|s| json!({
                        "name": s.name,
                        "incarnation": s.incarnation.to_string(),
                        "next_id": s.next_id,
                        "pending": s.pending,
                        "oldest_pending_ms": s.oldest_pending_ms,
                        "destinations": s.destinations,
                        "parked": s.parked,
                    })).collect::<Vec<_>>(),
                    "inboxes": inboxes.iter().map(|i| json!({
                        "receiver": i.receiver,
                        "identity": i.identity.to_string(),
                        "senders": i.senders.iter().map(|s| json!({
                            "sender": s.sender,
                            "incarnation": s.incarnation.to_string(),
                            "watermark": s.watermark,
                            "kept": s.kept,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "problems": report.as_ref().map(|r| r.problem_count),
                }))?;
            } else {
                let mut out = match &report {
                    Some(report) => journals_table(report).render("JOURNALS"),
                    None => "JOURNALS\n  (not listed for PostgreSQL stores)\n".to_owned(),
                };
                let mut table =
                    Table::new(&["sender", "pending", "oldest", "parked", "destinations"]);
                for s in &senders {
                    let destinations = s
                        .destinations
                        .iter()
                        .map(|(d, n)| format!("{d} ({n})"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    table.row(vec![
                        s.name.clone(),
                        s.pending.to_string(),
                        s.oldest_pending_ms.map_or_else(|| "-".into(), age),
                        s.parked.to_string(),
                        destinations,
                    ]);
                }
                out.push_str(&table.render("SENDERS"));
                let mut table =
                    Table::new(&["receiver", "sender", "incarnation", "watermark", "kept"]);
                for i in &inboxes {
                    for s in &i.senders {
                        table.row(vec![
                            i.receiver.clone(),
                            s.sender.clone(),
                            s.incarnation.to_string(),
                            s.watermark.to_string(),
                            s.kept.to_string(),
                        ]);
                    }
                }
                out.push_str(&table.render("INBOXES"));
                if let Some(report) = report.as_ref().filter(|r| r.problem_count > 0) {
                    out.push_str(&format!(
                        "\n{} damaged records or journal gaps: run `courier verify`\n",
                        report.problem_count
                    ));
                }
                print!("{out}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pending { store, list } => {
            let source = open::Source::open(store.path()?).await?;
            let journal = source.journal();
            let rows = deliveries(&journal, &list, Kind::Pending).await?;
            print_deliveries(&rows, &list, json, "PENDING")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Parked { action } => parked(action, json).await,
        Command::Events { args, from, to } => {
            let [store, persistence_id] = args.as_slice() else {
                return Err("give the store's directory and the persistence id".into());
            };
            let source = open::Source::open(std::path::Path::new(store)).await?;
            events(&source.journal(), persistence_id, from, to, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Top {
            store,
            interval,
            iterations,
        } => {
            let path = store.path()?.to_owned();
            let source = path.display().to_string();
            crate::top::run(
                interval,
                iterations,
                json,
                || {
                    let path = path.clone();
                    async move { crate::top::sample_store(&path).await }
                },
                &source,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(store) => {
            let path = store.path()?;
            let opened = if open::is_postgres(path) {
                Ok(open::Source::open(path).await?)
            } else {
                open::for_reading(path).map(open::Source::Copy)
            };
            let copy = match opened {
                Ok(source) => source,
                // A store that refuses to open (rolled back, engine
                // corrupt) is a finding of verify, not a usage error.
                Err(open::OpenError::Store(e)) => {
                    if json {
                        print_json(&json!({ "clean": false, "open_error": e.to_string() }))?;
                    } else {
                        println!("the store does not open: {e}");
                    }
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            let Some(report) = copy.report().await? else {
                return Err(format!("{} cannot be verified", path.display()).into());
            };
            if json {
                print_json(&json!({
                    "clean": report.is_clean(),
                    "records": report.records,
                    "journals": report.journals.len(),
                    "namespaces": report.namespaces.len(),
                    "problem_count": report.problem_count,
                    "problems": report.problems.iter().map(problem_json).collect::<Vec<_>>(),
                }))?;
            } else {
                for problem in &report.problems {
                    println!("BAD {problem}");
                }
                let listed = report.problems.len() as u64;
                if report.problem_count > listed {
                    println!("… and {} more", report.problem_count - listed);
                }
                println!(
                    "{} records in {} journals and {} namespaces: {}",
                    report.records,
                    report.journals.len(),
                    report.namespaces.len(),
                    if report.is_clean() {
                        "all sound".to_owned()
                    } else {
                        format!("{} problems", report.problem_count)
                    }
                );
            }
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

async fn parked(action: ParkedAction, json: bool) -> Result<ExitCode> {
    match action {
        ParkedAction::List { store, list } => {
            let source = open::Source::open(store.path()?).await?;
            let journal = source.journal();
            let rows = deliveries(&journal, &list, Kind::Parked).await?;
            print_deliveries(&rows, &list, json, "PARKED")?;
            Ok(ExitCode::SUCCESS)
        }
        ParkedAction::Requeue(repair) => {
            let (path, selection) = repair.split(false)?;
            let path = path.ok_or("give the store's directory")?;
            if open::is_postgres(path) {
                return Err(SHARED.into());
            }
            let store = open::for_repair(path)?;
            let journal: Arc<dyn Journal> = Arc::new(store.clone());
            let ids = selected(&journal, &repair.sender, selection).await?;
            let mut done = Vec::new();
            for id in &ids {
                let new =
                    inspect::requeue_offline(&journal, &repair.sender, DeliveryId(*id)).await?;
                if !json {
                    println!("requeued {} {id} as {}", repair.sender, new.0);
                }
                done.push(json!({ "id": id, "new_id": new.0 }));
            }
            store.close().await?;
            if json {
                print_json(&json!({ "sender": repair.sender, "requeued": done }))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ParkedAction::Purge(repair) => {
            let (path, selection) = repair.split(false)?;
            let path = path.ok_or("give the store's directory")?;
            if open::is_postgres(path) {
                return Err(SHARED.into());
            }
            let store = open::for_repair(path)?;
            let journal: Arc<dyn Journal> = Arc::new(store.clone());
            let ids = selected(&journal, &repair.sender, selection).await?;
            for id in &ids {
                inspect::purge_offline(&journal, &repair.sender, DeliveryId(*id)).await?;
                if !json {
                    println!("purged {} {id}", repair.sender);
                }
            }
            store.close().await?;
            if json {
                print_json(&json!({ "sender": repair.sender, "purged": ids }))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The ids a repair names: as given, or every one of `sender`'s parked now.
async fn selected(
    journal: &Arc<dyn Journal>,
    sender: &str,
    selection: Selection,
) -> Result<Vec<u64>> {
    Ok(match selection {
        Selection::Ids(ids) => ids,
        Selection::All => {
            let parked = inspect::parked(journal, sender).await?;
            if parked.is_empty() {
                eprintln!("courier: no parked deliveries of {sender}");
            }
            parked.iter().map(|d| d.id.0).collect()
        }
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Pending,
    Parked,
}

/// Deliveries as [`deliveries`] found them: the rows, and whether more
/// follow the last.
struct Found {
    rows: Vec<(String, StoredDelivery)>,
    more: bool,
}

/// The pending or parked deliveries `list` asks for: of one sender from
/// `after` on, or of every sender, at most `limit`.
async fn deliveries(journal: &Arc<dyn Journal>, list: &Listing, kind: Kind) -> Result<Found> {
    let names = match &list.sender {
        Some(name) => vec![name.clone()],
        None => inspect::senders(journal)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect(),
    };
    let limit = list.limit.unwrap_or(usize::MAX);
    let after = list.after.map(DeliveryId);
    let mut rows = Vec::new();
    for name in names {
        let room = limit - rows.len();
        let page = match kind {
            Kind::Pending => inspect::pending_page(journal, &name, after, room).await?,
            Kind::Parked => inspect::parked_page(journal, &name, after, room).await?,
        };
        rows.extend(page.deliveries.into_iter().map(|d| (name.clone(), d)));
        if page.more {
            return Ok(Found { rows, more: true });
        }
    }
    Ok(Found { rows, more: false })
}

fn print_deliveries(found: &Found, list: &Listing, json: bool, title: &str) -> Result<()> {
    let rows: Vec<Row> = found
        .rows
        .iter()
        .map(|(sender, d)| Row {
            sender: sender.clone(),
            id: d.id.0,
            destination: d.destination.clone(),
            created_ms: d.created_ms,
            size: d.size as u64,
            reason: d.reason.clone(),
        })
        .collect();
    if found.more {
        list.more(rows.last().map(|r| (r.sender.as_str(), r.id)));
    }
    print_rows(&rows, json, title)
}

/// One delivery as `pending` and `parked list` print it, offline or live.
pub(crate) struct Row {
    pub(crate) sender: String,
    pub(crate) id: u64,
    pub(crate) destination: String,
    pub(crate) created_ms: u64,
    pub(crate) size: u64,
    pub(crate) reason: Option<String>,
}

pub(crate) fn print_rows(rows: &[Row], json: bool, title: &str) -> Result<()> {
    if json {
        return print_json(&Value::Array(
            rows.iter()
                .map(|d| {
                    json!({
                        "sender": d.sender,
                        "id": d.id,
                        "destination": d.destination,
                        "created_ms": d.created_ms,
                        "size": d.size,
                        "reason": d.reason,
                    })
                })
                .collect(),
        ));
    }
    let mut table = Table::new(&["sender", "id", "destination", "age", "bytes", "reason"]);
    for d in rows {
        table.row(vec![
            d.sender.clone(),
            d.id.to_string(),
            d.destination.clone(),
            age(d.created_ms),
            d.size.to_string(),
            d.reason.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render(title));
    Ok(())
}

async fn events(store: &Arc<dyn Journal>, pid: &str, from: u64, to: u64, json: bool) -> Result<()> {
    let mut table = Table::new(&["seq", "manifest", "age", "bytes", "payload"]);
    let mut all = Vec::new();
    let mut next = from.max(1);
    while next <= to {
        let page = store.read_events(pid, next, to, PAGE).await?;
        let Some(last) = page.last().map(|e| e.seq_nr) else {
            break;
        };
        for e in &page {
            let manifest = format!("{}/{}", e.manifest.type_name, e.manifest.version);
            if json {
                all.push(json!({
                    "seq_nr": e.seq_nr,
                    "manifest": manifest,
                    "timestamp_ms": e.timestamp,
                    "writer": e.writer_id.to_string(),
                    "size": e.payload.len(),
                    "payload_hex": hex(&e.payload, usize::MAX),
                    "payload_json": crate::output::as_json(&e.payload),
                }));
            } else {
                table.row(vec![
                    e.seq_nr.to_string(),
                    manifest,
                    age(e.timestamp),
                    e.payload.len().to_string(),
                    crate::output::shown(&e.payload, SHOWN),
                ]);
            }
        }
        if page.len() < PAGE || last == u64::MAX {
            break;
        }
        next = last + 1;
    }
    if json {
        print_json(&Value::Array(all))
    } else {
        print!("{}", table.render(&format!("EVENTS of {pid}")));
        Ok(())
    }
}

fn journals_json(report: &StoreReport) -> Value {
    Value::Array(
        report
            .journals
            .iter()
            .map(|j| {
                json!({
                    "persistence_id": j.persistence_id,
                    "events": j.events,
                    "lowest": j.lowest,
                    "highest": j.highest,
                    "deleted_to": j.deleted_to,
                    "snapshots": j.snapshots,
                })
            })
            .collect(),
    )
}

fn journals_table(report: &StoreReport) -> Table {
    journal_rows(report.journals.iter().map(|j| {
        (
            j.persistence_id.as_str(),
            j.events,
            j.highest,
            j.deleted_to,
            j.snapshots.as_slice(),
        )
    }))
}

/// The JOURNALS table, offline or live: persistence id, event count,
/// highest and deleted-to sequence numbers, snapshot sequence numbers.
pub(crate) fn journal_rows<'a>(
    journals: impl Iterator<Item = (&'a str, u64, u64, u64, &'a [u64])>,
) -> Table {
    let mut table = Table::new(&[
        "persistence id",
        "events",
        "highest",
        "deleted to",
        "snapshots",
    ]);
    for (id, events, highest, deleted_to, snapshots) in journals {
        table.row(vec![
            id.to_owned(),
            events.to_string(),
            highest.to_string(),
            deleted_to.to_string(),
            snapshots
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    table
}

fn problem_json(problem: &Problem) -> Value {
    let mut value = match problem {
        Problem::Event {
            persistence_id,
            seq_nr,
            reason,
        } => {
            json!({ "kind": "event", "persistence_id": persistence_id, "seq_nr": seq_nr, "reason": reason })
        }
        Problem::Snapshot {
            persistence_id,
            seq_nr,
            reason,
        } => {
            json!({ "kind": "snapshot", "persistence_id": persistence_id, "seq_nr": seq_nr, "reason": reason })
        }
        Problem::Meta {
            persistence_id,
            reason,
        } => json!({ "kind": "meta", "persistence_id": persistence_id, "reason": reason }),
        Problem::Kv {
            namespace,
            key,
            reason,
        } => json!({ "kind": "record", "namespace": namespace, "key": key, "reason": reason }),
        Problem::Gap {
            persistence_id,
            from,
            to,
        } => json!({ "kind": "gap", "persistence_id": persistence_id, "from": from, "to": to }),
        Problem::UnknownKey { key } => json!({ "kind": "unknown_key", "key": key }),
        other => json!({ "kind": "other" , "text": other.to_string() }),
    };
    value["text"] = Value::String(problem.to_string());
    value
}

pub(crate) fn print_json(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
