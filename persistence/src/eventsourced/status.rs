//! [`PersistenceStatus`]: where an event-sourced actor stands (its
//! sequence number, its last snapshot, its recovery), read from its
//! handlers' context through [`PersistentInfo`].

use courier_core::Context;

use super::{EventSourced, Persistent};
use crate::record::SeqNr;

/// How far an event-sourced actor's recovery has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryStatus {
    /// Reading the snapshot and replaying events (no handler runs then).
    Running,
    /// The state is rebuilt: from the snapshot at this sequence number
    /// (`None`: from the first event), then this many events replayed.
    Completed {
        /// The snapshot recovery started from.
        from_snapshot: Option<SeqNr>,
        /// How many events were replayed after it.
        replayed: u64,
    },
}

impl RecoveryStatus {
    /// Whether recovery has completed.
    pub fn is_completed(&self) -> bool {
        matches!(self, Self::Completed { .. })
    }
}

/// Where an event-sourced actor stands, as its handlers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistenceStatus {
    /// The sequence number of the last event persisted or replayed (0: none
    /// yet).
    pub seq_nr: SeqNr,
    /// The sequence number of the newest snapshot saved or recovered from,
    /// in this incarnation of the actor.
    pub last_snapshot: Option<SeqNr>,
    /// How far recovery has come.
    pub recovery: RecoveryStatus,
}

impl Default for PersistenceStatus {
    fn default() -> Self {
        Self {
            seq_nr: 0,
            last_snapshot: None,
            recovery: RecoveryStatus::Running,
        }
    }
}

/// What an event-sourced actor's handlers can read about its persistence,
/// from their [`PersistentContext`](super::PersistentContext) (Akka's
/// `lastSequenceNr`, `recoveryFinished`, ...).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use courier::prelude::*;
/// use courier::persistence::{MemoryStore, Snapshots};
///
/// #[derive(Default)]
/// struct Tally {
///     total: u64,
///     // Transient: not persisted, changed by the command handler.
///     commands: u64,
/// }
///
/// impl EventSourced for Tally {
///     type Command = ReplyTo<(u64, u64, Option<u64>)>;
///     type Event = u64;
///
///     async fn handle_command(&mut self, reply: Self::Command, ctx: &mut Ctx<Self>) -> Handled<Self> {
///         self.commands += 1;
///         let next = ctx.seq_nr() + 1;
///         let snapshot = ctx.last_snapshot();
///         Ok(Effect::persist(next).reply(reply, move |s: &Self| (s.total, s.commands, snapshot)))
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
/// let store = Arc::new(MemoryStore::memory()?);
/// let system = ActorSystem::new("docs");
/// let props = Persistent::props("tally", Tally::default).with_store(store).snapshot_every(1);
/// let tally = system.spawn(props)?;
/// assert_eq!(tally.ask(|r| r, Duration::from_secs(1)).await?, (1, 1, None));
/// assert_eq!(tally.ask(|r| r, Duration::from_secs(1)).await?, (3, 2, Some(1)));
/// # Ok(())
/// # }
/// ```
pub trait PersistentInfo {
    /// Where the actor stands.
    fn persistence_status(&self) -> PersistenceStatus;

    /// The sequence number of the last event persisted or replayed (0:
    /// none yet).
    fn seq_nr(&self) -> SeqNr {
        self.persistence_status().seq_nr
    }

    /// The sequence number of the newest snapshot saved or recovered from.
    fn last_snapshot(&self) -> Option<SeqNr> {
        self.persistence_status().last_snapshot
    }

    /// How far recovery has come.
    fn recovery(&self) -> RecoveryStatus {
        self.persistence_status().recovery
    }
}

impl<E: EventSourced> PersistentInfo for Context<Persistent<E>> {
    fn persistence_status(&self) -> PersistenceStatus {
        self.extensions()
            .get::<PersistenceStatus>()
            .copied()
            .unwrap_or_default()
    }
}
