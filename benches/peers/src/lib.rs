//! Peer comparison benches for courier's actor core.
//!
//! The same counter actor is written four times, once per implementation:
//! courier, a raw tokio mpsc channel with a consumer task (the limit any
//! actor library on tokio can reach), ractor and kameo. Each one is driven
//! through the [`Peer`] and [`Target`] traits, so every implementation runs
//! the very same driver code in [`harness`], in the same criterion group and
//! the same run: the ratios in `docs/benchmarks.md` come from one run.
//!
//! Run: `cd benches/peers && cargo bench`. Results: `docs/benchmarks.md`.

pub mod courier_actor;
pub mod harness;
pub mod kameo_actor;
pub mod latch;
pub mod ractor_actor;
pub mod raw_channel;
pub mod target;

pub use latch::Latch;
pub use target::{MailboxKind, Peer, Target};
