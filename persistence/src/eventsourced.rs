//! Event-sourced actors: state rebuilt from a journal of events.
//!
//! Implement [`EventSourced`] for your state and spawn it with
//! [`Persistent::props`] (its journal is the system's default,
//! [`Persistence`](crate::Persistence), unless the props name one). A
//! command handler looks at the state and returns an [`Effect`]: events to
//! persist and what to do after. The adapter then
//!
//! 1. writes the events (and any extra records) as one atomic, durable batch;
//! 2. applies them to the state, in order;
//! 3. runs the follow-up effects (replies, tells);
//! 4. takes a snapshot if the policy says so (a state that takes snapshots
//!    has a [`SnapshotForm`]: it is its own snapshot, or it implements
//!    [`Snapshots`]).
//!
//! The next command is taken only after all of that, so commands never see
//! state that is not durable. A failed write stops the actor: its state can
//! no longer be trusted to match the journal.
//!
//! Recovery runs before the first command: the newest readable snapshot
//! (falling back to older ones, loudly, if the newest is corrupt), then the
//! events after it, then [`EventSourced::recovery_completed`]. A failed
//! recovery stops the actor with the error reported to its supervisor; it
//! sends nothing and handles no command. A restart replays from scratch.

use std::any::type_name;
use std::future::Future;

use courier_core::BoxError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::record::{Manifest, decode_payload};

mod effect;
mod persistent;
mod props;
mod settings;
mod snapshots;
mod status;

pub use effect::Effect;
pub use persistent::{Ctx, Handled, Persistent, PersistentContext};
pub use props::PersistentProps;
pub use settings::{PersistentSettings, SnapshotPolicy};
pub use snapshots::{SnapshotCodec, SnapshotForm, Snapshots, ViaSnapshots, WholeState};
pub use status::{PersistenceStatus, PersistentInfo, RecoveryStatus};

/// State that is changed only by events, and rebuilt by replaying them
/// (Akka's `PersistentActor`).
///
/// Snapshots are optional: a state that derives `Serialize` and
/// `Deserialize` is its own snapshot; one with transient fields implements
/// [`Snapshots`] as well; either way the props ask for them
/// ([`snapshot_every`](PersistentProps::snapshot_every)).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use courier::prelude::*;
/// use courier::persistence::{Ctx, Handled, MemoryStore, Persistence};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Counter {
///     value: u64,
/// }
///
/// enum Command {
///     Add(u64, ReplyTo<u64>),
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Added(u64);
///
/// impl EventSourced for Counter {
///     type Command = Command;
///     type Event = Added;
///
///     async fn handle_command(&mut self, cmd: Command, _ctx: &mut Ctx<Self>) -> Handled<Self> {
///         let Command::Add(n, reply) = cmd;
///         Ok(Effect::persist(Added(n)).reply(reply, |state: &Self| state.value))
///     }
///
///     fn apply_event(&mut self, Added(n): Added) {
///         self.value += n;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let system = ActorSystem::new("docs");
/// Persistence::of(&system).set_store(Arc::new(MemoryStore::memory()?));
/// let counter = system.spawn(Persistent::props("counter-1", Counter::default).snapshot_every(100))?;
/// let value = counter.ask(|r| Command::Add(5, r), Duration::from_secs(1)).await?;
/// assert_eq!(value, 5);
/// # Ok(())
/// # }
/// ```
pub trait EventSourced: Send + Sync + Sized + 'static {
    /// What the actor is told to do.
    type Command: Send + 'static;
    /// What happened; stored in the journal.
    type Event: Serialize + DeserializeOwned + Send + 'static;

    /// The manifest this version writes events with. Bump the version when
    /// the event type changes shape, and teach
    /// [`upcast_event`](Self::upcast_event) to read the old one.
    fn event_manifest() -> Manifest {
        Manifest::new(type_name::<Self::Event>(), 1)
    }

    /// Decides what a command does. The persisted state changes only
    /// through events (applied by [`apply_event`](Self::apply_event) once
    /// they are durable); transient fields (counters, caches, handles) may
    /// change here. The context tells where the actor stands
    /// ([`PersistentInfo`]: sequence number, last snapshot, recovery).
    ///
    /// # Errors
    ///
    /// An error is a failure of the actor, handled by its supervisor; nothing
    /// is persisted.
    fn handle_command(
        &mut self,
        command: Self::Command,
        ctx: &mut PersistentContext<Self>,
    ) -> impl Future<Output = Result<Effect<Self>, BoxError>> + Send;

    /// Applies one event to the state. Runs after a persist and during
    /// replay, so it must be deterministic and free of side effects.
    fn apply_event(&mut self, event: Self::Event);

    /// Reads a stored event of any version. The default reads only the
    /// current [`event_manifest`](Self::event_manifest).
    ///
    /// # Errors
    ///
    /// When the manifest is unknown or the payload does not decode; recovery
    /// then fails with the persistence id and sequence number.
    fn upcast_event(manifest: &Manifest, payload: &[u8]) -> Result<Self::Event, BoxError> {
        let current = Self::event_manifest();
        if *manifest != current {
            return Err(format!(
                "unknown event manifest {}/v{} (this version reads {}/v{})",
                manifest.type_name, manifest.version, current.type_name, current.version
            )
            .into());
        }
        Ok(decode_payload(payload)?)
    }

    /// Runs once recovery has rebuilt the state, before the first command.
    ///
    /// # Errors
    ///
    /// An error fails recovery: the actor stops.
    fn recovery_completed(
        &mut self,
        ctx: &mut PersistentContext<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}
