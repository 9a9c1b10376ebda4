//! The bounded values of the file: counts of at least 1, durations more
//! than zero and below a maximum, fractions; and where in the text a span
//! starts.

use std::ops::Range;
use std::time::Duration;

use courier_delivery::{MAX_EXPIRE_AFTER, MAX_REDELIVERY_DELAY};
use serde::{Deserialize, Deserializer};

/// The 1-based line on which `span` starts.
pub(super) fn line_of(text: &str, span: Range<usize>) -> usize {
    text.get(..span.start)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

pub(super) fn positive<'de, D, T>(deserializer: D, what: &str) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialEq + Default,
{
    let value = T::deserialize(deserializer)?;
    if value == T::default() {
        return Err(serde::de::Error::custom(format!("must be {what}")));
    }
    Ok(value)
}

pub(super) fn positive_usize<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<usize, D::Error> {
    positive(d, "at least 1")
}

pub(super) fn positive_usize_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<usize>, D::Error> {
    positive(d, "at least 1").map(Some)
}

pub(super) fn positive_u32_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u32>, D::Error> {
    positive(d, "at least 1").map(Some)
}

pub(super) fn positive_u64_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u64>, D::Error> {
    positive(d, "at least 1").map(Some)
}

/// A duration more than zero and at most `max` (written `max_text`).
pub(super) fn bounded_duration<'de, D: Deserializer<'de>>(
    d: D,
    max: Duration,
    max_text: &str,
) -> std::result::Result<Option<Duration>, D::Error> {
    let duration: Duration = humantime_serde::deserialize(d)?;
    if duration.is_zero() {
        return Err(serde::de::Error::custom(
            "must be more than zero (for example \"250ms\" or \"5s\")",
        ));
    }
    if duration > max {
        return Err(serde::de::Error::custom(format!(
            "must be at most {max_text}, got {duration:?}"
        )));
    }
    Ok(Some(duration))
}

pub(super) fn redelivery_delay_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    bounded_duration(d, MAX_REDELIVERY_DELAY, "\"1d\" (1 day)")
}

pub(super) fn expiry_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    bounded_duration(d, MAX_EXPIRE_AFTER, "\"10y\" (10 years)")
}

pub(super) fn fraction_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<f64>, D::Error> {
    let value = f64::deserialize(d)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "must be between 0.0 and 1.0, got {value}"
        )));
    }
    Ok(Some(value))
}
