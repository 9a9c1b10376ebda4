//! Dead letters: messages that could not be delivered.
//!
//! Every message that a local send cannot enqueue, and every message left in
//! a mailbox when its actor stops, becomes a [`DeadLetter`] published on the
//! system's [`EventStream`](crate::EventStream) and logged through `tracing`.
//! The log is rate limited: at most a configured number of lines per second,
//! then one summary line with the number suppressed, so a flood of dead
//! letters cannot flood the log. The event stream itself is not rate limited.
//! Each one is also counted, through the `metrics` facade, as
//! `courier_dead_letters_total{reason, message_type}`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

// tokio's clock, so that paused test time drives the log window (outside a
// runtime it is the system's monotonic clock).
use tokio::time::Instant;

use crate::dead_message::DeadMessage;
use crate::event_stream::EventStream;
use crate::path::ActorPath;
use crate::sync;

/// A message that could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where the message was going.
    pub recipient: ActorPath,
    /// The message's Rust type name.
    pub message_type: &'static str,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
}

/// Why a message became a dead letter.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The recipient's bounded mailbox was full.
    MailboxFull,
    /// The recipient had stopped, or stopped with the message still queued.
    ActorStopped,
    /// A reason given by a transport or another layer (for example a lost
    /// connection).
    Other(Cow<'static, str>),
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MailboxFull => f.write_str("mailbox full"),
            Self::ActorStopped => f.write_str("actor stopped"),
            Self::Other(reason) => f.write_str(reason),
        }
    }
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dead letter to {} ({}): {}",
            self.recipient, self.message_type, self.reason
        )
    }
}

/// Publishes dead letters and logs them at a rate limit.
pub(crate) struct DeadLetters {
    events: EventStream,
    log: Mutex<LogWindow>,
    per_second: u32,
    /// Message types whose dead letters are published but not logged.
    quiet: RwLock<HashSet<&'static str>>,
}

struct LogWindow {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

impl DeadLetters {
    pub(crate) fn new(events: EventStream, per_second: u32) -> Self {
        Self {
            events,
            log: Mutex::new(LogWindow {
                started: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
            per_second,
            quiet: RwLock::new(HashSet::new()),
        }
    }

    /// Stops logging dead letters of the message type named `type_name`.
    pub(crate) fn quiet(&self, type_name: &'static str) {
        sync::write(&self.quiet).insert(type_name);
    }

    pub(crate) fn publish(&self, letter: DeadLetter) {
        count(&letter);
        self.log(&letter);
        self.events.publish(letter);
    }

    /// Publishes `letter`, and (for subscribers to [`DeadMessage`]) the
    /// message with it.
    pub(crate) fn publish_message<M: Send + 'static>(
        &self,
        letter: DeadLetter,
        sender: Option<ActorPath>,
        message: M,
    ) {
        if self.events.has_subscribers::<DeadMessage>() {
            self.events
                .publish(DeadMessage::new(letter.clone(), sender, message));
        }
        self.publish(letter);
    }

    fn log(&self, letter: &DeadLetter) {
        if sync::read(&self.quiet).contains(letter.message_type) {
            return;
        }
        let mut window = sync::lock(&self.log);
        let now = Instant::now();
        if now.duration_since(window.started) >= Duration::from_secs(1) {
            if window.suppressed > 0 {
                tracing::info!(
                    suppressed = window.suppressed,
                    "{} more dead letters were not logged in the last window",
                    window.suppressed
                );
            }
            *window = LogWindow {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if window.logged < self.per_second {
            window.logged += 1;
            drop(window);
            tracing::info!(
                recipient = %letter.recipient,
                message_type = letter.message_type,
                reason = %letter.reason,
                "dead letter"
            );
        } else {
            window.suppressed += 1;
        }
    }
}

/// Counts it where it is published, not in a subscriber: the event
/// stream drops the oldest events for a subscriber that lags, so a
/// count kept downstream would come up short exactly when dead letters
/// spike. The labels are bounded: three reasons (a transport's own text
/// is not a label: it carries addresses and counts), and Rust type
/// names, of which a program has a fixed set.
fn count(letter: &DeadLetter) {
    let reason = match letter.reason {
        DeadLetterReason::MailboxFull => "mailbox_full",
        DeadLetterReason::ActorStopped => "actor_stopped",
        DeadLetterReason::Other(_) => "other",
    };
    metrics::counter!(
        "courier_dead_letters_total",
        "reason" => reason,
        "message_type" => letter.message_type,
    )
    .increment(1);
}
