//! How an event-sourced state is stored in a snapshot, when it is: the
//! state itself (it derives `Serialize` and `Deserialize`), or another form
//! it converts to and from ([`Snapshots`]). A state with neither takes no
//! snapshots, and the props that would ask for them do not compile.
//!
//! [`SnapshotForm`] joins the two for the props' builder: it is implemented
//! for every state that has a form, and its type parameter ([`WholeState`]
//! or [`ViaSnapshots`]) only tells them apart. Whichever it is, the builder
//! keeps two function pointers ([`SnapshotCodec`]): nothing is boxed, and a
//! state without snapshots pays nothing.

use std::any::type_name;

use courier_core::BoxError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::EventSourced;
use crate::error::Result;
use crate::record::{Manifest, decode_payload, encode_payload};

/// A stored form of an event-sourced state other than the state itself:
/// for a state with fields that are not persisted (an inbox handle, a
/// cache), or whose snapshots must be read across versions
/// ([`upcast_snapshot`](Self::upcast_snapshot)).
///
/// A state that derives `Serialize` and `Deserialize` needs none of this:
/// it is its own snapshot.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use courier::prelude::*;
/// use courier::persistence::{Ctx, Handled, MemoryStore, Snapshots};
///
/// struct Tally {
///     total: u64,
///     // Transient: not in the snapshot.
///     commands: u64,
/// }
///
/// impl EventSourced for Tally {
///     type Command = ReplyTo<u64>;
///     type Event = u64;
///
///     async fn handle_command(&mut self, reply: ReplyTo<u64>, _: &mut Ctx<Self>) -> Handled<Self> {
///         self.commands += 1;
///         Ok(Effect::persist(1).reply(reply, |s: &Self| s.total))
///     }
///
///     fn apply_event(&mut self, n: u64) {
///         self.total += n;
///     }
/// }
///
/// impl Snapshots for Tally {
///     type Snapshot = u64;
///
///     fn to_snapshot(&self) -> u64 {
///         self.total
///     }
///
///     fn apply_snapshot(&mut self, total: u64) {
///         self.total = total;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let system = ActorSystem::new("docs");
/// let store = Arc::new(MemoryStore::memory()?);
/// let make = || Tally { total: 0, commands: 0 };
/// let props = Persistent::props("tally", make).with_store(store).snapshot_every(2);
/// let tally = system.spawn(props)?;
/// assert_eq!(tally.ask(|r| r, Duration::from_secs(1)).await?, 1);
/// # system.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub trait Snapshots: EventSourced {
    /// The stored form of the state.
    type Snapshot: Serialize + DeserializeOwned + Send + 'static;

    /// The manifest this version writes snapshots with.
    fn snapshot_manifest() -> Manifest {
        Manifest::new(type_name::<Self::Snapshot>(), 1)
    }

    /// The state as a snapshot.
    fn to_snapshot(&self) -> Self::Snapshot;

    /// Replaces the persisted part of the state with a snapshot's.
    fn apply_snapshot(&mut self, snapshot: Self::Snapshot);

    /// Reads a stored snapshot of any version. The default reads only the
    /// current [`snapshot_manifest`](Self::snapshot_manifest).
    ///
    /// # Errors
    ///
    /// When the manifest is unknown or the payload does not decode; recovery
    /// then falls back to an older snapshot.
    fn upcast_snapshot(manifest: &Manifest, payload: &[u8]) -> Result<Self::Snapshot, BoxError> {
        let current = Self::snapshot_manifest();
        if *manifest != current {
            return Err(unknown(manifest, &current));
        }
        Ok(decode_payload(payload)?)
    }
}

fn unknown(found: &Manifest, current: &Manifest) -> BoxError {
    format!(
        "unknown snapshot manifest {}/v{} (this version reads {}/v{})",
        found.type_name, found.version, current.type_name, current.version
    )
    .into()
}

/// How a state's snapshots are written and read: made by [`SnapshotForm`],
/// kept by the props of a state that takes snapshots.
pub struct SnapshotCodec<E> {
    pub(crate) manifest: fn() -> Manifest,
    pub(crate) encode: fn(&E) -> Result<Vec<u8>>,
    pub(crate) restore: fn(&mut E, &Manifest, &[u8]) -> Result<(), BoxError>,
}

impl<E> Clone for SnapshotCodec<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for SnapshotCodec<E> {}

impl<E> std::fmt::Debug for SnapshotCodec<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let manifest = (self.manifest)();
        write!(
            f,
            "SnapshotCodec({}/v{})",
            manifest.type_name, manifest.version
        )
    }
}

/// The [`SnapshotForm`] of a state that is its own snapshot: it derives
/// `Serialize` and `Deserialize`; a snapshot replaces the whole state.
#[derive(Debug)]
pub enum WholeState {}

/// The [`SnapshotForm`] of a state that implements [`Snapshots`].
#[derive(Debug)]
pub enum ViaSnapshots {}

/// A state that has a snapshot form: implemented for every
/// [`EventSourced`] state that is `Serialize + DeserializeOwned` (form
/// [`WholeState`]) and for every one that implements [`Snapshots`] (form
/// [`ViaSnapshots`]). The props' builder asks for it where it takes
/// snapshots, and infers `Form`; a state that is both needs it named
/// (`.snapshot_every::<ViaSnapshots>(100)`).
///
/// The whole state's manifest is its type name, version 1: a snapshot of a
/// state whose shape has changed since does not decode, and recovery falls
/// back to an older snapshot or the events, with a WARN. Implement
/// [`Snapshots`] to read old shapes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no snapshot form",
    label = "snapshots need a stored form of this state",
    note = "derive `Serialize` and `Deserialize` for it (the state is its own snapshot), or implement `Snapshots` for it"
)]
pub trait SnapshotForm<Form>: EventSourced {
    /// How this form is written and read.
    fn codec() -> SnapshotCodec<Self>;
}

impl<E: EventSourced + Serialize + DeserializeOwned> SnapshotForm<WholeState> for E {
    fn codec() -> SnapshotCodec<Self> {
        fn manifest<E>() -> Manifest {
            Manifest::new(type_name::<E>(), 1)
        }
        SnapshotCodec {
            manifest: manifest::<E>,
            encode: |state| encode_payload(state),
            restore: |state, found, payload| {
                let current = manifest::<E>();
                if *found != current {
                    return Err(unknown(found, &current));
                }
                *state = decode_payload(payload)?;
                Ok(())
            },
        }
    }
}

impl<E: Snapshots> SnapshotForm<ViaSnapshots> for E {
    fn codec() -> SnapshotCodec<Self> {
        SnapshotCodec {
            manifest: E::snapshot_manifest,
            encode: |state| encode_payload(&state.to_snapshot()),
            restore: |state, manifest, payload| {
                state.apply_snapshot(E::upcast_snapshot(manifest, payload)?);
                Ok(())
            },
        }
    }
}
