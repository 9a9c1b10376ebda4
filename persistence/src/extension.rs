//! [`Persistence`]: the journal and snapshot store an actor system's
//! persistent actors use when their props name none (Akka reads its
//! journal plugin from `application.conf`; here a program sets it once).
//!
//! Kept in the system's typed extension map, so the core never names a
//! persistence type. Nothing is ever chosen silently: props that name no
//! store, spawned in a system without a default, are refused at spawn with
//! [`Error::NoStore`](crate::Error::NoStore).

use std::sync::{Arc, RwLock};

use courier_core::ActorSystem;
use courier_core::sync;

use crate::journal::Journal;
use crate::snapshot::SnapshotStore;

/// An actor system's default journal and snapshot store.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use courier::ActorSystem;
/// use courier::persistence::{MemoryStore, Persistence};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let system = ActorSystem::new("docs");
/// assert!(Persistence::of(&system).journal().is_none());
/// Persistence::of(&system).set_store(Arc::new(MemoryStore::memory()?));
/// assert!(Persistence::of(&system).journal().is_some());
/// assert!(Persistence::of(&system).snapshot_store().is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct Persistence {
    stores: RwLock<Stores>,
}

#[derive(Default, Clone)]
struct Stores {
    journal: Option<Arc<dyn Journal>>,
    snapshots: Option<Arc<dyn SnapshotStore>>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stores = sync::read(&self.stores);
        f.debug_struct("Persistence")
            .field("journal", &stores.journal.is_some())
            .field("snapshot_store", &stores.snapshots.is_some())
            .finish()
    }
}

impl Persistence {
    /// The defaults of `system` (none set until a `set_*` call).
    pub fn of(system: &ActorSystem) -> Arc<Self> {
        system.extension::<Self>()
    }

    /// Makes `store` the default journal and snapshot store, replacing
    /// earlier ones (actors already started keep theirs).
    pub fn set_store<S: Journal + SnapshotStore + 'static>(&self, store: Arc<S>) {
        let mut stores = sync::write(&self.stores);
        stores.journal = Some(Arc::clone(&store) as Arc<dyn Journal>);
        stores.snapshots = Some(store);
    }

    /// Makes `journal` the default journal.
    pub fn set_journal(&self, journal: Arc<dyn Journal>) {
        sync::write(&self.stores).journal = Some(journal);
    }

    /// Makes `snapshots` the default snapshot store.
    pub fn set_snapshot_store(&self, snapshots: Arc<dyn SnapshotStore>) {
        sync::write(&self.stores).snapshots = Some(snapshots);
    }

    /// The default journal, if one is set.
    pub fn journal(&self) -> Option<Arc<dyn Journal>> {
        sync::read(&self.stores).journal.clone()
    }

    /// The default snapshot store, if one is set.
    pub fn snapshot_store(&self) -> Option<Arc<dyn SnapshotStore>> {
        sync::read(&self.stores).snapshots.clone()
    }
}
