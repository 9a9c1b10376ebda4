//! Supervision: what happens when an actor's handler fails.
//!
//! A handler (or a lifecycle hook) that returns an error or panics is caught;
//! the actor's [`SupervisorStrategy`] then picks a [`Directive`]:
//!
//! - **Restart**: the failed instance is dropped (its `stopped` hook runs, its
//!   children are stopped and its timers cancelled), a fresh one is made from
//!   the factory after an exponential backoff, and the mailbox is kept. More
//!   than `max_restarts` restarts within the `within` window stop the actor.
//! - **Resume**: the instance keeps its state and takes the next message.
//! - **Stop**: the actor stops.
//!
//! The message being handled when the failure happened is not retried. The
//! parent, if the actor has one, is told through
//! [`Actor::child_failed`](crate::Actor::child_failed), and every failure is
//! logged through `tracing`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::BoxError;
use crate::path::ActorPath;

/// What to do with an actor that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// Replace the instance with a fresh one from the factory.
    Restart,
    /// Keep the instance and go on with the next message.
    Resume,
    /// Stop the actor.
    Stop,
}

/// Why an actor failed.
#[derive(Debug)]
pub enum Failure {
    /// A handler or hook returned an error.
    Error(BoxError),
    /// A handler, hook or the factory panicked; the panic message.
    Panic(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => write!(f, "error: {e}"),
            Self::Panic(m) => write!(f, "panic: {m}"),
        }
    }
}

/// The notice a parent gets when one of its children fails.
#[derive(Debug)]
pub struct ChildFailure {
    /// The child that failed.
    pub child: ActorPath,
    /// Why it failed.
    pub failure: Failure,
    /// What the child's strategy did about it. `Stop` also when the child was
    /// restarted too often within its window.
    pub directive: Directive,
}

type Decider = Arc<dyn Fn(&Failure) -> Directive + Send + Sync>;

/// How an actor reacts to its own failures.
///
/// The default is Restart, at most 10 restarts within 10 seconds, with
/// backoff from 10 ms doubling up to 1 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use courier::{Directive, Failure, SupervisorStrategy};
///
/// let strategy = SupervisorStrategy::restart()
///     .with_max_restarts(3, Duration::from_secs(60))
///     .with_backoff(Duration::from_millis(100), Duration::from_secs(5))
///     // Panics are bugs: stop instead of restarting.
///     .with_decider(|failure| match failure {
///         Failure::Panic(_) => Directive::Stop,
///         Failure::Error(_) => Directive::Restart,
///     });
/// # let _ = strategy;
/// ```
#[derive(Clone)]
pub struct SupervisorStrategy {
    directive: Directive,
    decider: Option<Decider>,
    max_restarts: u32,
    within: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl SupervisorStrategy {
    /// Restart on failure (with the default limits and backoff).
    pub fn restart() -> Self {
        Self {
            directive: Directive::Restart,
            decider: None,
            max_restarts: 10,
            within: Duration::from_secs(10),
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }

    /// Keep the actor's state and go on with the next message.
    pub fn resume() -> Self {
        Self {
            directive: Directive::Resume,
            ..Self::restart()
        }
    }

    /// Stop the actor on its first failure.
    pub fn stop() -> Self {
        Self {
            directive: Directive::Stop,
            ..Self::restart()
        }
    }

    /// Stops the actor once it would be restarted more than `max_restarts`
    /// times within `within`.
    pub fn with_max_restarts(mut self, max_restarts: u32, within: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.within = within;
        self
    }

    /// The n-th restart within the window waits `min * 2^(n-1)`, at most `max`.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// Chooses the directive per failure instead of always the same one.
    pub fn with_decider(
        mut self,
        decider: impl Fn(&Failure) -> Directive + Send + Sync + 'static,
    ) -> Self {
        self.decider = Some(Arc::new(decider));
        self
    }

    pub(crate) fn decide(&self, failure: &Failure) -> Directive {
        match &self.decider {
            Some(decider) => decider(failure),
            None => self.directive,
        }
    }

    pub(crate) fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    pub(crate) fn within(&self) -> Duration {
        self.within
    }

    /// The wait before restart number `n` (1-based) within the window.
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.min_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

impl Default for SupervisorStrategy {
    fn default() -> Self {
        Self::restart()
    }
}

impl fmt::Debug for SupervisorStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorStrategy")
            .field("directive", &self.directive)
            .field("decider", &self.decider.as_ref().map(|_| ".."))
            .field("max_restarts", &self.max_restarts)
            .field("within", &self.within)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = SupervisorStrategy::restart()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(700));
        let waits: Vec<_> = (1..=5).map(|n| s.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 700, 700]);
        assert_eq!(s.backoff(200), Duration::from_millis(700));
    }

    #[test]
    fn the_decider_overrides_the_directive() {
        let s = SupervisorStrategy::restart().with_decider(|f| match f {
            Failure::Panic(_) => Directive::Stop,
            Failure::Error(_) => Directive::Resume,
        });
        assert_eq!(s.decide(&Failure::Panic("x".into())), Directive::Stop);
        assert_eq!(s.decide(&Failure::Error("x".into())), Directive::Resume);
        assert_eq!(
            SupervisorStrategy::stop().decide(&Failure::Error("x".into())),
            Directive::Stop
        );
    }
}
