//! The one table of metrics and spans in docs/operations.md against the
//! code, so that neither drifts:
//!
//! * every metric the code records (`counter!`, `gauge!`, `histogram!`
//!   with a `courier_…` name, in any crate's sources) is in the table with
//!   that type, and every metric in the table is recorded somewhere;
//! * every metric a running sender, receiver, store and dead letter
//!   register (collected by a recording `Recorder`) has the table's type
//!   and exactly the table's labels;
//! * every span the code opens (`…_span!("courier.…", fields)`) is in the
//!   table with exactly its fields, and every span in the table is opened
//!   somewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use metrics_util::MetricKind;
use metrics_util::debugging::DebuggingRecorder;

#[path = "metrics/scenario.rs"]
mod scenario;

const CRATES: [&str; 6] = [
    "core",
    "delivery",
    "persistence",
    "remote",
    "postgres",
    "src",
];

/// One row of the table: its type column and its labels (or fields).
#[derive(Debug)]
struct Row {
    kind: String,
    labels: BTreeSet<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rows of docs/operations.md's table whose first cell is a
/// backticked `courier_…` or `courier.…` name.
fn table() -> anyhow::Result<BTreeMap<String, Row>> {
    let doc = std::fs::read_to_string(root().join("docs/operations.md"))?;
    let mut rows = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", name, type, labels, meaning, ""
        if cells.len() < 6 || !cells[1].starts_with("`courier") {
            continue;
        }
        let name = cells[1].trim_matches('`').to_owned();
        let kind = cells[2].split_whitespace().next().unwrap_or("").to_owned();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty() && l != "—")
            .collect();
        anyhow::ensure!(
            rows.insert(name.clone(), Row { kind, labels }).is_none(),
            "{name} is in the table twice"
        );
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "no table rows found in docs/operations.md"
    );
    Ok(rows)
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path)?));
        }
    }
    Ok(())
}

fn all_sources() -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for krate in CRATES {
        let dir = root().join(krate);
        let dir = if krate == "src" { dir } else { dir.join("src") };
        sources(&dir, &mut out)?;
    }
    Ok(out)
}

/// The text of a macro call from just after its `(` to its matching `)`.
fn call_args(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return &text[..i],
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    text
}

/// Splits at the commas outside brackets.
fn top_level_args(args: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in args.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&args[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect()
}

/// Every `courier_…` metric recorded in the sources, with its macro.
fn recorded_in_sources() -> anyhow::Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    for (path, text) in all_sources()? {
        for kind in ["counter", "gauge", "histogram"] {
            let needle = format!("{kind}!(");
            for (at, _) in text.match_indices(&needle) {
                let args = call_args(&text[at + needle.len()..]);
                let Some(first) = top_level_args(args).first().copied() else {
                    continue;
                };
                let Some(name) = first.strip_prefix('"').and_then(|n| n.strip_suffix('"')) else {
                    continue;
                };
                if let Some(other) = found.insert(name.to_owned(), kind.to_owned()) {
                    anyhow::ensure!(
                        other == kind,
                        "{name} is a {other} and a {kind} ({})",
                        path.display()
                    );
                }
            }
        }
    }
    Ok(found)
}

/// Every `courier.…` span opened in the sources, with its fields.
fn spans_in_sources() -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut found = BTreeMap::new();
    for (path, text) in all_sources()? {
        for (at, _) in text.match_indices("_span!(") {
            let args = top_level_args(call_args(&text[at + "_span!(".len()..]));
            let Some(name) = args
                .first()
                .and_then(|n| n.strip_prefix('"'))
                .and_then(|n| n.strip_suffix('"'))
            else {
                anyhow::bail!("a span without a literal name in {}", path.display());
            };
            let fields: BTreeSet<String> = args[1..]
                .iter()
                .map(|a| {
                    let field = a.split('=').next().unwrap_or(a);
                    field.trim().trim_start_matches(['%', '?']).to_owned()
                })
                .collect();
            if let Some(other) = found.insert(name.to_owned(), fields.clone()) {
                anyhow::ensure!(
                    other == fields,
                    "span {name} has fields {other:?} in one place and {fields:?} in another ({})",
                    path.display()
                );
            }
        }
    }
    Ok(found)
}

#[test]
fn every_metric_in_the_code_is_in_the_table_and_back() -> anyhow::Result<()> {
    let table = table()?;
    let code = recorded_in_sources()?;
    anyhow::ensure!(code.len() >= 20, "the source scan found only {code:?}");
    for (name, kind) in &code {
        let row = table
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("{name} ({kind}) is recorded but not in the table"))?;
        assert_eq!(&row.kind, kind, "{name}: the table says {}", row.kind);
    }
    for (name, row) in &table {
        if row.kind != "span" {
            assert!(
                code.contains_key(name),
                "{name} is in the table but recorded nowhere"
            );
        }
    }
    Ok(())
}

#[test]
fn every_span_in_the_code_is_in_the_table_with_its_fields() -> anyhow::Result<()> {
    let table = table()?;
    let code = spans_in_sources()?;
    anyhow::ensure!(code.len() >= 5, "the source scan found only {code:?}");
    for (name, fields) in &code {
        let row = table
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("span {name} is opened but not in the table"))?;
        assert_eq!(row.kind, "span", "{name}");
        assert_eq!(
            &row.labels, fields,
            "span {name}: the table's fields against the code's"
        );
    }
    for (name, row) in &table {
        if row.kind == "span" {
            assert!(
                code.contains_key(name),
                "span {name} is in the table but opened nowhere"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_registered_at_run_time_have_the_tables_types_and_labels() -> anyhow::Result<()>
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;
    let dir = tempfile::tempdir()?;
    let (system, _store) = scenario::run(dir.path(), 5).await?;
    let table = table()?;
    let mut seen = BTreeSet::new();
    for (key, _, _, _) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let name = key.name().to_owned();
        let Some(row) = table.get(&name) else {
            panic!("{name} is registered but not in the table");
        };
        let kind = match kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        assert_eq!(row.kind, kind, "{name}");
        let labels: BTreeSet<String> = key.labels().map(|l| l.key().to_owned()).collect();
        assert_eq!(
            labels, row.labels,
            "{name}: the registered labels against the table's"
        );
        seen.insert(name);
    }
    // What the scenario must have registered: sender, inbox, store, dead
    // letter (remote: remote/tests/metrics.rs; recovery: the source scan
    // only).
    for name in [
        "courier_delivery_confirmed_total",
        "courier_delivery_inbox_kept_ids",
        "courier_persistence_flush_seconds",
        "courier_persistence_poisoned_total",
        "courier_dead_letters_total",
    ] {
        assert!(seen.contains(name), "{name} was not registered: {seen:?}");
    }
    system.shutdown().await;
    Ok(())
}
