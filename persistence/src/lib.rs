//! courier-persistence: journals, snapshots and event-sourced actors.
//!
//! - [`Journal`] and [`SnapshotStore`]: object-safe storage traits with
//!   Akka's journal semantics (atomic batches, bounded replay in pages, a
//!   highest sequence number that never goes down, delete-up-to).
//! - [`Store`]: both traits over one [`Engine`], with a single writer task
//!   that commits concurrent writes in groups and answers only after the
//!   flush: `Ok` means durable. [`MemoryStore`] for tests, [`SledStore`] for
//!   the embedded durable default, `FjallStore` (feature `fjall`) for the
//!   second embedded engine, and `DurableStore` over either, chosen at run
//!   time by [`EngineKind`]. No engine call that may block runs on a tokio
//!   worker.
//! - The store knows what it acknowledged independently of the engine: a
//!   commit number in every engine batch and a commit record outside the
//!   engine, compared on open ([`Error::RolledBack`]); a store epoch
//!   ([`store_epoch`]) that changes only when a loss is accepted; and
//!   [`Store::close`], which releases the engine (and sled's file lock)
//!   without ever blocking a runtime worker.
//! - Records carry a manifest, writer id, timestamp and CRC32; replay that
//!   meets a bad checksum, an undecodable record or a sequence gap fails
//!   with a typed error naming the persistence id and sequence number.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod commit_file;
mod durable;
mod engine;
mod epoch;
mod error;
mod eventsourced;
mod extension;
#[cfg(feature = "fjall")]
mod fjall_engine;
pub mod format;
mod journal;
mod keys;
pub mod metrics;
mod record;
#[cfg(feature = "sled")]
mod sled_engine;
mod snapshot;
mod store;
#[cfg(feature = "tck")]
pub mod tck;

pub use commit_file::COMMIT_FILE;
#[cfg(any(feature = "sled", feature = "fjall"))]
pub use durable::DurableEngine;
pub use durable::EngineKind;
pub use engine::{Engine, EngineOp, Entry, MemoryEngine, Visitor};
pub use epoch::{STORE_EPOCH_KEY, STORE_NAMESPACE, store_epoch};
pub use error::{Error, Result};
pub use eventsourced::{
    Ctx, Effect, EventSourced, Handled, PersistenceStatus, Persistent, PersistentContext,
    PersistentInfo, PersistentProps, PersistentSettings, RecoveryStatus, SnapshotCodec,
    SnapshotForm, SnapshotPolicy, Snapshots, ViaSnapshots, WholeState,
};
pub use extension::Persistence;
#[cfg(feature = "fjall")]
pub use fjall_engine::FjallEngine;
pub use journal::{Journal, KvWrite, ReplayRange, ReplayStats, WriteBatch, replay, same_store};
pub use keys::MAX_ID_LEN;
pub use record::{
    EventRecord, MAX_RECORD_SIZE, Manifest, SeqNr, Snapshot, SnapshotMetadata, decode_payload,
    encode_payload, now_millis,
};
#[cfg(feature = "sled")]
pub use sled_engine::SledEngine;
pub use snapshot::{SnapshotCriteria, SnapshotStore};
#[cfg(any(feature = "sled", feature = "fjall"))]
pub use store::DurableStore;
#[cfg(feature = "fjall")]
pub use store::FjallStore;
#[cfg(feature = "sled")]
pub use store::SledStore;
pub use store::{
    JournalSummary, MAX_GROUP, MAX_LISTED_PROBLEMS, MemoryStore, NamespaceSummary, Problem, Store,
    StoreOptions, StoreReport, Verifier,
};
