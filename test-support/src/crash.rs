//! The crash harness: the test binary re-executes itself as a child that
//! plays a role (its environment says which), the parent SIGKILLs it at a
//! moment drawn from a seeded [`Rng`](crate::Rng), reopens what the child
//! wrote and checks its invariants, as sled's `test_crash_recovery` does.
//!
//! The child reports progress by printing lines; the parent sees each line
//! through a callback. What matters for the checks is what the child printed
//! *before* the kill: [`Child::kill`] returns only after every such line was
//! handed to the callback.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Seed and cycle count of one crash run: from `COURIER_CRASH_SEED` and
/// `COURIER_CRASH_CYCLES` when set, else the test's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Seeds every random choice of the run; printed so a failure replays.
    pub seed: u64,
    /// How many kill-and-restart cycles to run.
    pub cycles: u64,
}

impl Plan {
    /// Reads the environment over the given defaults.
    ///
    /// # Panics
    ///
    /// If a variable is set but is not a number: a replay that silently ran
    /// the default seed would prove nothing.
    pub fn from_env(default_seed: u64, default_cycles: u64) -> Self {
        Self {
            seed: env_u64("COURIER_CRASH_SEED").unwrap_or(default_seed),
            cycles: env_u64("COURIER_CRASH_CYCLES").unwrap_or(default_cycles),
        }
    }
}

/// The number in environment variable `name`, if it is set.
///
/// # Panics
///
/// If it is set but is not a `u64`.
pub fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(e) => panic!("{name}={value:?} is not a number: {e}"),
    }
}

/// The runtime a child role runs on: two workers, as the machine has.
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("child runtime")
}

/// A child process: this test binary running only `test`, with `env` set
/// so that the test plays its child role. It is killed when dropped, so it
/// never outlives a failed assertion.
pub struct Child {
    child: std::process::Child,
    reader: Option<JoinHandle<()>>,
}

impl Child {
    /// Starts the test binary running only `test` (its exact name) with
    /// `env`; each line it prints goes to `on_line`, in order, on a reader
    /// thread. Its stderr is inherited so that a child's panic shows.
    ///
    /// # Panics
    ///
    /// If the binary cannot be started.
    pub fn spawn(
        test: &str,
        env: &[(&str, &str)],
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The test harness may print its own "test name ... " in
                // front of the child's first line.
                let line = match line.rsplit_once(" ... ") {
                    Some((_, rest)) if line.starts_with("test ") => rest.to_owned(),
                    _ => line,
                };
                on_line(&line);
            }
        });
        Self {
            child,
            reader: Some(reader),
        }
    }

    /// Polls `done` every 2 ms until it is true.
    ///
    /// # Panics
    ///
    /// If the child exits first, or `timeout` passes; `what` names the wait
    /// (with the seed) in the message.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            if let Ok(Some(status)) = self.child.try_wait() {
                // It may have printed what we wait for just before exiting.
                self.join_reader();
                assert!(done(), "{what}: the child exited first with {status}");
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{what}: not within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILLs the child and reaps it; returns once every line it printed
    /// before dying went through the callback.
    pub fn kill(mut self) {
        self.stop();
    }

    /// Waits for the child to exit by itself and returns its status, with
    /// every line it printed handed to the callback.
    ///
    /// # Panics
    ///
    /// If it runs longer than `timeout` (it is killed first).
    pub fn wait(mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.join_reader();
                    return status;
                }
                Ok(None) => {}
                Err(e) => panic!("cannot wait for the child: {e}"),
            }
            if started.elapsed() > timeout {
                self.stop();
                panic!("the child did not finish within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        // `kill` is SIGKILL on Unix: no destructor, no flush, as a crash.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            // A callback that panicked saw lines it could not record: the
            // checks after it would run on less than the child printed.
            if reader.join().is_err() && !std::thread::panicking() {
                panic!("the child's line callback panicked");
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}
