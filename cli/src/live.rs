//! `--node`: the commands against a running process's admin endpoint,
//! printed as the offline ones are (the same tables, the same JSON).

use std::process::ExitCode;

use courier::admin::{AdminClient, wire};
use courier::remote::TlsSettings;
use serde_json::{Value, json};

use crate::commands::{Result, Row, print_json, print_rows};
use crate::output::{Table, age, hex, now_ms};
use crate::top::{Sample, SenderSample};
use crate::{Command, Listing, NodeArgs, ParkedAction, Selection};

/// Events asked for per page.
const PAGE: u32 = 1000;
/// Payload bytes shown per event.
const SHOWN: usize = 32;

async fn connect(node: &NodeArgs) -> Result<AdminClient> {
    let (Some(address), Some(cert), Some(key), Some(ca)) =
        (&node.node, &node.cert, &node.key, &node.ca)
    else {
        return Err("--node needs --cert, --key and --ca".into());
    };
    let tls = TlsSettings::from_files(cert, key, ca);
    Ok(AdminClient::connect(address, &node.identity, &tls, node.timeout).await?)
}

fn no_store(store: &crate::StoreArg) -> Result<()> {
    match &store.store {
        Some(path) => Err(format!(
            "give either a store ({}) or --node, not both",
            path.display()
        )
        .into()),
        None => Ok(()),
    }
}

/// Asks for the pending or parked deliveries `listing` names.
async fn list(
    client: &mut AdminClient,
    listing: &Listing,
    parked: bool,
) -> Result<wire::DeliveryList> {
    let limit = listing.limit.unwrap_or(courier::admin::MAX_LIST);
    Ok(match (&listing.sender, parked) {
        (Some(sender), false) => client.pending_page(sender, listing.after, limit).await?,
        (Some(sender), true) => client.parked_page(sender, listing.after, limit).await?,
        (None, false) => client.pending(None).await?,
        (None, true) => client.parked(None).await?,
    })
}

fn rows(list: &wire::DeliveryList, listing: &Listing) -> Vec<Row> {
    if list.truncated {
        listing.more(list.deliveries.last().map(|d| (d.sender.as_str(), d.id)));
    }
    list.deliveries
        .iter()
        .map(|d| Row {
            sender: d.sender.clone(),
            id: d.id,
            destination: d.destination.clone(),
            created_ms: d.created_ms,
            size: d.size,
            reason: d.reason.clone(),
        })
        .collect()
}

/// The ids a repair names: as given, or every one of `sender`'s parked now.
async fn selected(
    client: &mut AdminClient,
    sender: &str,
    selection: Selection,
) -> Result<Vec<u64>> {
    match selection {
        Selection::Ids(ids) => Ok(ids),
        Selection::All => {
            // Every page: the ids parked when the command runs.
            let mut ids = Vec::new();
            loop {
                let after = ids.last().copied();
                let page = client
                    .parked_page(sender, after, courier::admin::MAX_LIST)
                    .await?;
                ids.extend(page.deliveries.iter().map(|d| d.id));
                if !page.truncated || page.deliveries.is_empty() {
                    break;
                }
            }
            if ids.is_empty() {
                eprintln!("courier: no parked deliveries of {sender}");
            }
            Ok(ids)
        }
    }
}

pub(crate) async fn run(command: Command, json: bool, node: NodeArgs) -> Result<ExitCode> {
    let source = node.node.clone().unwrap_or_default();
    match command {
        Command::Inspect(store) => {
            no_store(&store)?;
            let reply = connect(&node).await?.inspect().await?;
            inspect(&reply, json)?;
        }
        Command::Pending {
            store,
            list: listing,
        } => {
            no_store(&store)?;
            let found = list(&mut connect(&node).await?, &listing, false).await?;
            print_rows(&rows(&found, &listing), json, "PENDING")?;
        }
        Command::Parked { action } => match action {
            ParkedAction::List {
                store,
                list: listing,
            } => {
                no_store(&store)?;
                let found = list(&mut connect(&node).await?, &listing, true).await?;
                print_rows(&rows(&found, &listing), json, "PARKED")?;
            }
            ParkedAction::Requeue(repair) => {
                let (_, selection) = repair.split(true)?;
                let mut client = connect(&node).await?;
                let ids = selected(&mut client, &repair.sender, selection).await?;
                let mut reply = wire::RequeueReply::default();
                for chunk in ids.chunks(courier::admin::MAX_IDS) {
                    reply
                        .requeued
                        .extend(client.requeue(&repair.sender, chunk).await?.requeued);
                }
                if json {
                    print_json(&json!({
                        "sender": repair.sender,
                        "requeued": reply.requeued.iter().map(|r| json!({ "id": r.id, "new_id": r.new_id })).collect::<Vec<_>>(),
                    }))?;
                } else {
                    for r in &reply.requeued {
                        println!("requeued {} {} as {}", repair.sender, r.id, r.new_id);
                    }
                }
            }
            ParkedAction::Purge(repair) => {
                let (_, selection) = repair.split(true)?;
                let mut client = connect(&node).await?;
                let ids = selected(&mut client, &repair.sender, selection).await?;
                let mut reply = wire::PurgeReply::default();
                for chunk in ids.chunks(courier::admin::MAX_IDS) {
                    reply
                        .purged
                        .extend(client.purge(&repair.sender, chunk).await?.purged);
                }
                if json {
                    print_json(&json!({ "sender": repair.sender, "purged": reply.purged }))?;
                } else {
                    for id in &reply.purged {
                        println!("purged {} {id}", repair.sender);
                    }
                }
            }
        },
        Command::Events { args, from, to } => {
            let [persistence_id] = args.as_slice() else {
                return Err("with --node, give the persistence id only".into());
            };
            events(&mut connect(&node).await?, persistence_id, from, to, json).await?;
        }
        Command::Verify(store) => {
            no_store(&store)?;
            let reply = connect(&node).await?.verify().await?;
            if json {
                print_json(&json!({
                    "clean": reply.clean,
                    "records": reply.records,
                    "journals": reply.journals,
                    "namespaces": reply.namespaces,
                    "problem_count": reply.problem_count,
                    "problems": reply.problems.iter().map(|p| json!({ "text": p })).collect::<Vec<_>>(),
                }))?;
            } else {
                for problem in &reply.problems {
                    println!("BAD {problem}");
                }
                println!(
                    "{} records in {} journals and {} namespaces: {}",
                    reply.records,
                    reply.journals,
                    reply.namespaces,
                    if reply.clean {
                        "all sound".to_owned()
                    } else {
                        format!("{} problems", reply.problem_count)
                    }
                );
            }
            if !reply.clean {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Top {
            store,
            interval,
            iterations,
        } => {
            no_store(&store)?;
            crate::top::run(
                interval,
                iterations,
                json,
                || {
                    // A connection per sample: the node closes one that
                    // carries no link for its idle timeout (30 s by
                    // default), longer than many intervals.
                    let node = node.clone();
                    async move {
                        let reply = connect(&node).await?.inspect().await?;
                        Ok(Sample {
                            at_ms: now_ms(),
                            senders: reply
                                .senders
                                .into_iter()
                                .map(|s| SenderSample {
                                    name: s.name,
                                    pending: s.pending,
                                    oldest_pending_ms: s.oldest_pending_ms,
                                    parked: s.parked,
                                    redelivered: s.redelivered,
                                })
                                .collect(),
                        })
                    }
                },
                &source,
            )
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(reply: &wire::InspectReply, json: bool) -> Result<()> {
    if json {
        let mut value = json!({
            "senders": reply.senders.iter().map(|s| json!({
                "name": s.name,
                "incarnation": s.incarnation,
                "next_id": s.next_id,
                "pending": s.pending,
                "oldest_pending_ms": s.oldest_pending_ms,
                "destinations": s.destinations.iter().collect::<std::collections::BTreeMap<_, _>>(),
                "parked": s.parked,
                "live": s.live,
                "redelivered": s.redelivered,
            })).collect::<Vec<_>>(),
            "inboxes": reply.inboxes.iter().map(|i| json!({
                "receiver": i.receiver,
                "identity": i.identity,
                "senders": i.senders.iter().map(|s| json!({
                    "sender": s.sender,
                    "incarnation": s.incarnation,
                    "watermark": s.watermark,
                    "kept": s.kept,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        if reply.has_journals {
            value["journals"] = Value::Array(
                reply
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
            );
            value["problems"] = json!(reply.problem_count);
        }
        return print_json(&value);
    }
    let mut out = String::new();
    if reply.has_journals {
        let table = crate::commands::journal_rows(reply.journals.iter().map(|j| {
            (
                j.persistence_id.as_str(),
                j.events,
                j.highest,
                j.deleted_to,
                j.snapshots.as_slice(),
            )
        }));
        out.push_str(&table.render("JOURNALS"));
    }
    let mut table = Table::new(&["sender", "pending", "oldest", "parked", "destinations"]);
    let mut senders: Vec<&wire::Sender> = reply.senders.iter().collect();
    senders.sort_by(|a, b| a.name.cmp(&b.name));
    for s in senders {
        let mut destinations: Vec<_> = s.destinations.iter().collect();
        destinations.sort();
        table.row(vec![
            s.name.clone(),
            s.pending.to_string(),
            s.oldest_pending_ms.map_or_else(|| "-".into(), age),
            s.parked.to_string(),
            destinations
                .iter()
                .map(|(d, n)| format!("{d} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    out.push_str(&table.render("SENDERS"));
    let mut table = Table::new(&["receiver", "sender", "incarnation", "watermark", "kept"]);
    for i in &reply.inboxes {
        for s in &i.senders {
            table.row(vec![
                i.receiver.clone(),
                s.sender.clone(),
                s.incarnation.clone(),
                s.watermark.to_string(),
                s.kept.to_string(),
            ]);
        }
    }
    out.push_str(&table.render("INBOXES"));
    if reply.problem_count > 0 {
        out.push_str(&format!(
            "\n{} damaged records or journal gaps: run `courier verify`\n",
            reply.problem_count
        ));
    }
    print!("{out}");
    Ok(())
}

async fn events(client: &mut AdminClient, pid: &str, from: u64, to: u64, json: bool) -> Result<()> {
    let mut table = Table::new(&["seq", "manifest", "age", "bytes", "payload"]);
    let mut all = Vec::new();
    let mut next = from.max(1);
    while next <= to {
        let page = client.events(pid, next, to, PAGE).await?.events;
        let Some(last) = page.last().map(|e| e.seq_nr) else {
            break;
        };
        for e in &page {
            // The process's registered decoder first, then JSON bytes.
            let decoded: Option<Value> = e
                .decoded
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok());
            if let Some(reason) = &e.decode_error {
                eprintln!("courier: {pid}#{}: {reason}", e.seq_nr);
            }
            if json {
                all.push(json!({
                    "seq_nr": e.seq_nr,
                    "manifest": e.manifest,
                    "timestamp_ms": e.timestamp_ms,
                    "writer": e.writer,
                    "size": e.payload.len(),
                    "payload_hex": hex(&e.payload, usize::MAX),
                    "payload_json": decoded.or_else(|| crate::output::as_json(&e.payload)),
                    "decode_error": e.decode_error,
                }));
            } else {
                table.row(vec![
                    e.seq_nr.to_string(),
                    e.manifest.clone(),
                    age(e.timestamp_ms),
                    e.payload.len().to_string(),
                    match &decoded {
                        Some(value) => crate::output::cut(&value.to_string(), SHOWN * 2),
                        None => crate::output::shown(&e.payload, SHOWN),
                    },
                ]);
            }
        }
        // A page shorter than asked, or a server cap below it: ask from
        // the last one on until a page comes back empty.
        if last == u64::MAX || last < next {
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
