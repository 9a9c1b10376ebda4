//! [`Context`]: what a handler can do besides changing its own state.
//!
//! The context belongs to the actor's task and outlives restarts: children,
//! watches and timers are tracked here, and torn down when the actor stops
//! (children and timers also when it restarts).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::actor::{Actor, ActorMsg, IntoProps};
use crate::actor_ref::{ActorRef, LocalCell};
use crate::adapter::{Registration, adapter};
use crate::dead_letter::DeadLetterReason;
use crate::error::{Error, Result};
use crate::extensions::Extensions;
use crate::mailbox::Envelope;
use crate::path::ActorPath;
use crate::system::{ActorSystem, Parent};
use crate::watcher::{SystemMsg, SystemSender, Watcher, WatcherId};

/// The longest a timer waits: 30 years (the bound tokio's own `sleep`
/// uses). A longer delay or interval is clamped to it, so that no
/// `Duration`, however large, can overflow the timer's `Instant`
/// arithmetic (which would panic the timer task and silently stop it); such
/// a timer fires after 30 years, that is, in practice never.
pub const MAX_TIMER_DELAY: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// Identifies a timer started with [`Context::schedule_once`] or
/// [`Context::schedule_repeated`], to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey(u64);

pub(crate) struct ChildHandle {
    pub(crate) path: ActorPath,
    pub(crate) sys: SystemSender,
    pub(crate) terminated: watch::Receiver<bool>,
}

impl ChildHandle {
    pub(crate) fn request_stop(&self) {
        let _ = self.sys.send(SystemMsg::Stop);
    }

    pub(crate) async fn wait(mut self) {
        let _ = self.terminated.wait_for(|stopped| *stopped).await;
    }
}

/// Asks every actor in `handles` to stop, then waits until all have stopped.
pub(crate) async fn stop_all(handles: Vec<ChildHandle>) {
    for handle in &handles {
        handle.request_stop();
    }
    for handle in handles {
        handle.wait().await;
    }
}

type Unwatch = Box<dyn Fn(WatcherId) + Send + Sync>;

/// The actor's view of itself and the system, passed to every handler.
pub struct Context<A: Actor> {
    cell: Arc<LocalCell<A::Msg>>,
    system: ActorSystem,
    pub(crate) children: HashMap<u64, ChildHandle>,
    watching: HashMap<(ActorPath, u64), Unwatch>,
    timers: JoinSet<()>,
    active_timers: HashMap<u64, AbortHandle>,
    /// The repeated timers, each with what tells its task that its last
    /// tick was taken from the mailbox.
    repeating: HashMap<u64, Arc<Notify>>,
    next_timer: u64,
    pub(crate) stop_requested: bool,
    extensions: Extensions,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(cell: Arc<LocalCell<A::Msg>>, system: ActorSystem) -> Self {
        Self {
            cell,
            system,
            children: HashMap::new(),
            watching: HashMap::new(),
            timers: JoinSet::new(),
            active_timers: HashMap::new(),
            repeating: HashMap::new(),
            next_timer: 0,
            stop_requested: false,
            extensions: Extensions::default(),
        }
    }

    /// A reference to this actor.
    pub fn myself(&self) -> ActorRef<A::Msg> {
        ActorRef::local(Arc::clone(&self.cell))
    }

    /// A reference to this actor for messages of type `T`, each mapped into
    /// this actor's own with `map` as the actor takes it (Akka Typed's
    /// `messageAdapter`). It is also registered under this actor's path, so
    /// [`ActorSystem::lookup::<T>`](ActorSystem::lookup) finds this actor
    /// until it stops; registering `T` again replaces the mapping. An
    /// adapter that must be there from the spawn on (before `started`, and
    /// across restarts) belongs in the props:
    /// [`Props::with_adapter`](crate::Props::with_adapter).
    pub fn message_adapter<T: Send + 'static>(
        &mut self,
        map: impl Fn(T) -> A::Msg + Send + Sync + 'static,
    ) -> ActorRef<T> {
        let adapted = adapter(&self.cell, Arc::new(map));
        self.system.register_adapter(
            &self.cell.path,
            self.cell.uid,
            Registration::new(adapted.clone()),
        );
        adapted
    }

    /// Values that layers above the core keep with this actor (see
    /// [`Extensions`]).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// [`extensions`](Self::extensions), mutably.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// This actor's path.
    pub fn path(&self) -> &ActorPath {
        &self.cell.path
    }

    /// The system this actor lives in.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// Spawns a child under this actor's path. Children stop before their
    /// parent, and when their parent restarts; the parent hears of their
    /// failures through [`Actor::child_failed`].
    ///
    /// # Errors
    ///
    /// As [`ActorSystem::spawn`].
    pub fn spawn<P: IntoProps>(&mut self, props: P) -> Result<ActorRef<ActorMsg<P>>> {
        let props = props
            .into_props(&self.system)
            .map_err(|source| Error::Props { source })?;
        let parent = Parent::Actor {
            path: self.cell.path.clone(),
            sys: self.cell.sys.clone(),
        };
        let (child, handle) = self.system.spawn_in(parent, props)?;
        self.children.insert(child.uid(), handle);
        Ok(child)
    }

    /// The paths of this actor's live children.
    pub fn children(&self) -> impl Iterator<Item = &ActorPath> {
        self.children.values().map(|c| &c.path)
    }

    /// Watches `target`: once it stops, [`Actor::terminated`] runs once.
    /// Watching an actor that has already stopped yields `Terminated` at
    /// once; watching the same actor twice yields it once.
    pub fn watch<N: Send + 'static>(&mut self, target: &ActorRef<N>) {
        let key = (target.path().clone(), target.uid());
        if self.watching.contains_key(&key) {
            return;
        }
        let me = self.watcher_id();
        let target_for_unwatch = target.clone();
        self.watching.insert(
            key,
            Box::new(move |id| target_for_unwatch.remove_watcher(id)),
        );
        target.add_watcher(Watcher::actor(me, self.cell.sys.clone()));
    }

    /// Stops watching `target`; no `Terminated` for it arrives afterwards.
    pub fn unwatch<N: Send + 'static>(&mut self, target: &ActorRef<N>) {
        let key = (target.path().clone(), target.uid());
        if let Some(unwatch) = self.watching.remove(&key) {
            unwatch(self.watcher_id());
        }
    }

    /// Stops this actor once the current handler returns; no further user
    /// message is handled. A handler that calls `stop` and then returns an
    /// error is stopped, not restarted, whatever its strategy: the failure is
    /// still logged and reported to the parent.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Delivers `msg` to this actor after `delay` (at most
    /// [`MAX_TIMER_DELAY`]), unless cancelled first. A cancelled timer's
    /// message is never handled, even if it had already fired.
    pub fn schedule_once(&mut self, delay: Duration, msg: A::Msg) -> TimerKey {
        let key = self.next_timer_key();
        let cell = Arc::clone(&self.cell);
        let delay = delay.min(MAX_TIMER_DELAY);
        let handle = self.timers.spawn(async move {
            tokio::time::sleep(delay).await;
            deliver_timer(&cell, key, false, msg).await;
        });
        self.active_timers.insert(key, handle);
        TimerKey(key)
    }

    /// Delivers `make()` to this actor every `interval` (the first after one
    /// interval), until cancelled or the actor stops. A slow actor delays
    /// ticks rather than piling them up. The interval is at least 1 ms and
    /// at most [`MAX_TIMER_DELAY`].
    pub fn schedule_repeated(
        &mut self,
        interval: Duration,
        mut make: impl FnMut() -> A::Msg + Send + 'static,
    ) -> TimerKey {
        let key = self.next_timer_key();
        let cell = Arc::clone(&self.cell);
        let interval = interval.clamp(Duration::from_millis(1), MAX_TIMER_DELAY);
        let taken = Arc::new(Notify::new());
        let tick_taken = Arc::clone(&taken);
        let handle = self.timers.spawn(async move {
            // Within MAX_TIMER_DELAY of now, each tick's deadline (and
            // tokio's `deadline + interval` for the next) is representable.
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if !deliver_timer(&cell, key, true, make()).await {
                    return;
                }
                // At most one tick waits in the mailbox: a busy actor
                // delays the next instead of finding a pile of them (an
                // unbounded mailbox never makes `deliver_timer` wait).
                tick_taken.notified().await;
            }
        });
        self.active_timers.insert(key, handle);
        self.repeating.insert(key, taken);
        TimerKey(key)
    }

    /// Cancels a timer; returns whether it was still active.
    pub fn cancel_timer(&mut self, key: TimerKey) -> bool {
        self.repeating.remove(&key.0);
        match self.active_timers.remove(&key.0) {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    fn next_timer_key(&mut self) -> u64 {
        // Reap finished one-shot tasks so a long-lived actor that schedules
        // many timers does not accumulate them.
        while self.timers.try_join_next().is_some() {}
        self.next_timer += 1;
        self.next_timer
    }

    /// Whether a timer message that just arrived should be handled.
    pub(crate) fn accept_timer(&mut self, key: u64, repeat: bool) -> bool {
        if repeat {
            match self.repeating.get(&key) {
                Some(taken) => {
                    // Stored if the timer's task is not waiting yet.
                    taken.notify_one();
                    true
                }
                None => false,
            }
        } else {
            self.active_timers.remove(&key).is_some()
        }
    }

    pub(crate) fn cancel_all_timers(&mut self) {
        self.timers.abort_all();
        self.active_timers.clear();
        self.repeating.clear();
    }

    pub(crate) fn watcher_id(&self) -> WatcherId {
        WatcherId(self.cell.uid)
    }

    /// Takes a `Terminated` notice; true if it answers a live watch.
    pub(crate) fn take_terminated(&mut self, path: &ActorPath, uid: u64) -> bool {
        self.watching.remove(&(path.clone(), uid)).is_some()
    }

    pub(crate) fn unwatch_all(&mut self) {
        let me = self.watcher_id();
        for (_, unwatch) in self.watching.drain() {
            unwatch(me);
        }
    }

    /// Stops every child and waits until each has stopped completely.
    pub(crate) async fn stop_children(&mut self) {
        stop_all(self.children.drain().map(|(_, c)| c).collect()).await;
    }

    pub(crate) fn cell(&self) -> &Arc<LocalCell<A::Msg>> {
        &self.cell
    }
}

/// Enqueues a timer's message, waiting for room; false once the actor is gone.
async fn deliver_timer<M>(cell: &LocalCell<M>, key: u64, repeat: bool, msg: M) -> bool {
    match cell
        .mailbox
        .send(Envelope::Timer { key, repeat, msg })
        .await
    {
        Ok(()) => true,
        Err(_) => {
            cell.dead_letter(DeadLetterReason::ActorStopped);
            false
        }
    }
}
