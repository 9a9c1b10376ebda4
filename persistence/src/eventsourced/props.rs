//! [`PersistentProps`]: how to spawn an event-sourced actor. Its persistence
//! id, its empty state, its snapshot policy, and its stores if not the
//! system's defaults; resolved against the actor system when spawned.

use std::sync::Arc;

use courier_core::{ActorSystem, BoxError, IntoProps, Mailbox, Props, SupervisorStrategy};

use super::snapshots::{SnapshotCodec, SnapshotForm};
use super::{EventSourced, Persistent, PersistentSettings, SnapshotPolicy};
use crate::error::Error;
use crate::extension::Persistence;
use crate::journal::Journal;
use crate::snapshot::SnapshotStore;

type Make<E> = Arc<dyn Fn() -> E + Send + Sync>;
type Edit<E> = Arc<dyn Fn(Props<Persistent<E>>) -> Props<Persistent<E>> + Send + Sync>;

/// How to spawn an event-sourced actor, from
/// [`Persistent::props`]: give it to
/// [`ActorSystem::spawn`](courier_core::ActorSystem::spawn) (or a
/// context's `spawn`) as any props.
///
/// Its stores are the ones given here, else the system's defaults
/// ([`Persistence`]); with neither, the spawn fails with
/// [`Error::NoStore`] (the source of the core's `Error::Props`). A state
/// that takes snapshots (it has a [`SnapshotForm`]) needs a snapshot store
/// too.
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
/// impl EventSourced for Counter {
///     type Command = (u64, ReplyTo<u64>);
///     type Event = u64;
///
///     async fn handle_command(&mut self, (n, reply): Self::Command, _: &mut Ctx<Self>) -> Handled<Self> {
///         Ok(Effect::persist(n).reply(reply, |s: &Self| s.value))
///     }
///
///     fn apply_event(&mut self, n: u64) {
///         self.value += n;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let system = ActorSystem::new("docs");
/// // No journal anywhere: refused at spawn, naming the fix.
/// let refused = system.spawn(Persistent::props("counter", Counter::default));
/// assert!(matches!(refused, Err(courier::Error::Props { .. })));
///
/// Persistence::of(&system).set_store(Arc::new(MemoryStore::memory()?));
/// let props = Persistent::props("counter", Counter::default).snapshot_every(100);
/// let counter = system.spawn(props.with_name("counter"))?;
/// assert_eq!(counter.ask(|r| (5, r), Duration::from_secs(1)).await?, 5);
/// # system.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct PersistentProps<E: EventSourced> {
    persistence_id: String,
    make: Make<E>,
    journal: Option<Arc<dyn Journal>>,
    snapshot_store: Option<Arc<dyn SnapshotStore>>,
    settings: PersistentSettings,
    codec: Option<SnapshotCodec<E>>,
    edits: Vec<Edit<E>>,
}

impl<E: EventSourced> Clone for PersistentProps<E> {
    fn clone(&self) -> Self {
        Self {
            persistence_id: self.persistence_id.clone(),
            make: Arc::clone(&self.make),
            journal: self.journal.clone(),
            snapshot_store: self.snapshot_store.clone(),
            settings: self.settings.clone(),
            codec: self.codec,
            edits: self.edits.clone(),
        }
    }
}

impl<E: EventSourced> std::fmt::Debug for PersistentProps<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentProps")
            .field("persistence_id", &self.persistence_id)
            .field("journal", &self.journal.is_some())
            .field("snapshot_store", &self.snapshot_store.is_some())
            .field("settings", &self.settings)
            .field("snapshots", &self.codec)
            .finish_non_exhaustive()
    }
}

impl<E: EventSourced> PersistentProps<E> {
    pub(super) fn new(persistence_id: String, make: Make<E>) -> Self {
        Self {
            persistence_id,
            make,
            journal: None,
            snapshot_store: None,
            settings: PersistentSettings::default(),
            codec: None,
            edits: Vec::new(),
        }
    }

    /// The persistence id.
    pub fn persistence_id(&self) -> &str {
        &self.persistence_id
    }

    /// Its settings so far.
    pub fn settings(&self) -> &PersistentSettings {
        &self.settings
    }

    /// Keeps events in `journal` rather than the system's default.
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Keeps snapshots in `snapshots` rather than the system's default.
    pub fn with_snapshot_store(mut self, snapshots: Arc<dyn SnapshotStore>) -> Self {
        self.snapshot_store = Some(snapshots);
        self
    }

    /// Keeps events and snapshots in `store` rather than the system's
    /// defaults.
    pub fn with_store<S: Journal + SnapshotStore + 'static>(self, store: Arc<S>) -> Self {
        self.with_journal(Arc::clone(&store) as Arc<dyn Journal>)
            .with_snapshot_store(store)
    }

    /// Takes a snapshot every `n` events (at least 1), keeping 2: Akka's
    /// `saveSnapshot` when `lastSequenceNr % n == 0`. Recovery starts from
    /// the newest readable one.
    pub fn snapshot_every<Form>(self, n: u64) -> Self
    where
        E: SnapshotForm<Form>,
    {
        self.with_snapshots(SnapshotPolicy::every(n))
    }

    /// Takes snapshots as `policy` says (when, how many kept, whether the
    /// events they cover are deleted).
    pub fn with_snapshots<Form>(mut self, policy: SnapshotPolicy) -> Self
    where
        E: SnapshotForm<Form>,
    {
        self.settings.snapshots = policy;
        self.codec = Some(E::codec());
        self
    }

    /// Uses `settings` (a snapshot policy and the replay page), for
    /// example `courier::config::Config::persistent(id)`'s. Recovery reads
    /// the snapshots saved so far even when the policy takes no more.
    pub fn with_settings<Form>(mut self, settings: PersistentSettings) -> Self
    where
        E: SnapshotForm<Form>,
    {
        self.settings = settings;
        self.codec = Some(E::codec());
        self
    }

    /// As [`Props::with_name`].
    pub fn with_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(move |props| props.with_name(name.clone()))
    }

    /// As [`Props::with_mailbox`].
    pub fn with_mailbox(self, mailbox: Mailbox) -> Self {
        self.edit(move |props| props.with_mailbox(mailbox))
    }

    /// As [`Props::with_supervisor`].
    pub fn with_supervisor(self, strategy: SupervisorStrategy) -> Self {
        self.edit(move |props| props.with_supervisor(strategy.clone()))
    }

    /// As [`Props::with_adapter`]: the actor is reachable as an
    /// `ActorRef<T>` too (a delivery destination, say).
    pub fn with_adapter<T: Send + 'static>(self) -> Self
    where
        E::Command: From<T>,
    {
        self.edit(|props| props.with_adapter::<T>())
    }

    /// As [`Props::with_adapter_fn`].
    pub fn with_adapter_fn<T: Send + 'static>(
        self,
        map: impl Fn(T) -> E::Command + Send + Sync + 'static,
    ) -> Self {
        let map = Arc::new(map);
        self.edit(move |props| {
            let map = Arc::clone(&map);
            props.with_adapter_fn(move |t| map(t))
        })
    }

    fn edit(
        mut self,
        edit: impl Fn(Props<Persistent<E>>) -> Props<Persistent<E>> + Send + Sync + 'static,
    ) -> Self {
        self.edits.push(Arc::new(edit));
        self
    }

    /// The props with the stores resolved: the ones given, else
    /// `defaults`'.
    fn resolve(self, defaults: &Persistence) -> Result<Props<Persistent<E>>, Error> {
        let missing = |what| Error::NoStore {
            what,
            persistence_id: self.persistence_id.clone(),
        };
        let journal = self
            .journal
            .clone()
            .or_else(|| defaults.journal())
            .ok_or_else(|| missing("journal"))?;
        let snapshots = match self.codec {
            None => None,
            Some(codec) => {
                let store = self
                    .snapshot_store
                    .clone()
                    .or_else(|| defaults.snapshot_store())
                    .ok_or_else(|| missing("snapshot store"))?;
                Some((store, codec))
            }
        };
        let Self {
            persistence_id,
            make,
            settings,
            edits,
            ..
        } = self;
        let props = Props::new(move || {
            Persistent::new(
                make(),
                persistence_id.clone(),
                Arc::clone(&journal),
                snapshots.clone(),
                settings.clone(),
            )
        });
        Ok(edits.iter().fold(props, |props, edit| edit(props)))
    }
}

impl<E: EventSourced> IntoProps for PersistentProps<E> {
    type Actor = Persistent<E>;

    fn into_props(self, system: &ActorSystem) -> Result<Props<Persistent<E>>, BoxError> {
        Ok(self.resolve(&Persistence::of(system))?)
    }
}
