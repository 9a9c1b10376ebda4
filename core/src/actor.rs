//! The [`Actor`] trait and [`Props`], the recipe a system spawns an actor from.
//!
//! An actor owns its state and handles one message at a time: `handle` is
//! never called concurrently with itself or with a lifecycle hook, so state
//! needs no locks. Each actor takes one message type, usually an enum.

use std::future::Future;
use std::sync::Arc;

use crate::adapter::{AdapterFactory, MapFn, Registration, adapter};
use crate::context::Context;
use crate::error::BoxError;
use crate::mailbox::Mailbox;
use crate::path::ActorPath;
use crate::supervision::{ChildFailure, SupervisorStrategy};
use crate::system::ActorSystem;

/// An actor: state plus a handler for one message type.
///
/// Handlers return `Result<(), BoxError>`: an error (or a panic) is a failure
/// that the actor's [`SupervisorStrategy`] deals with. Implement the methods
/// with `async fn`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use courier::{Actor, ActorSystem, BoxError, Context, Props, ReplyTo};
///
/// #[derive(Default)]
/// struct Counter {
///     count: u64,
/// }
///
/// enum CounterMsg {
///     Add(u64),
///     Get(ReplyTo<u64>),
/// }
///
/// impl Actor for Counter {
///     type Msg = CounterMsg;
///
///     async fn handle(&mut self, msg: CounterMsg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
///         match msg {
///             CounterMsg::Add(n) => self.count += n,
///             CounterMsg::Get(reply) => reply.reply(self.count),
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), courier::Error> {
/// let system = ActorSystem::new("docs");
/// let counter = system.spawn(Props::new(Counter::default).with_name("counter"))?;
/// counter.tell(CounterMsg::Add(2));
/// counter.tell(CounterMsg::Add(3));
/// let total = counter.ask(CounterMsg::Get, Duration::from_secs(1)).await?;
/// assert_eq!(total, 5);
/// system.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub trait Actor: Send + Sized + 'static {
    /// The one message type this actor takes.
    type Msg: Send + 'static;

    /// Runs before the first message, and again after each restart.
    ///
    /// # Errors
    ///
    /// An error is a failure, handled by the supervisor strategy.
    fn started(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Handles one message.
    ///
    /// # Errors
    ///
    /// An error is a failure, handled by the supervisor strategy; the message
    /// is not retried.
    fn handle(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Runs once the actor stops (after its children have stopped), and on
    /// the failed instance before a restart.
    fn stopped(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// An actor this one [watches](Context::watch) has stopped. Called once
    /// per watch.
    ///
    /// # Errors
    ///
    /// An error is a failure, handled by the supervisor strategy.
    fn terminated(
        &mut self,
        terminated: Terminated,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (terminated, ctx);
        async { Ok(()) }
    }

    /// A child of this actor failed; its own strategy has already acted, as
    /// `failure.directive` says.
    ///
    /// # Errors
    ///
    /// An error is a failure of this actor, handled by its own strategy.
    fn child_failed(
        &mut self,
        failure: ChildFailure,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (failure, ctx);
        async { Ok(()) }
    }
}

/// Notice that a watched actor has stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    /// The actor that stopped.
    pub path: ActorPath,
}

/// What [`ActorSystem::spawn`](crate::ActorSystem::spawn) and
/// [`Context::spawn`] take: [`Props`] themselves, or a layer's builder that
/// becomes props once it sees the system it is spawned in (the props of an
/// event-sourced actor take the system's default journal so, and refuse to
/// spawn without one). The core never learns what the builder resolved.
pub trait IntoProps {
    /// The actor these props spawn.
    type Actor: Actor;

    /// The props, resolved against `system`.
    ///
    /// # Errors
    ///
    /// Why these props cannot be spawned in `system`;
    /// [`spawn`](crate::ActorSystem::spawn) returns it as the source of
    /// [`Error::Props`](crate::Error::Props), and spawns nothing.
    fn into_props(self, system: &ActorSystem) -> Result<Props<Self::Actor>, BoxError>;
}

impl<A: Actor> IntoProps for Props<A> {
    type Actor = A;

    fn into_props(self, _system: &ActorSystem) -> Result<Props<A>, BoxError> {
        Ok(self)
    }
}

/// The message type of the actor that `P` spawns.
pub(crate) type ActorMsg<P> = <<P as IntoProps>::Actor as Actor>::Msg;

pub(crate) type Factory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// How to spawn an actor: its factory, name, mailbox and supervisor strategy.
///
/// The factory is called once at spawn and again on every restart, so a
/// restarted actor starts from fresh state.
pub struct Props<A: Actor> {
    pub(crate) factory: Factory<A>,
    pub(crate) name: Option<String>,
    pub(crate) mailbox: Mailbox,
    pub(crate) supervisor: SupervisorStrategy,
    pub(crate) adapters: Vec<AdapterFactory<A::Msg>>,
}

impl<A: Actor> Props<A> {
    /// Props that make the actor with `factory`, with a generated name, an
    /// unbounded mailbox and the default supervisor strategy.
    pub fn new(factory: impl Fn() -> A + Send + Sync + 'static) -> Self {
        Self {
            factory: Arc::new(factory),
            name: None,
            mailbox: Mailbox::default(),
            supervisor: SupervisorStrategy::default(),
            adapters: Vec::new(),
        }
    }

    /// Spawns the actor under this name: its path is its parent's path plus
    /// `/name`, and it must be unique among live actors.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Uses this mailbox.
    pub fn with_mailbox(mut self, mailbox: Mailbox) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// Uses this supervisor strategy.
    pub fn with_supervisor(mut self, strategy: SupervisorStrategy) -> Self {
        self.supervisor = strategy;
        self
    }

    /// Makes the actor reachable as an `ActorRef<T>` too, under its own
    /// path: [`ActorSystem::lookup::<T>`](crate::ActorSystem::lookup) finds
    /// it, and each `T` becomes an `A::Msg` through `From` as the actor takes
    /// it (a [message adapter](crate::Context::message_adapter) present from
    /// the spawn on, across restarts). The actor's message type and its
    /// other messages are unchanged; an actor without adapters pays nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use courier::{Actor, ActorSystem, BoxError, Context, Props, ReplyTo};
    ///
    /// struct Charge(u64);
    ///
    /// enum Payments {
    ///     Charge(Charge),
    ///     Total(ReplyTo<u64>),
    /// }
    ///
    /// impl From<Charge> for Payments {
    ///     fn from(charge: Charge) -> Self {
    ///         Payments::Charge(charge)
    ///     }
    /// }
    ///
    /// #[derive(Default)]
    /// struct Ledger {
    ///     total: u64,
    /// }
    ///
    /// impl Actor for Ledger {
    ///     type Msg = Payments;
    ///
    ///     async fn handle(&mut self, msg: Payments, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
    ///         match msg {
    ///             Payments::Charge(Charge(n)) => self.total += n,
    ///             Payments::Total(reply) => reply.reply(self.total),
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), courier::Error> {
    /// let system = ActorSystem::new("docs");
    /// let ledger = system.spawn(
    ///     Props::new(Ledger::default)
    ///         .with_name("payments")
    ///         .with_adapter::<Charge>(),
    /// )?;
    /// // Found by path as an actor that takes `Charge`.
    /// let charges = system.lookup::<Charge>("/user/payments")?;
    /// charges.tell(Charge(5));
    /// assert_eq!(ledger.ask(Payments::Total, Duration::from_secs(1)).await?, 5);
    /// # system.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_adapter<T: Send + 'static>(self) -> Self
    where
        A::Msg: From<T>,
    {
        self.with_adapter_fn(<A::Msg as From<T>>::from)
    }

    /// [`with_adapter`](Self::with_adapter) with a mapping function instead
    /// of `From`. A later adapter for the same `T` replaces an earlier one.
    pub fn with_adapter_fn<T: Send + 'static>(
        mut self,
        map: impl Fn(T) -> A::Msg + Send + Sync + 'static,
    ) -> Self {
        let map: MapFn<T, A::Msg> = Arc::new(map);
        self.adapters.push(Arc::new(move |cell| {
            Registration::new(adapter(cell, Arc::clone(&map)))
        }));
        self
    }
}

impl<A: Actor> Clone for Props<A> {
    fn clone(&self) -> Self {
        Self {
            factory: Arc::clone(&self.factory),
            name: self.name.clone(),
            mailbox: self.mailbox,
            supervisor: self.supervisor.clone(),
            adapters: self.adapters.clone(),
        }
    }
}
