//! Waiting for a condition without a sleep that hopes.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 5 ms of tokio time until it returns true.
///
/// Under paused time (`start_paused = true`) the polls cost no wall time, and
/// the deadline is deterministic.
///
/// # Panics
///
/// If `check` is still false after `timeout` of tokio time.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::eventually;

    #[tokio::test(start_paused = true)]
    async fn returns_once_the_condition_holds() {
        let polls = AtomicU32::new(0);
        eventually(Duration::from_secs(1), || async {
            polls.fetch_add(1, Ordering::SeqCst) == 3
        })
        .await;
        assert_eq!(polls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "condition not met within 1s")]
    async fn fails_when_the_condition_never_holds() {
        eventually(Duration::from_secs(1), || async { false }).await;
    }
}
