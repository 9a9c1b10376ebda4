//! The task that runs one actor: its message loop, supervision and shutdown.
//!
//! Invariants:
//! - system messages are taken before each user message, so `Stop` overtakes
//!   any backlog (the check is one atomic load, see `system_channel`);
//! - a bounded mailbox hands over one message at a time, so its capacity
//!   stays exact; an unbounded one up to 64 per wake-up;
//! - a handler failure (error or panic) never escapes: it goes to the
//!   supervisor strategy;
//! - when the loop ends, children stop first, then the `stopped` hook runs,
//!   then every message still queued becomes a dead letter, then watchers and
//!   the parent are told, and only then is the actor marked terminated.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

use futures_util::FutureExt;
use tokio::time::Instant;

use crate::actor::{Actor, Factory, Terminated};
use crate::context::Context;
use crate::dead_letter::DeadLetterReason;
use crate::error::BoxError;
use crate::mailbox::{Envelope, MailboxReceiver};
use crate::supervision::{ChildFailure, Directive, Failure, SupervisorStrategy};
use crate::system::Parent;
use crate::system_channel::SystemReceiver;
use crate::watcher::{SystemMsg, Watcher, WatcherId};

/// What a timer's or an adapter's envelope holds for the handler.
enum Opened<M> {
    Msg(M),
    /// A timer cancelled after it fired: nothing to handle.
    Skip,
    /// The adapter's mapping panicked.
    Failed(Failure),
}

/// Whether the loop goes on after a step.
enum Flow {
    Continue,
    Stop,
}

pub(crate) struct ActorLoop<A: Actor> {
    pub(crate) factory: Factory<A>,
    pub(crate) strategy: SupervisorStrategy,
    pub(crate) ctx: Context<A>,
    pub(crate) mailbox: MailboxReceiver<A::Msg>,
    /// Envelopes taken from the mailbox, in reverse order.
    pub(crate) batch: Vec<Envelope<A::Msg>>,
    pub(crate) sys_rx: SystemReceiver,
    pub(crate) parent: Parent,
    /// System messages that arrived during a restart backoff.
    pub(crate) pending_sys: VecDeque<SystemMsg>,
    pub(crate) watchers: HashMap<WatcherId, Watcher>,
    pub(crate) restarts: VecDeque<Instant>,
}

impl<A: Actor> ActorLoop<A> {
    pub(crate) async fn run(mut self) {
        let mut actor = None;
        let started = self.start_instance(&mut actor).await;
        let flow = match started {
            Ok(()) => Flow::Continue,
            Err(failure) => self.recover(&mut actor, failure).await,
        };
        if let Flow::Continue = flow {
            self.message_loop(&mut actor).await;
        }
        self.finish(actor).await;
    }

    /// The hot path: a system message first (one atomic load when there
    /// is none), then the next user message from the batch, refilling it
    /// from the mailbox (and parking there) only when it is empty. The user
    /// message's handler runs right here, pinned in this frame: no
    /// per-message future besides the handler's own.
    async fn message_loop(&mut self, actor: &mut Option<A>) {
        while !self.ctx.stop_requested {
            if let Some(msg) = self.try_system() {
                if let Flow::Stop = self.on_system(msg, actor).await {
                    return;
                }
                continue;
            }
            let Some(env) = self.batch.pop() else {
                if std::future::poll_fn(|cx| self.poll_refill(cx)).await {
                    continue;
                }
                return;
            };
            let msg = match env {
                Envelope::User(msg) => msg,
                other => match self.open(other) {
                    Opened::Msg(msg) => msg,
                    Opened::Skip => continue,
                    Opened::Failed(failure) => {
                        // Boxed, as below: the rare path stays out of the
                        // hot future.
                        if let Flow::Stop = Box::pin(self.recover(actor, failure)).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            let Some(instance) = actor.as_mut() else {
                return;
            };
            let handled = {
                let fut = std::pin::pin!(instance.handle(msg, &mut self.ctx));
                guarded_pinned(fut).await
            };
            if let Err(failure) = handled {
                if let Flow::Stop = Box::pin(self.recover(actor, failure)).await {
                    return;
                }
            }
        }
    }

    #[inline]
    fn try_system(&mut self) -> Option<SystemMsg> {
        // `is_empty` first: a `pop_front` on the (nearly always) empty
        // queue costs more, on the per-message path.
        if !self.pending_sys.is_empty() {
            return self.pending_sys.pop_front();
        }
        self.sys_rx.try_recv()
    }

    /// Refills the (empty) batch from the mailbox; `Ready(true)` also when
    /// a system message may be waiting, `Ready(false)` when the mailbox is
    /// closed and empty. One wake-up source: the task parks on the mailbox
    /// alone, and a system message wakes it through the system channel's
    /// own waker (see `system_channel`).
    #[inline]
    fn poll_refill(&mut self, cx: &mut std::task::Context<'_>) -> Poll<bool> {
        if let Poll::Ready(open) = self.mailbox.poll_recv_into(cx, &mut self.batch) {
            return Poll::Ready(open);
        }
        if self.sys_rx.poll_pending(cx) {
            return Poll::Ready(true);
        }
        Poll::Pending
    }

    /// The message inside a timer's or an adapter's envelope, if it is
    /// still to be handled.
    #[cold]
    fn open(&mut self, env: Envelope<A::Msg>) -> Opened<A::Msg> {
        match env {
            Envelope::User(msg) => Opened::Msg(msg),
            Envelope::Timer { key, repeat, msg } => {
                if self.ctx.accept_timer(key, repeat) {
                    Opened::Msg(msg)
                } else {
                    Opened::Skip
                }
            }
            // The mapping is the user's code: a panic in it is a failure of
            // this actor, like one in its handler.
            Envelope::Adapted(adapted) => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| adapted.into_msg())) {
                    Ok(msg) => Opened::Msg(msg),
                    Err(panic) => Opened::Failed(Failure::Panic(panic_message(panic))),
                }
            }
        }
    }

    async fn on_system(&mut self, msg: SystemMsg, actor: &mut Option<A>) -> Flow {
        match msg {
            SystemMsg::Stop => Flow::Stop,
            SystemMsg::Watch(watcher) => {
                self.watchers.insert(watcher.id(), watcher);
                Flow::Continue
            }
            SystemMsg::Unwatch(id) => {
                self.watchers.remove(&id);
                Flow::Continue
            }
            SystemMsg::Terminated { path, uid } => {
                if !self.ctx.take_terminated(&path, uid) {
                    return Flow::Continue;
                }
                let Some(instance) = actor.as_mut() else {
                    return Flow::Stop;
                };
                match guarded(instance.terminated(Terminated { path }, &mut self.ctx)).await {
                    Ok(()) => Flow::Continue,
                    Err(failure) => self.recover(actor, failure).await,
                }
            }
            SystemMsg::ChildFailed(failure) => {
                let Some(instance) = actor.as_mut() else {
                    return Flow::Stop;
                };
                match guarded(instance.child_failed(failure, &mut self.ctx)).await {
                    Ok(()) => Flow::Continue,
                    Err(failure) => self.recover(actor, failure).await,
                }
            }
            SystemMsg::ChildTerminated { uid } => {
                self.ctx.children.remove(&uid);
                Flow::Continue
            }
        }
    }

    /// Makes an instance from the factory and runs its `started` hook. On a
    /// failed hook the instance is kept in `actor` so Resume can go on.
    async fn start_instance(&mut self, actor: &mut Option<A>) -> Result<(), Failure> {
        let factory = &self.factory;
        let made = std::panic::catch_unwind(AssertUnwindSafe(|| factory()));
        let instance = actor.insert(made.map_err(|p| Failure::Panic(panic_message(p)))?);
        guarded(instance.started(&mut self.ctx)).await
    }

    /// Applies the supervisor strategy to `failure`, restarting as often as
    /// the strategy allows.
    async fn recover(&mut self, actor: &mut Option<A>, mut failure: Failure) -> Flow {
        loop {
            // The decider is the user's code too: a panic in it must not
            // unwind through this loop, which would skip `finish` (children
            // left running, sends in flight not waited for). It stops the
            // actor.
            let strategy = &self.strategy;
            let decided = std::panic::catch_unwind(AssertUnwindSafe(|| strategy.decide(&failure)));
            let mut directive = decided.unwrap_or_else(|panic| {
                tracing::error!(
                    path = %self.ctx.path(),
                    panic = %panic_message(panic),
                    "supervisor decider panicked; stopping"
                );
                Directive::Stop
            });
            if self.ctx.stop_requested || (directive == Directive::Resume && actor.is_none()) {
                // A handler that asked to stop and then failed (as a failed
                // recovery does) is not restarted; nor is there anything to
                // resume when the factory itself failed.
                directive = Directive::Stop;
            }
            let mut backoff = None;
            if directive == Directive::Restart {
                let now = Instant::now();
                let within = self.strategy.within();
                while self
                    .restarts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= within)
                {
                    self.restarts.pop_front();
                }
                if self.restarts.len() >= self.strategy.max_restarts() as usize {
                    tracing::error!(
                        path = %self.ctx.path(),
                        max_restarts = self.strategy.max_restarts(),
                        within = ?within,
                        "restart limit reached; stopping"
                    );
                    directive = Directive::Stop;
                } else {
                    self.restarts.push_back(now);
                    backoff = Some(self.strategy.backoff(self.restarts.len() as u32));
                }
            }
            tracing::error!(path = %self.ctx.path(), %failure, ?directive, "actor failed");
            self.parent.notify_failure(ChildFailure {
                child: self.ctx.path().clone(),
                failure,
                directive,
            });
            match (directive, backoff) {
                (Directive::Resume, _) => return Flow::Continue,
                (Directive::Restart, Some(delay)) => {
                    if let Some(mut old) = actor.take() {
                        if let Err(f) = guarded(async {
                            old.stopped(&mut self.ctx).await;
                            Ok(())
                        })
                        .await
                        {
                            tracing::error!(path = %self.ctx.path(), failure = %f, "stopped hook failed during restart");
                        }
                    }
                    self.stop_children_for_restart().await;
                    self.ctx.cancel_all_timers();
                    if let Flow::Stop = self.wait_backoff(delay).await {
                        return Flow::Stop;
                    }
                    match self.start_instance(actor).await {
                        Ok(()) => return Flow::Continue,
                        Err(f) => failure = f,
                    }
                }
                _ => return Flow::Stop,
            }
        }
    }

    /// Stops the children before a restart, reading the mailbox meanwhile.
    /// The mailbox is kept across a restart, so it cannot be closed as
    /// `finish` does; but a child waiting in `send` for room in it would
    /// never return from its handler, so never stop, and the restart would
    /// wait for it forever. What is read goes to the batch, behind what is
    /// already there, for the next instance: so a bounded mailbox's
    /// messages can outnumber its capacity while its children stop.
    async fn stop_children_for_restart(&mut self) {
        let children = self.ctx.children.drain().map(|(_, c)| c).collect();
        let mut stopping = std::pin::pin!(crate::context::stop_all(children));
        let mut taken = Vec::new();
        let mut fresh = Vec::new();
        std::future::poll_fn(|cx| {
            if stopping.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            // Until the mailbox is empty (or the task's coop budget is
            // spent: then this is woken again).
            while let Poll::Ready(true) = self.mailbox.poll_recv_into(cx, &mut fresh) {
                taken.extend(fresh.drain(..).rev());
            }
            Poll::Pending
        })
        .await;
        // The batch is in reverse order: what it held was taken first, so
        // it stays at its end.
        let older = std::mem::take(&mut self.batch);
        self.batch = taken.into_iter().rev().chain(older).collect();
    }

    /// Sleeps before a restart while still taking system messages: a stop
    /// ends the wait, others are kept for after the restart.
    async fn wait_backoff(&mut self, delay: std::time::Duration) -> Flow {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                msg = std::future::poll_fn(|cx| self.sys_rx.poll_recv(cx)) => match msg {
                    SystemMsg::Stop => return Flow::Stop,
                    other => self.pending_sys.push_back(other),
                },
                () = &mut sleep => return Flow::Continue,
            }
        }
    }

    async fn finish(mut self, actor: Option<A>) {
        // Closed before the children are stopped: nothing reads the mailbox
        // any more, and a child waiting in `send` for room in it would
        // otherwise never return from its handler, so never stop, and this
        // actor would wait for it forever. A send from now on fails at the
        // sender (a dead letter for `tell`); what is queued is drained below.
        self.mailbox.close();
        self.ctx.stop_children().await;
        self.ctx.cancel_all_timers();
        if let Some(mut instance) = actor {
            if let Err(f) = guarded(async {
                instance.stopped(&mut self.ctx).await;
                Ok(())
            })
            .await
            {
                tracing::error!(path = %self.ctx.path(), failure = %f, "stopped hook failed");
            }
        }
        // A `stopped` hook may have spawned children; they must not outlive us.
        self.ctx.stop_children().await;
        self.close_and_drain().await;
        self.seal();
    }

    /// Takes what is left in the mailbox (closed at the start of `finish`)
    /// and, after closing it, the system channel, waiting for sends in
    /// flight at the close: such a send was answered `Ok`, so its message
    /// must become a dead letter (or, for a watch, a `Terminated`) rather
    /// than stay in a channel nobody reads. Closing first makes later sends
    /// fail at the sender.
    async fn close_and_drain(&mut self) {
        let cell = std::sync::Arc::clone(self.ctx.cell());
        for env in self.batch.drain(..).rev() {
            dead_envelope(&cell, env);
        }
        while let Some(env) = std::future::poll_fn(|cx| self.mailbox.poll_recv_closed(cx)).await {
            dead_envelope(&cell, env);
        }
        self.sys_rx.close();
        while let Some(msg) = std::future::poll_fn(|cx| self.sys_rx.poll_recv_closed(cx)).await {
            self.pending_sys.push_back(msg);
        }
    }

    /// The synchronous end of an actor's life. Runs from `finish`, or from
    /// `Drop` if the task is torn down without finishing (the runtime shut
    /// down, or a bug panicked the loop), so that `terminated()` waiters,
    /// watchers and the registry never wait on an actor that is gone.
    fn seal(&mut self) {
        let cell = std::sync::Arc::clone(self.ctx.cell());
        if *cell.terminated.borrow() {
            return;
        }
        self.ctx.cancel_all_timers();
        self.ctx.system().unregister(&cell.path, cell.uid);

        // Everything still queued becomes a dead letter. After `finish`
        // this finds both channels closed and empty; on the teardown path
        // (nothing can be awaited) a send in flight at this close may be
        // left behind, with the runtime that would have handled it.
        self.mailbox.close();
        for env in self.batch.drain(..).rev() {
            dead_envelope(&cell, env);
        }
        while let Some(env) = self.mailbox.try_recv() {
            dead_envelope(&cell, env);
        }

        self.sys_rx.close();
        let late = self.sys_rx.drain_now();
        for msg in self.pending_sys.drain(..).chain(late) {
            if let SystemMsg::Watch(watcher) = msg {
                self.watchers.insert(watcher.id(), watcher);
            }
        }
        for (_, watcher) in self.watchers.drain() {
            watcher.notify_terminated(&cell.path, cell.uid);
        }
        self.ctx.unwatch_all();
        self.parent.notify_terminated(cell.uid);
        cell.terminated.send_replace(true);
    }
}

impl<A: Actor> Drop for ActorLoop<A> {
    fn drop(&mut self) {
        self.seal();
    }
}

/// [`guarded`] for a future pinned in place, without moving it.
fn guarded_pinned<F>(mut fut: Pin<&mut F>) -> impl Future<Output = Result<(), Failure>> + '_
where
    F: Future<Output = Result<(), BoxError>>,
{
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(Failure::Error(e))),
            Err(panic) => Poll::Ready(Err(Failure::Panic(panic_message(panic)))),
        }
    })
}

/// Runs a handler, turning an error or a panic into a [`Failure`].
async fn guarded<F>(fut: F) -> Result<(), Failure>
where
    F: Future<Output = Result<(), BoxError>>,
{
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(panic) => Err(Failure::Panic(panic_message(panic))),
    }
}

/// A message left in the mailbox of a stopped actor. An adapted one is
/// reported without its message: mapping it would run user code here.
fn dead_envelope<M: Send + 'static>(cell: &crate::actor_ref::LocalCell<M>, env: Envelope<M>) {
    match env {
        Envelope::User(msg) | Envelope::Timer { msg, .. } => {
            cell.dead_message(DeadLetterReason::ActorStopped, None, msg);
        }
        Envelope::Adapted(_) => cell.dead_letter(DeadLetterReason::ActorStopped),
    }
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
