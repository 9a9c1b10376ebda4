//! [`Redelivery`]: when an unconfirmed delivery is sent again.
//!
//! Pure: the caller passes the attempt number and a random number in
//! `0.0..1.0` (for jitter), and gets a delay back. No clock, no RNG.
//!
//! Every delay is at most [`MAX_REDELIVERY_DELAY`], whatever the settings
//! say: the configuration file refuses longer ones, and settings built by
//! hand are clamped, so that `now + delay` can never overflow.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest delay between two attempts of a delivery, and the slowest
/// redelivery tick: 1 day. Longer intervals and backoff caps are clamped to
/// it.
pub const MAX_REDELIVERY_DELAY: Duration = Duration::from_secs(24 * 3600);

/// How long to wait for an ack before sending a delivery again.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Redelivery {
    /// The same interval after every attempt (Akka's `redeliver-interval`).
    Fixed {
        /// Time between attempts.
        interval: Duration,
    },
    /// `min`, then doubling after each attempt up to `max`, each delay
    /// spread by ± `jitter` (a fraction in `0.0..=1.0`) so that many senders
    /// do not retry in lockstep.
    Backoff {
        /// The delay after the first attempt.
        min: Duration,
        /// The longest delay.
        max: Duration,
        /// How much each delay is spread, as a fraction of it.
        jitter: f64,
    },
}

impl Default for Redelivery {
    /// Akka's default: a fixed 5 s.
    fn default() -> Self {
        Self::Fixed {
            interval: Duration::from_secs(5),
        }
    }
}

impl Redelivery {
    /// The delay before the next attempt, after `attempt` attempts (1 after
    /// the first send), at most [`MAX_REDELIVERY_DELAY`]. `random` is a
    /// number in `0.0..1.0`; it is ignored by [`Fixed`](Self::Fixed). A
    /// jitter or random number that is not a number counts as 0.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        match *self {
            Self::Fixed { interval } => interval.min(MAX_REDELIVERY_DELAY),
            Self::Backoff { min, max, jitter } => {
                let max = max.min(MAX_REDELIVERY_DELAY);
                let doublings = attempt.saturating_sub(1).min(32);
                let base = min.saturating_mul(1u32 << doublings.min(31)).min(max);
                let spread = fraction(jitter) * (2.0 * fraction(random) - 1.0);
                // At most twice a day: `mul_f64` cannot overflow.
                base.mul_f64(1.0 + spread).min(max)
            }
        }
    }

    /// How often the sender looks for overdue deliveries: half the
    /// interval (or half the backoff's `min`), at most half of
    /// [`MAX_REDELIVERY_DELAY`] and at least 1 ms. A delivery is due at an
    /// arbitrary moment between two looks, so it goes out at most one tick
    /// late: with a fixed interval, between 1× and 1.5× the interval after
    /// the previous attempt. Looking once per interval would make that 1×
    /// to 2×.
    pub fn tick(&self) -> Duration {
        let shortest = match *self {
            Self::Fixed { interval } => interval,
            Self::Backoff { min, .. } => min,
        };
        (shortest.min(MAX_REDELIVERY_DELAY) / 2).max(Duration::from_millis(1))
    }
}

/// `x` within `0.0..=1.0`; NaN (which `clamp` keeps, and `mul_f64` panics
/// on) is 0.
fn fraction(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn fixed_is_the_same_every_time() {
        let r = Redelivery::Fixed { interval: 250 * MS };
        assert_eq!(r.delay(1, 0.9), 250 * MS);
        assert_eq!(r.delay(40, 0.1), 250 * MS);
        assert_eq!(r.tick(), 125 * MS);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Redelivery::Backoff {
            min: 100 * MS,
            max: 1000 * MS,
            jitter: 0.0,
        };
        let delays: Vec<_> = (1..=6).map(|a| r.delay(a, 0.5)).collect();
        assert_eq!(
            delays,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        assert_eq!(r.delay(u32::MAX, 0.5), 1000 * MS);
        assert_eq!(r.tick(), 50 * MS);
    }

    #[test]
    fn jitter_spreads_within_its_fraction_and_never_past_the_cap() {
        let r = Redelivery::Backoff {
            min: 100 * MS,
            max: 10_000 * MS,
            jitter: 0.2,
        };
        assert_eq!(r.delay(1, 0.0), 80 * MS);
        assert_eq!(r.delay(1, 0.5), 100 * MS);
        assert!(r.delay(1, 0.999_999) <= 120 * MS);
        assert!(r.delay(1, 0.999_999) > 119 * MS);
        let capped = Redelivery::Backoff {
            min: 100 * MS,
            max: 150 * MS,
            jitter: 1.0,
        };
        assert_eq!(capped.delay(3, 0.999), 150 * MS);
    }

    #[test]
    fn settings_built_by_hand_cannot_overflow_the_schedule() {
        let day = MAX_REDELIVERY_DELAY;
        let fixed = Redelivery::Fixed {
            interval: Duration::MAX,
        };
        assert_eq!(fixed.delay(1, 0.5), day);
        assert_eq!(fixed.tick(), day / 2);
        for jitter in [1.0, f64::NAN, f64::INFINITY] {
            let backoff = Redelivery::Backoff {
                min: Duration::MAX,
                max: Duration::MAX,
                jitter,
            };
            for random in [0.0, 0.999, f64::NAN] {
                let delay = backoff.delay(u32::MAX, random);
                assert!(delay <= day, "{jitter} {random}: {delay:?}");
            }
            assert_eq!(backoff.tick(), day / 2);
        }
    }
}
