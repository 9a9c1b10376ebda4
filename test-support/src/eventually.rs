//! Waiting for a condition without a sleep that hopes.

use std::time::Duration;

/// Polls `check` every 5 ms of tokio time until it returns true.
///
/// Works on whatever clock the test runs: under paused time
/// (`start_paused = true`) the polls cost no wall time and the deadline is
/// deterministic. `check` is synchronous: read shared state, or keep a
/// side effect (such as a retried send) in it.
///
/// # Panics
///
/// If `check` is still false after `timeout` of tokio time; the message
/// starts with `what`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::eventually;

    #[tokio::test(start_paused = true)]
    async fn returns_once_the_condition_holds() {
        let mut polls = 0;
        eventually("the fourth poll", Duration::from_secs(1), || {
            polls += 1;
            polls == 4
        })
        .await;
        assert_eq!(polls, 4);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "never: not within 1s")]
    async fn fails_when_the_condition_never_holds() {
        eventually("never", Duration::from_secs(1), || false).await;
    }
}
