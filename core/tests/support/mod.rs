//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

pub mod recorder;

use std::time::Duration;

use courier_core::{ActorSystem, DeadLetter};
use tokio::sync::broadcast;

/// Receives the next item within `timeout`, or fails the test.
pub async fn recv_within<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    timeout: Duration,
) -> T {
    match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("channel closed"),
        Err(_) => panic!("nothing received within {timeout:?}"),
    }
}

/// Collects every dead letter published so far on `rx`.
pub fn drain_dead_letters(rx: &mut broadcast::Receiver<DeadLetter>) -> Vec<DeadLetter> {
    let mut out = Vec::new();
    while let Ok(letter) = rx.try_recv() {
        out.push(letter);
    }
    out
}

pub fn system() -> ActorSystem {
    ActorSystem::new("test")
}

pub const SECOND: Duration = Duration::from_secs(1);
