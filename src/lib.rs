//! courier: actors that must not lose messages.
//!
//! This is the facade crate. The actor core is re-exported at the root
//! (`courier::ActorSystem`, `courier::ActorRef`, …); the other layers live
//! under their own modules, each behind a feature:
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `sled` (default) | the embedded durable engine (sled 0.34); implies `delivery` |
//! | `fjall` | the second embedded engine (fjall 3: a journal made durable with `fdatasync`, several times sled's batch throughput); implies `delivery`; needs Rust 1.90 |
//! | `delivery` | `courier::persistence` (journals, snapshots, event-sourced actors, the in-memory engine), `courier::delivery` (at-least-once delivery, the dedup inbox) and `courier::config` (the TOML file) |
//! | `postgres` | `courier::persistence::postgres`: the shared PostgreSQL journal and snapshot store; implies `delivery` |
//! | `remote` | `courier::remote`: nodes over gRPC |
//! | `testkit` | `courier::delivery::testkit`: fault injection and a history checker |
//! | `tck` | `courier::persistence::tck`: the conformance suite for journal backends |
//!
//! `default-features = false` gives the actor core alone. Most programs
//! start with `use courier::prelude::*;`; extension points for transports
//! are in [`transport`].
//!
//! On docs.rs every feature is on, and each item that needs one says which.
//!
//! # Guides
//!
//! The guides of the repository's `docs/` folder, one per layer. Their
//! examples run as doctests; the measured performance, with the commands
//! that produced it, is in `docs/benchmarks.md`.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Each guide renders folded; under `cfg(doctest)` the guides are left out
// here because the `*Doctests` items at the end of this file already run
// their examples, and once is enough.
#![cfg_attr(not(doctest), doc = concat!(
    "<details><summary><b>The contract</b>: ordering, at-least-once, dedup, what survives a crash (<code>docs/semantics.md</code>)</summary>\n\n",
    include_str!("../docs/semantics.md"),
    "\n\n</details>\n"
))]
#![cfg_attr(not(doctest), doc = concat!(
    "<details><summary><b>Persistence</b>: journals, snapshots and event-sourced actors (<code>docs/persistence.md</code>)</summary>\n\n",
    include_str!("../docs/persistence.md"),
    "\n\n</details>\n"
))]
#![cfg_attr(not(doctest), doc = concat!(
    "<details><summary><b>Delivery</b>: at-least-once senders, deduplicating receivers, configuration (<code>docs/delivery.md</code>)</summary>\n\n",
    include_str!("../docs/delivery.md"),
    "\n\n</details>\n"
))]
#![cfg_attr(not(doctest), doc = concat!(
    "<details><summary><b>Remote</b>: nodes over gRPC (<code>docs/remote.md</code>)</summary>\n\n",
    include_str!("../docs/remote.md"),
    "\n\n</details>\n"
))]
#![cfg_attr(not(doctest), doc = concat!(
    "<details><summary><b>From Akka</b>: three Akka classic programs beside their courier counterparts (<code>docs/from-akka.md</code>)</summary>\n\n",
    include_str!("../docs/from-akka.md"),
    "\n\n</details>\n"
))]
#![cfg_attr(not(doctest), doc = concat!(
    "<details><summary><b>Architecture</b>: the write, ack and recovery paths with every flush (<code>docs/architecture.md</code>)</summary>\n\n",
    include_str!("../docs/architecture.md"),
    "\n\n</details>\n"
))]

pub use courier_core::{
    Actor, ActorPath, ActorRef, ActorSystem, BoxError, ChildFailure, Context, DeadLetter,
    DeadLetterReason, DeadMessage, Directive, Error, EventStream, Extensions, Failure, IntoProps,
    MAX_TIMER_DELAY, Mailbox, Props, ReplyTo, Result, SendError, SupervisorStrategy, SystemConfig,
    Terminated, TimerKey, TryTellError, broadcast,
};

/// What a transport (such as `courier::remote`) plugs into: message sinks
/// behind `ActorRef`s, resolvers for path schemes, the codec hook that turns
/// references into paths, watch registrations, and the event by which a
/// transport reports a refused message.
pub mod transport {
    pub use courier_core::{
        Abandon, BoxFuture, MessageSink, RefCodec, Refusal, Resolver, Watcher, WatcherId,
        with_ref_codec,
    };
}

/// The binary codec of every byte courier stores or sends, with a size
/// limit on every decode (`courier-codec`).
#[cfg(any(feature = "delivery", feature = "remote"))]
pub mod codec {
    pub use courier_codec::{
        Error, MAX_LEN, Result, budget, decode, decode_prefix, encode, encoded_len,
    };
}

/// Journals, snapshots and event-sourced actors (`courier-persistence`;
/// feature `delivery`, with the sled engine under feature `sled` and the
/// fjall engine under feature `fjall`).
///
/// A program picks a store ([`DurableStore`](persistence::DurableStore)
/// over the engine its configuration names, or
/// [`SledStore`](persistence::SledStore) /
/// [`FjallStore`](persistence::FjallStore) directly;
/// [`MemoryStore`](persistence::MemoryStore) for tests) and uses it as a
/// [`Journal`](persistence::Journal) and
/// [`SnapshotStore`](persistence::SnapshotStore); the engines beneath a
/// store, and what a new one must provide, are in
/// [`persistence::engine`].
#[cfg(feature = "delivery")]
pub mod persistence {
    #[cfg(any(feature = "sled", feature = "fjall"))]
    pub use courier_persistence::DurableStore;
    #[cfg(feature = "fjall")]
    pub use courier_persistence::FjallStore;
    #[cfg(feature = "sled")]
    pub use courier_persistence::SledStore;
    /// The conformance suite every journal backend must pass (feature
    /// `tck`).
    #[cfg(feature = "tck")]
    pub use courier_persistence::tck;
    pub use courier_persistence::{
        Ctx, Effect, EngineKind, Error, EventRecord, EventSourced, Handled, Journal,
        JournalSummary, KvWrite, MAX_ID_LEN, MAX_LISTED_PROBLEMS, MAX_RECORD_SIZE, Manifest,
        MemoryStore, NamespaceSummary, Persistence, PersistenceStatus, Persistent,
        PersistentContext, PersistentInfo, PersistentProps, PersistentSettings, Problem,
        RecoveryStatus, ReplayRange, ReplayStats, Result, SeqNr, Snapshot, SnapshotCodec,
        SnapshotCriteria, SnapshotForm, SnapshotMetadata, SnapshotPolicy, SnapshotStore, Snapshots,
        Store, StoreOptions, StoreReport, Verifier, ViaSnapshots, WholeState, WriteBatch,
        decode_payload, encode_payload, now_millis, replay,
    };

    /// The stored form of courier's records (framing, checksums, limits),
    /// for journal backends of other crates; with [`Verifier`], the check
    /// `courier verify` runs.
    pub use courier_persistence::format;

    /// The key–value engines beneath a [`Store`]: the seam a new embedded
    /// engine implements, the engines courier ships, and the records the
    /// store keeps in every engine (its epoch, its commit number).
    pub mod engine {
        #[cfg(any(feature = "sled", feature = "fjall"))]
        pub use courier_persistence::DurableEngine;
        #[cfg(feature = "fjall")]
        pub use courier_persistence::FjallEngine;
        #[cfg(feature = "sled")]
        pub use courier_persistence::SledEngine;
        pub use courier_persistence::{
            COMMIT_FILE, Engine, EngineOp, Entry, MAX_GROUP, MemoryEngine, STORE_EPOCH_KEY,
            STORE_NAMESPACE, Visitor, store_epoch,
        };
    }

    /// The shared PostgreSQL journal and snapshot store
    /// (`courier-postgres`, feature `postgres`): a backend beside
    /// [`SledStore`] and [`MemoryStore`], for several nodes sharing one
    /// database.
    #[cfg(feature = "postgres")]
    pub mod postgres {
        pub use courier_postgres::{
            DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, DEFAULT_STATEMENT_TIMEOUT, Error, Password,
            PostgresSettings, PostgresStore, Result, SCHEMA_VERSION, WriterStats,
        };
    }
}

/// courier's settings from one TOML file, for every layer (feature
/// `delivery`).
#[cfg(feature = "delivery")]
pub mod config;

/// At-least-once delivery and the dedup inbox (`courier-delivery`; feature
/// `delivery`).
#[cfg(feature = "delivery")]
pub mod delivery {
    pub use courier_delivery::{
        Ack, AtLeastOnce, DedupInbox, DeliverEffect, Deliverer, Delivery, DeliveryId, Error,
        ExactlyOnce, InboxWrite, MAX_EXPIRE_AFTER, MAX_REDELIVERY_DELAY, OutboxSettings, Outgoing,
        ParkedDelivery, PendingDelivery, Prepared, Receipt, Redelivery, Result, SenderId,
        Submitted, UnconfirmedWarning, inspect, live, model,
    };

    /// Fault injection and a history checker for tests (feature `testkit`).
    #[cfg(feature = "testkit")]
    pub mod testkit {
        pub use courier_delivery::testkit::{
            ChaosJournal, Faults, FaultyLink, History, LinkStats, Report,
        };
    }
}

/// Remote actors over gRPC (`courier-remote`; feature `remote`).
#[cfg(feature = "remote")]
pub mod remote {
    pub use courier_remote::{
        DEFAULT_MAX_FRAME, Error, MAX_FRAME_LIMIT, MAX_RECONNECT_DELAY, Node, PeerIdentity,
        Registry, RegistryError, Rejection, RejectionReason, RemoteSettings, Result, SCHEME,
        Secret, TlsSettings, Transport, connect,
    };
}

/// The admin endpoint of a running process (`courier-admin`; feature
/// `admin`): what `courier --node …` talks to.
#[cfg(feature = "admin")]
pub mod admin {
    pub use courier_admin::{
        AdminClient, AdminService, AdminSettings, Error, MAX_DECODED, MAX_IDS, MAX_LIST,
        MAX_REQUEST, Result, wire,
    };
}

/// The names most programs need: the actor core, and (feature
/// `delivery`) the wrappers that make an existing actor a durable sender
/// or an exactly-once receiver, with the traits their methods need, and
/// what an event-sourced actor's handlers are written with.
pub mod prelude {
    pub use courier_core::{
        Actor, ActorRef, ActorSystem, BoxError, Context, Mailbox, Props, ReplyTo,
        SupervisorStrategy,
    };
    #[cfg(feature = "delivery")]
    pub use courier_delivery::{AtLeastOnce, DeliverEffect, Delivery, ExactlyOnce};
    #[cfg(feature = "delivery")]
    pub use courier_persistence::{
        Ctx, Effect, EventSourced, Handled, Persistent, PersistentContext, PersistentInfo,
    };
}

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The migration guide's programs, compiled and run as doctests.
#[cfg(all(doctest, feature = "sled"))]
#[doc = include_str!("../docs/from-akka.md")]
pub struct FromAkkaDoctests;

/// The remote guide's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "remote", feature = "sled"))]
#[doc = include_str!("../docs/remote.md")]
pub struct RemoteGuideDoctests;

/// The persistence guide's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "sled"))]
#[doc = include_str!("../docs/persistence.md")]
pub struct PersistenceGuideDoctests;

/// The delivery guide's examples, compiled and run as doctests. The
/// `testkit` section's example needs that feature, so it sits in a
/// `#[cfg(feature = "testkit")]` block.
#[cfg(all(doctest, feature = "sled", feature = "remote"))]
#[doc = include_str!("../docs/delivery.md")]
pub struct DeliveryGuideDoctests;
