//! [`Refusals`]: the log of refused peers, at a bounded rate and with
//! bounded fields, so that a peer cannot flood the log or fill it with
//! text of its choosing by connecting again and again.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many refusals are logged in each window.
const PER_WINDOW: u32 = 10;

/// The window.
const WINDOW: Duration = Duration::from_secs(10);

/// The longest peer-chosen text logged, in characters.
const MAX_FIELD: usize = 64;

/// Counts refused peers and logs at most [`PER_WINDOW`] of them per
/// [`WINDOW`], then how many more there were.
pub(crate) struct Refusals {
    state: Mutex<State>,
}

struct State {
    since: Instant,
    logged: u32,
    suppressed: u64,
}

impl Refusals {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                since: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Logs (or counts) one refusal: of the peer calling itself `peer`, if
    /// it said, for `reason`. Whether it was logged.
    pub(crate) fn refused(&self, peer: Option<&str>, reason: &str) -> bool {
        crate::metrics::link_refused();
        let now = Instant::now();
        let mut state = courier_core::sync::lock(&self.state);
        if now.duration_since(state.since) >= WINDOW {
            if state.suppressed > 0 {
                tracing::warn!(
                    suppressed = state.suppressed,
                    "more peers were refused than logged in the last {WINDOW:?}"
                );
            }
            *state = State {
                since: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if state.logged >= PER_WINDOW {
            state.suppressed += 1;
            return false;
        }
        state.logged += 1;
        drop(state);
        let reason = bounded(reason, 4 * MAX_FIELD);
        match peer {
            Some(peer) => tracing::warn!(peer = %bounded(peer, MAX_FIELD), %reason, "peer refused"),
            None => tracing::warn!(%reason, "peer refused"),
        }
        true
    }
}

/// `text`, escaped and cut to at most `max` characters.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .flat_map(char::escape_debug)
        .take(max)
        .collect();
    if text.chars().flat_map(char::escape_debug).nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refusals_are_logged_at_a_bounded_rate() {
        let refusals = Refusals::new();
        let logged = (0..100)
            .filter(|_| refusals.refused(Some("flooder"), "bad"))
            .count();
        assert_eq!(logged, PER_WINDOW as usize);
        tokio::time::advance(WINDOW).await;
        assert!(
            refusals.refused(Some("flooder"), "bad"),
            "a new window logs again"
        );
    }

    #[test]
    fn bounded_escapes_and_cuts_peer_text() {
        assert_eq!(bounded("shop-node", 64), "shop-node");
        assert_eq!(bounded("a\nb", 64), "a\\nb");
        let long = "x".repeat(1000);
        let cut = bounded(&long, 64);
        assert_eq!(cut.chars().count(), 65);
        assert!(cut.ends_with('…'));
    }
}
