//! `courier top`: per sender, what is pending, since when, what is parked,
//! and how fast deliveries are redelivered and pending ones drain, refreshed
//! every interval. Offline it re-reads a copy of the store each time; live
//! (`--node`) it asks the admin endpoint, whose running senders also count
//! their redeliveries. Sampling is I/O; the rates and the screen are the
//! pure [`rows`] and [`render`].

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use courier::delivery::inspect;
use courier::persistence::Journal;
use serde_json::{Value, json};

use crate::commands::Result;
use crate::open;
use crate::output::{Table, age_at, now_ms};

/// One sender at one moment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SenderSample {
    pub(crate) name: String,
    pub(crate) pending: u64,
    pub(crate) oldest_pending_ms: Option<u64>,
    pub(crate) parked: u64,
    /// Redeliveries so far by the running sender (live only).
    pub(crate) redelivered: Option<u64>,
}

/// Every sender at one moment (`at_ms`: milliseconds since the epoch).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) at_ms: u64,
    pub(crate) senders: Vec<SenderSample>,
}

/// One line of the screen.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TopRow {
    pub(crate) name: String,
    pub(crate) pending: u64,
    pub(crate) oldest_pending_ms: Option<u64>,
    pub(crate) parked: u64,
    /// Redeliveries per second since the previous sample.
    pub(crate) redelivery_rate: Option<f64>,
    /// Change of `pending` per second since the previous sample
    /// (negative: draining).
    pub(crate) pending_rate: Option<f64>,
}

/// The rows of `now`, with rates against `previous` where both samples
/// know the sender (and, for redeliveries, both counted them and the count
/// did not go down, as it does when the sender restarted).
pub(crate) fn rows(previous: Option<&Sample>, now: &Sample) -> Vec<TopRow> {
    let elapsed = previous.map(|p| now.at_ms.saturating_sub(p.at_ms) as f64 / 1000.0);
    now.senders
        .iter()
        .map(|s| {
            let before = previous.and_then(|p| p.senders.iter().find(|b| b.name == s.name));
            let per_second = |delta: f64| match elapsed {
                Some(secs) if secs > 0.0 => Some(delta / secs),
                _ => None,
            };
            let redelivery_rate = match (before.and_then(|b| b.redelivered), s.redelivered) {
                (Some(then), Some(now)) if now >= then => per_second((now - then) as f64),
                _ => None,
            };
            let pending_rate = before.and_then(|b| per_second(s.pending as f64 - b.pending as f64));
            TopRow {
                name: s.name.clone(),
                pending: s.pending,
                oldest_pending_ms: s.oldest_pending_ms,
                parked: s.parked,
                redelivery_rate,
                pending_rate,
            }
        })
        .collect()
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.1}/s"))
}

/// The screen for `rows` sampled at `at_ms` from `source`.
pub(crate) fn render(rows: &[TopRow], at_ms: u64, source: &str) -> String {
    let mut table = Table::new(&[
        "sender",
        "pending",
        "oldest",
        "parked",
        "redelivered",
        "pending change",
    ]);
    for r in rows {
        table.row(vec![
            r.name.clone(),
            r.pending.to_string(),
            r.oldest_pending_ms
                .map_or_else(|| "-".into(), |ms| age_at(at_ms, ms)),
            r.parked.to_string(),
            rate(r.redelivery_rate),
            rate(r.pending_rate),
        ]);
    }
    table.render(&format!("SENDERS of {source}"))
}

fn rows_json(rows: &[TopRow], at_ms: u64) -> Value {
    json!({
        "at_ms": at_ms,
        "senders": rows.iter().map(|r| json!({
            "name": r.name,
            "pending": r.pending,
            "oldest_pending_ms": r.oldest_pending_ms,
            "parked": r.parked,
            "redelivery_rate": r.redelivery_rate,
            "pending_rate": r.pending_rate,
        })).collect::<Vec<_>>(),
    })
}

/// Samples every `interval`, `iterations` times (or until interrupted),
/// and prints each screen (clearing the terminal between them when
/// standard output is one; one JSON document per line with `--json`).
pub(crate) async fn run<F, Fut>(
    interval: Duration,
    iterations: Option<u64>,
    json: bool,
    mut sample: F,
    source: &str,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Sample>>,
{
    if interval.is_zero() {
        return Err("--interval must be more than 0".into());
    }
    let tty = std::io::stdout().is_terminal() && !json;
    let mut previous: Option<Sample> = None;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut done = 0;
    while iterations.is_none_or(|n| done < n) {
        ticks.tick().await;
        let now = sample().await?;
        let shown = rows(previous.as_ref(), &now);
        if json {
            println!("{}", serde_json::to_string(&rows_json(&shown, now.at_ms))?);
        } else {
            let screen = render(&shown, now.at_ms, source);
            if tty {
                print!("\x1b[2J\x1b[H{screen}");
            } else {
                println!("{screen}");
            }
        }
        std::io::stdout().flush()?;
        previous = Some(now);
        done += 1;
    }
    Ok(())
}

/// One sample of the store at `path` (a fresh copy each time).
pub(crate) async fn sample_store(path: &Path) -> Result<Sample> {
    let source = open::Source::open(path).await?;
    let journal: Arc<dyn Journal> = source.journal();
    let senders = inspect::senders(&journal).await?;
    Ok(Sample {
        at_ms: now_ms(),
        senders: senders
            .into_iter()
            .map(|s| SenderSample {
                name: s.name,
                pending: s.pending,
                oldest_pending_ms: s.oldest_pending_ms,
                parked: s.parked,
                redelivered: None,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(name: &str, pending: u64, redelivered: Option<u64>) -> SenderSample {
        SenderSample {
            name: name.into(),
            pending,
            oldest_pending_ms: Some(1_000),
            parked: 1,
            redelivered,
        }
    }

    #[test]
    fn rates_are_per_second_between_samples_of_the_same_sender() {
        let first = Sample {
            at_ms: 10_000,
            senders: vec![sender("a", 10, Some(5)), sender("b", 3, None)],
        };
        let second = Sample {
            at_ms: 12_000,
            senders: vec![
                sender("a", 4, Some(9)),
                sender("b", 5, None),
                sender("c", 1, Some(0)),
            ],
        };
        assert!(
            rows(None, &first)
                .iter()
                .all(|r| r.redelivery_rate.is_none() && r.pending_rate.is_none())
        );
        let shown = rows(Some(&first), &second);
        assert_eq!(shown[0].redelivery_rate, Some(2.0));
        assert_eq!(shown[0].pending_rate, Some(-3.0));
        // Offline: no redelivery counter, but the pending change.
        assert_eq!(shown[1].redelivery_rate, None);
        assert_eq!(shown[1].pending_rate, Some(1.0));
        // New since the last sample: nothing to compare with.
        assert_eq!(shown[2].pending_rate, None);
    }

    #[test]
    fn a_restarted_sender_or_a_clock_that_did_not_move_shows_no_rate() {
        let first = Sample {
            at_ms: 5_000,
            senders: vec![sender("a", 1, Some(50))],
        };
        let restarted = Sample {
            at_ms: 6_000,
            senders: vec![sender("a", 1, Some(2))],
        };
        assert_eq!(rows(Some(&first), &restarted)[0].redelivery_rate, None);
        let same_time = Sample {
            at_ms: 5_000,
            senders: vec![sender("a", 1, Some(60))],
        };
        assert_eq!(rows(Some(&first), &same_time)[0].redelivery_rate, None);
    }

    #[test]
    fn the_screen_shows_ages_and_rates() {
        let shown = vec![TopRow {
            name: "orders".into(),
            pending: 2,
            oldest_pending_ms: Some(1_000),
            parked: 0,
            redelivery_rate: Some(1.5),
            pending_rate: None,
        }];
        assert_eq!(
            render(&shown, 193_000, "x"),
            "SENDERS of x\n  sender  pending  oldest  parked  redelivered  pending change\n  orders  2        3m12s   0       1.5/s        -\n"
        );
    }
}
