//! [`ActorSystem`]: spawning, lookup by path, the event stream and shutdown.
//!
//! The system keeps a registry of live actors by path (so durable layers can
//! store paths and resolve them again), the resolvers other crates register
//! for non-local paths, and the top-level actors it stops on shutdown.

use std::any::{Any, TypeId, type_name};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::actor::{Actor, ActorMsg, IntoProps, Props};
use crate::actor_ref::{ActorRef, LocalCell};
use crate::adapter::Registration;
use crate::context::{ChildHandle, Context, stop_all};
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::deadlines::Deadlines;
use crate::error::{Error, Result};
use crate::event_stream::EventStream;
use crate::path::{ActorPath, validate_name};
use crate::runtime::ActorLoop;
use crate::supervision::ChildFailure;
use crate::sync;
use crate::system_channel::system_channel;
use crate::watcher::{SystemMsg, SystemSender, next_uid};

/// Settings of an [`ActorSystem`].
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// How many dead letters are logged per second at most; the rest are
    /// counted and summarised. Default 10.
    pub dead_letter_log_per_second: u32,
    /// How many events of one type the event stream buffers for a slow
    /// subscriber before it lags. Default 1024.
    pub event_stream_capacity: usize,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            dead_letter_log_per_second: 10,
            event_stream_capacity: 1024,
        }
    }
}

/// Resolves paths with a scheme (such as `courier://…`) to references.
///
/// Registered per scheme with [`ActorSystem::register_resolver`]; this is how
/// a transport crate makes [`ActorSystem::lookup`] work for its paths without
/// the core knowing about it.
pub trait Resolver: Send + Sync + 'static {
    /// Returns a boxed `ActorRef<M>` for `path`, where `M` is the type whose
    /// `TypeId` is `message_type` (named `type_name`, for errors).
    ///
    /// # Errors
    ///
    /// Any error; it reaches the caller of `lookup` as
    /// [`Error::Resolver`] unless it is already an [`Error`].
    fn resolve(
        &self,
        system: &ActorSystem,
        path: &ActorPath,
        message_type: TypeId,
        type_name: &'static str,
    ) -> Result<Box<dyn Any + Send>>;
}

struct Registered {
    uid: u64,
    type_name: &'static str,
    actor_ref: Box<dyn Any + Send + Sync>,
    /// Message adapters: references to the same actor for other types.
    adapters: Vec<Registration>,
}

struct SystemInner {
    name: String,
    events: EventStream,
    dead_letters: Arc<DeadLetters>,
    deadlines: Arc<Deadlines>,
    registry: Mutex<HashMap<ActorPath, Registered>>,
    top_level: Mutex<TopLevel>,
    resolvers: RwLock<HashMap<String, Arc<dyn Resolver>>>,
    anonymous: AtomicU64,
    shutting_down: AtomicBool,
    extensions: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

#[derive(Default)]
struct TopLevel {
    closed: bool,
    actors: HashMap<u64, ChildHandle>,
}

/// A running actor system. Cheap to clone; all clones are the same system.
///
/// # Examples
///
/// ```
/// use courier::{Actor, ActorSystem, BoxError, Context, Props};
///
/// struct Greeter;
///
/// impl Actor for Greeter {
///     type Msg = String;
///
///     async fn handle(&mut self, name: String, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
///         println!("hello, {name}");
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), courier::Error> {
/// let system = ActorSystem::new("docs");
/// system.spawn(Props::new(|| Greeter).with_name("greeter"))?;
/// let greeter = system.lookup::<String>("/user/greeter")?;
/// greeter.tell("ada".to_string());
/// system.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<SystemInner>,
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

/// Who an actor reports its failures and its end to.
pub(crate) enum Parent {
    System(ActorSystem),
    Actor { path: ActorPath, sys: SystemSender },
}

impl Parent {
    fn path(&self) -> ActorPath {
        match self {
            Self::System(_) => ActorPath::user_root(),
            Self::Actor { path, .. } => path.clone(),
        }
    }

    pub(crate) fn notify_failure(&self, failure: ChildFailure) {
        if let Self::Actor { sys, .. } = self {
            let _ = sys.send(SystemMsg::ChildFailed(failure));
        }
    }

    pub(crate) fn notify_terminated(&self, uid: u64) {
        match self {
            Self::System(system) => {
                system.top_level().actors.remove(&uid);
            }
            Self::Actor { sys, .. } => {
                let _ = sys.send(SystemMsg::ChildTerminated { uid });
            }
        }
    }
}

impl ActorSystem {
    /// A system with default settings.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_config(name, SystemConfig::default())
    }

    /// A system with `config`.
    pub fn with_config(name: impl Into<String>, config: SystemConfig) -> Self {
        let events = EventStream::new(config.event_stream_capacity);
        let dead_letters = Arc::new(DeadLetters::new(
            events.clone(),
            config.dead_letter_log_per_second,
        ));
        Self {
            inner: Arc::new(SystemInner {
                name: name.into(),
                events,
                dead_letters,
                deadlines: Arc::default(),
                registry: Mutex::new(HashMap::new()),
                top_level: Mutex::new(TopLevel::default()),
                resolvers: RwLock::new(HashMap::new()),
                anonymous: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
                extensions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The system's event stream, where dead letters (and other crates'
    /// events) are published.
    pub fn event_stream(&self) -> &EventStream {
        &self.inner.events
    }

    /// Publishes a dead letter (logged at a rate limit, and on the event
    /// stream). For transports and layers that lose a message.
    pub fn publish_dead_letter(&self, letter: DeadLetter) {
        self.inner.dead_letters.publish(letter);
    }

    /// Publishes `letter` with the undelivered `message` itself: a
    /// [`DeadMessage`](crate::DeadMessage) for its subscribers (who can
    /// take the message back as an `M`), then the `letter` as
    /// [`publish_dead_letter`](Self::publish_dead_letter) does. For layers
    /// that give up on a message they hold (a parked delivery, say);
    /// `sender` is the actor it came from, when known.
    pub fn publish_dead_message<M: Send + 'static>(
        &self,
        letter: DeadLetter,
        sender: Option<ActorPath>,
        message: M,
    ) {
        self.inner
            .dead_letters
            .publish_message(letter, sender, message);
    }

    /// Dead letters of message type `M` are still published on the event
    /// stream, but no longer logged (Akka's `DeadLetterSuppression`): for
    /// messages whose loss is expected, such as ticks or acks of a
    /// duplicate.
    pub fn suppress_dead_letter_logs<M: 'static>(&self) {
        self.inner.dead_letters.quiet(type_name::<M>());
    }

    pub(crate) fn deadlines(&self) -> Arc<Deadlines> {
        Arc::clone(&self.inner.deadlines)
    }

    pub(crate) fn dead_letters(&self) -> Arc<DeadLetters> {
        Arc::clone(&self.inner.dead_letters)
    }

    /// Spawns a top-level actor under `/user`. Must be called from within a
    /// tokio runtime. The actor's `started` hook runs on its own task before
    /// its first message; messages sent meanwhile are queued.
    ///
    /// # Errors
    ///
    /// [`Error::NameTaken`] if a live actor has the path,
    /// [`Error::InvalidName`], [`Error::InvalidConfig`] for a zero-capacity
    /// mailbox, [`Error::ShuttingDown`], [`Error::NoRuntime`], or
    /// [`Error::Props`] when a builder's [`IntoProps`] refused this system.
    pub fn spawn<P: IntoProps>(&self, props: P) -> Result<ActorRef<ActorMsg<P>>> {
        let props = props
            .into_props(self)
            .map_err(|source| Error::Props { source })?;
        let (actor_ref, _) = self.spawn_in(Parent::System(self.clone()), props)?;
        Ok(actor_ref)
    }

    pub(crate) fn spawn_in<A: Actor>(
        &self,
        parent: Parent,
        props: Props<A>,
    ) -> Result<(ActorRef<A::Msg>, ChildHandle)> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        props.mailbox.validate()?;
        let parent_path = parent.path();
        let path = match &props.name {
            Some(name) => {
                validate_name(name)?;
                parent_path.child_unchecked(name)
            }
            None => {
                let n = self.inner.anonymous.fetch_add(1, Ordering::Relaxed);
                parent_path.child_unchecked(&format!("${n}"))
            }
        };
        let uid = next_uid();
        let (mailbox_tx, mailbox_rx) = props.mailbox.channel();
        let (sys_tx, sys_rx) = system_channel();
        let (terminated_tx, terminated_rx) = watch::channel(false);
        let cell = Arc::new(LocalCell {
            path: path.clone(),
            uid,
            mailbox: mailbox_tx,
            sys: sys_tx.clone(),
            dead_letters: self.dead_letters(),
            deadlines: self.deadlines(),
            terminated: terminated_tx,
        });
        let actor_ref = ActorRef::local(Arc::clone(&cell));
        let adapters = props.adapters.iter().map(|make| make(&cell)).collect();
        self.register(&actor_ref, adapters)?;
        let handle = ChildHandle {
            path: path.clone(),
            sys: sys_tx.clone(),
            terminated: terminated_rx.clone(),
        };
        if let Parent::System(_) = parent {
            // Checked under the same lock that shutdown takes, so no
            // top-level actor can appear after shutdown collected them.
            let mut top = self.top_level();
            if top.closed {
                drop(top);
                self.unregister(&path, uid);
                return Err(Error::ShuttingDown);
            }
            top.actors.insert(
                uid,
                ChildHandle {
                    path: path.clone(),
                    sys: sys_tx,
                    terminated: terminated_rx,
                },
            );
        }
        let actor_loop = ActorLoop {
            factory: props.factory,
            strategy: props.supervisor,
            ctx: Context::new(cell, self.clone()),
            mailbox: mailbox_rx,
            batch: Vec::new(),
            sys_rx,
            parent,
            pending_sys: VecDeque::new(),
            watchers: HashMap::new(),
            restarts: VecDeque::new(),
        };
        runtime.spawn(actor_loop.run());
        Ok((actor_ref, handle))
    }

    fn register<M: Send + 'static>(
        &self,
        actor_ref: &ActorRef<M>,
        adapters: Vec<Registration>,
    ) -> Result<()> {
        let mut registry = self.registry();
        let path = actor_ref.path().clone();
        if registry.contains_key(&path) {
            return Err(Error::NameTaken { path });
        }
        registry.insert(
            path,
            Registered {
                uid: actor_ref.uid(),
                type_name: type_name::<M>(),
                actor_ref: Box::new(actor_ref.clone()),
                adapters,
            },
        );
        Ok(())
    }

    /// Adds (or replaces) a message adapter of the live actor `path`/`uid`.
    pub(crate) fn register_adapter(&self, path: &ActorPath, uid: u64, adapter: Registration) {
        let mut registry = self.registry();
        if let Some(entry) = registry.get_mut(path).filter(|r| r.uid == uid) {
            entry.adapters.retain(|a| a.type_id != adapter.type_id);
            entry.adapters.push(adapter);
        }
    }

    pub(crate) fn unregister(&self, path: &ActorPath, uid: u64) {
        let mut registry = self.registry();
        if registry.get(path).is_some_and(|r| r.uid == uid) {
            registry.remove(path);
        }
    }

    /// Looks up the actor at `path`, which takes messages of type `M`.
    ///
    /// Local paths (`/user/…`) are resolved from the live actors; paths with
    /// a scheme go to the resolver registered for it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`], [`Error::NotFound`],
    /// [`Error::WrongMessageType`], [`Error::UnknownScheme`], or what the
    /// resolver returns.
    pub fn lookup<M: Send + 'static>(&self, path: &str) -> Result<ActorRef<M>> {
        let path = ActorPath::parse(path)?;
        self.lookup_path(&path)
    }

    /// [`lookup`](Self::lookup) for an already parsed path.
    ///
    /// # Errors
    ///
    /// As [`lookup`](Self::lookup).
    pub fn lookup_path<M: Send + 'static>(&self, path: &ActorPath) -> Result<ActorRef<M>> {
        let wrong_type = |actual| Error::WrongMessageType {
            path: path.clone(),
            actual,
            requested: type_name::<M>(),
        };
        if let Some(scheme) = path.scheme() {
            let resolver = sync::read(&self.inner.resolvers)
                .get(scheme)
                .cloned()
                .ok_or_else(|| Error::UnknownScheme {
                    path: path.clone(),
                    scheme: scheme.to_owned(),
                })?;
            let resolved = resolver.resolve(self, path, TypeId::of::<M>(), type_name::<M>())?;
            return resolved.downcast::<ActorRef<M>>().map(|r| *r).map_err(|_| {
                wrong_type("another type (the resolver returned a mismatched reference)")
            });
        }
        let registry = self.registry();
        let entry = registry
            .get(path)
            .ok_or_else(|| Error::NotFound { path: path.clone() })?;
        if let Some(found) = entry.actor_ref.downcast_ref::<ActorRef<M>>() {
            return Ok(found.clone());
        }
        // A message adapter for `M`, if the actor registered one (the last
        // registered wins).
        entry
            .adapters
            .iter()
            .rev()
            .find(|a| a.type_id == TypeId::of::<M>())
            .and_then(|a| a.actor_ref.downcast_ref::<ActorRef<M>>())
            .cloned()
            .ok_or_else(|| wrong_type(entry.type_name))
    }

    /// The message types an actor at `path` can be looked up with: its own,
    /// then those of its message adapters. Empty when no live local actor
    /// has the path.
    pub fn message_types(&self, path: &ActorPath) -> Vec<&'static str> {
        let registry = self.registry();
        registry
            .get(path)
            .map(|entry| {
                std::iter::once(entry.type_name)
                    .chain(entry.adapters.iter().map(|a| a.type_name))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The system's one value of type `T`, made with `T::default()` on first
    /// use: how layers above the core keep per-system state (the names of
    /// started senders, say) without the core knowing their types.
    pub fn extension<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut extensions = sync::lock(&self.inner.extensions);
        let entry = extensions
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        match Arc::clone(entry).downcast::<T>() {
            Ok(found) => found,
            // Keyed by `TypeId::of::<T>()`, so it is a `T`: unreachable, but
            // a fresh value beats a panic.
            Err(_) => Arc::new(T::default()),
        }
    }

    /// Registers `resolver` for paths whose scheme is `scheme`, replacing any
    /// earlier one.
    pub fn register_resolver(&self, scheme: impl Into<String>, resolver: Arc<dyn Resolver>) {
        sync::write(&self.inner.resolvers).insert(scheme.into(), resolver);
    }

    /// Stops every actor, children before their parents, and returns once all
    /// have stopped: `stopped` hooks have run and every message left in a
    /// mailbox has become a dead letter. Afterwards `spawn` fails with
    /// [`Error::ShuttingDown`].
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let actors: Vec<ChildHandle> = {
            let mut top = self.top_level();
            top.closed = true;
            top.actors.drain().map(|(_, h)| h).collect()
        };
        stop_all(actors).await;
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<ActorPath, Registered>> {
        sync::lock(&self.inner.registry)
    }

    fn top_level(&self) -> std::sync::MutexGuard<'_, TopLevel> {
        sync::lock(&self.inner.top_level)
    }
}
