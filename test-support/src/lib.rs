//! Dev-only helpers shared by courier's tests, so that every crash loop,
//! ledger and random fault schedule works the same way and is fixed in one
//! place.
//!
//! - [`crash`]: the crash harness. A test re-executes its own binary as a
//!   child in a role, SIGKILLs it, reopens what it wrote and checks; seed and
//!   cycle count come from `COURIER_CRASH_SEED` / `COURIER_CRASH_CYCLES`.
//! - [`Rng`]: the one deterministic generator for fault schedules.
//! - [`eventually`]: poll a condition on tokio time instead of sleeping and
//!   hoping.
//! - `store` (feature `store`): `open_sled` / `open_durable`, which retry
//!   while a killed child's lock goes away, and the engine seam: `engine()`
//!   and `open_store` read `COURIER_TEST_ENGINE` (`sled` or `fjall`).
//! - `ledger` (feature `ledger`): a deduplicating receiver whose effect is a
//!   durable ledger, and the function that reads the ledger back.
//! - `sim` (feature `sim`): a node's transport inside a turmoil simulation.
//!
//! The crate is `publish = false` and only ever a dev-dependency. Helpers
//! panic on failure: they are test assertions.

pub mod crash;
mod eventually;
#[cfg(feature = "ledger")]
pub mod ledger;
mod rng;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "store")]
pub mod store;

pub use eventually::eventually;
pub use rng::Rng;
