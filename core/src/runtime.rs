//! The task that runs one actor: its message loop, supervision and shutdown.
//!
//! Invariants:
//! - system messages are taken before each user message, so `Stop` overtakes
//!   any backlog;
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
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::actor::{Actor, Factory, Terminated};
use crate::context::Context;
use crate::dead_letter::DeadLetterReason;
use crate::error::BoxError;
use crate::mailbox::{Envelope, MailboxReceiver};
use crate::supervision::{ChildFailure, Directive, Failure, SupervisorStrategy};
use crate::system::Parent;
use crate::watcher::{SystemMsg, Watcher, WatcherId};

/// Whether the loop goes on after a step.
enum Flow {
    Continue,
    Stop,
}

enum Next<M> {
    System(SystemMsg),
    User(Envelope<M>),
    Closed,
}

pub(crate) struct ActorLoop<A: Actor> {
    pub(crate) factory: Factory<A>,
    pub(crate) strategy: SupervisorStrategy,
    pub(crate) ctx: Context<A>,
    pub(crate) mailbox: MailboxReceiver<A::Msg>,
    pub(crate) sys_rx: mpsc::UnboundedReceiver<SystemMsg>,
    pub(crate) parent: Parent,
    /// Messages taken from the mailbox in one batch, in reverse order.
    pub(crate) batch: Vec<Envelope<A::Msg>>,
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

    /// The hot path: a system message first, then the current batch, then
    /// (bounded mailboxes) one `try_recv`, and only then a park.
    async fn message_loop(&mut self, actor: &mut Option<A>) {
        while !self.ctx.stop_requested {
            let flow = if let Some(msg) = self.try_system() {
                self.on_system(msg, actor).await
            } else if let Some(env) = self.batch.pop() {
                self.on_user(env, actor).await
            } else if let Some(env) = self.mailbox.try_recv_bounded() {
                // `try_recv` takes no coop budget: take one, so that a busy
                // actor still yields to the other tasks of its worker.
                tokio::task::coop::consume_budget().await;
                self.on_user(env, actor).await
            } else {
                match self.wait().await {
                    Next::System(msg) => self.on_system(msg, actor).await,
                    Next::User(env) => self.on_user(env, actor).await,
                    Next::Closed => Flow::Stop,
                }
            };
            if let Flow::Stop = flow {
                return;
            }
        }
    }

    fn try_system(&mut self) -> Option<SystemMsg> {
        if let Some(msg) = self.pending_sys.pop_front() {
            return Some(msg);
        }
        self.sys_rx.try_recv().ok()
    }

    /// Parks until a message arrives. The system channel was checked just
    /// before, so the mailbox is polled first.
    async fn wait(&mut self) -> Next<A::Msg> {
        tokio::select! {
            biased;
            n = self.mailbox.recv_into(&mut self.batch) => {
                if n == 0 {
                    return Next::Closed;
                }
                self.batch.reverse();
                match self.batch.pop() {
                    Some(env) => Next::User(env),
                    None => Next::Closed,
                }
            }
            msg = self.sys_rx.recv() => match msg {
                Some(msg) => Next::System(msg),
                // The cell we hold keeps a sender alive; treat the impossible
                // as a stop rather than spin.
                None => Next::Closed,
            },
        }
    }

    async fn on_user(&mut self, env: Envelope<A::Msg>, actor: &mut Option<A>) -> Flow {
        let msg = match env {
            Envelope::User(msg) => msg,
            Envelope::Timer { key, repeat, msg } => {
                if !self.ctx.accept_timer(key, repeat) {
                    return Flow::Continue;
                }
                msg
            }
            // The mapping is the user's code: a panic in it is a failure of
            // this actor, like one in its handler.
            Envelope::Adapted(adapted) => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| adapted.into_msg())) {
                    Ok(msg) => msg,
                    Err(panic) => {
                        let failure = Failure::Panic(panic_message(panic));
                        return Box::pin(self.recover(actor, failure)).await;
                    }
                }
            }
        };
        let Some(instance) = actor.as_mut() else {
            return Flow::Stop;
        };
        // Pinned in place rather than moved into a wrapper future: this is
        // the per-message path.
        let handled = {
            let fut = std::pin::pin!(instance.handle(msg, &mut self.ctx));
            guarded_pinned(fut).await
        };
        match handled {
            Ok(()) => Flow::Continue,
            // Boxed so that the rare failure path does not bloat the hot
            // future.
            Err(failure) => Box::pin(self.recover(actor, failure)).await,
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
            let mut directive = self.strategy.decide(&failure);
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
                    self.ctx.stop_children().await;
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

    /// Sleeps before a restart while still taking system messages: a stop
    /// ends the wait, others are kept for after the restart.
    async fn wait_backoff(&mut self, delay: std::time::Duration) -> Flow {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                msg = self.sys_rx.recv() => match msg {
                    Some(SystemMsg::Stop) | None => return Flow::Stop,
                    Some(other) => self.pending_sys.push_back(other),
                },
                () = &mut sleep => return Flow::Continue,
            }
        }
    }

    async fn finish(mut self, actor: Option<A>) {
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
        self.seal();
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

        // Everything still queued becomes a dead letter. Closing first makes
        // later sends fail (and become dead letters at the sender), so no
        // message can slip in between the drain and the end.
        self.mailbox.close();
        for env in self.batch.drain(..) {
            dead_envelope(&cell, env);
        }
        while let Some(env) = self.mailbox.try_recv() {
            dead_envelope(&cell, env);
        }

        self.sys_rx.close();
        let late = std::iter::from_fn(|| self.sys_rx.try_recv().ok());
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
