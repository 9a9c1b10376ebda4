//! The crash harness on itself: this binary re-runs as the child.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_test_support::crash::Child;

const ROLE: &str = "COURIER_HARNESS_CHILD";
const LINES: u64 = 500;

/// What the child does in each role; `None` in the parent.
fn play_child() -> bool {
    let Ok(role) = std::env::var(ROLE) else {
        return false;
    };
    // "print": prints its lines, then waits to be killed; any other role
    // exits at once without a word.
    if role == "print" {
        for n in 1..=LINES {
            println!("line {n}");
        }
        println!("done");
        std::thread::sleep(Duration::from_secs(600));
    }
    true
}

#[test]
fn every_line_reaches_the_callback_in_order_without_the_test_prefix() {
    if play_child() {
        return;
    }
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let mut child = Child::spawn(
        "every_line_reaches_the_callback_in_order_without_the_test_prefix",
        &[(ROLE, "print")],
        move |line| sink.lock().expect("lock").push(line.to_owned()),
    );
    let done = Arc::clone(&lines);
    child.wait_until("done", Duration::from_secs(60), || {
        done.lock().expect("lock").iter().any(|l| l == "done")
    });
    child.kill();
    let lines = lines.lock().expect("lock");
    // The first line may carry the test harness's "test … ... " in front:
    // the harness strips it, so every line is the child's own.
    let numbered: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("line ")?.parse().ok())
        .collect();
    assert_eq!(
        numbered,
        (1..=LINES).collect::<Vec<_>>(),
        "first lines: {:?}",
        &lines[..lines.len().min(3)]
    );
}

#[test]
fn waiting_fails_loudly_when_the_child_exits_first() {
    if play_child() {
        return;
    }
    let mut child = Child::spawn(
        "waiting_fails_loudly_when_the_child_exits_first",
        &[(ROLE, "exit")],
        |_| {},
    );
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        child.wait_until("a line that never comes", Duration::from_secs(60), || false);
    }));
    let panic = waited.expect_err("the wait must fail");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("a line that never comes: the child exited first"),
        "{message}"
    );
}
