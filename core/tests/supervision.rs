//! Supervision: restart with backoff and limits, resume, stop, and parents
//! hearing of their children's failures.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use courier_core::{
    Actor, ActorRef, BoxError, ChildFailure, Context, Directive, Failure, Props, ReplyTo,
    SupervisorStrategy,
};
use support::{SECOND, recv_within, system};
use tokio::sync::mpsc;

enum Msg {
    Add(u64),
    Fail,
    Panic,
    /// (incarnation, count)
    Get(ReplyTo<(u64, u64)>),
}

struct Fragile {
    incarnation: u64,
    count: u64,
    fail_start: bool,
    events: mpsc::UnboundedSender<String>,
}

impl Actor for Fragile {
    type Msg = Msg;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if self.fail_start {
            return Err("cannot start the first time".into());
        }
        Ok(())
    }

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Msg::Add(n) => self.count += n,
            Msg::Fail => return Err("asked to fail".into()),
            Msg::Panic => panic!("asked to panic"),
            Msg::Get(reply) => reply.reply((self.incarnation, self.count)),
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _ = self
            .events
            .send(format!("incarnation {} stopped", self.incarnation));
    }
}

struct Fixture {
    incarnations: Arc<AtomicU64>,
    events: mpsc::UnboundedReceiver<String>,
    props: Props<Fragile>,
}

fn fragile(strategy: SupervisorStrategy, fail_first_start: bool) -> Fixture {
    let incarnations = Arc::new(AtomicU64::new(0));
    let (tx, events) = mpsc::unbounded_channel();
    let counter = incarnations.clone();
    let props = Props::new(move || {
        let incarnation = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Fragile {
            incarnation,
            count: 0,
            fail_start: fail_first_start && incarnation == 1,
            events: tx.clone(),
        }
    })
    .with_supervisor(strategy);
    Fixture {
        incarnations,
        events,
        props,
    }
}

fn quick_restarts() -> SupervisorStrategy {
    SupervisorStrategy::restart().with_backoff(Duration::ZERO, Duration::ZERO)
}

async fn state(actor: &ActorRef<Msg>) -> (u64, u64) {
    actor.ask(Msg::Get, SECOND).await.expect("reply")
}

#[tokio::test]
async fn an_error_restarts_from_the_factory_and_keeps_the_mailbox() {
    let system = system();
    let mut f = fragile(quick_restarts(), false);
    let actor = system.spawn(f.props.clone()).expect("spawn");
    actor.tell(Msg::Add(3));
    actor.tell(Msg::Fail);
    actor.tell(Msg::Add(1)); // queued behind the failure: kept and handled
    assert_eq!(state(&actor).await, (2, 1), "fresh state, same mailbox");
    assert_eq!(
        recv_within(&mut f.events, SECOND).await,
        "incarnation 1 stopped",
        "the failed instance's stopped hook ran"
    );
    assert_eq!(f.incarnations.load(Ordering::SeqCst), 2);
    system.shutdown().await;
}

#[tokio::test]
async fn a_panic_is_caught_and_restarts() {
    let system = system();
    let f = fragile(quick_restarts(), false);
    let actor = system.spawn(f.props.clone()).expect("spawn");
    actor.tell(Msg::Add(5));
    actor.tell(Msg::Panic);
    assert_eq!(state(&actor).await, (2, 0));
    assert!(!actor.is_terminated());
    system.shutdown().await;
}

#[tokio::test]
async fn resume_keeps_the_state() {
    let system = system();
    let f = fragile(SupervisorStrategy::resume(), false);
    let actor = system.spawn(f.props.clone()).expect("spawn");
    actor.tell(Msg::Add(3));
    actor.tell(Msg::Fail);
    actor.tell(Msg::Panic);
    actor.tell(Msg::Add(1));
    assert_eq!(state(&actor).await, (1, 4));
    system.shutdown().await;
}

#[tokio::test]
async fn stop_strategy_stops_on_the_first_failure() {
    let system = system();
    let f = fragile(SupervisorStrategy::stop(), false);
    let actor = system.spawn(f.props.clone()).expect("spawn");
    actor.tell(Msg::Fail);
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped");
    assert_eq!(f.incarnations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn too_many_restarts_within_the_window_stop_the_actor() {
    let system = system();
    let f = fragile(
        quick_restarts().with_max_restarts(3, Duration::from_secs(60)),
        false,
    );
    let actor = system.spawn(f.props.clone()).expect("spawn");
    for _ in 0..3 {
        actor.tell(Msg::Fail);
    }
    assert_eq!(state(&actor).await.0, 4, "three restarts allowed");
    actor.tell(Msg::Fail);
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("the fourth failure stops it");
    assert_eq!(f.incarnations.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_window_do_not_count() {
    let system = system();
    let f = fragile(
        quick_restarts().with_max_restarts(2, Duration::from_secs(1)),
        false,
    );
    let actor = system.spawn(f.props.clone()).expect("spawn");
    actor.tell(Msg::Fail);
    actor.tell(Msg::Fail);
    assert_eq!(state(&actor).await.0, 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    actor.tell(Msg::Fail);
    assert_eq!(state(&actor).await.0, 4, "the window has moved on");
    assert!(!actor.is_terminated());
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_exponentially() {
    let system = system();
    let f = fragile(
        SupervisorStrategy::restart()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(300))
            .with_max_restarts(10, Duration::from_secs(60)),
        false,
    );
    let actor = system.spawn(f.props.clone()).expect("spawn");
    state(&actor).await;
    let mut waits = Vec::new();
    for _ in 0..4 {
        let before = tokio::time::Instant::now();
        actor.tell(Msg::Fail);
        state(&actor).await;
        waits.push(before.elapsed().as_millis());
    }
    assert_eq!(waits, vec![100, 200, 300, 300]);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stop_interrupts_a_restart_backoff() {
    let system = system();
    let f = fragile(
        SupervisorStrategy::restart()
            .with_backoff(Duration::from_secs(3600), Duration::from_secs(3600)),
        false,
    );
    let actor = system.spawn(f.props.clone()).expect("spawn");
    actor.tell(Msg::Fail);
    tokio::time::sleep(Duration::from_millis(10)).await;
    actor.stop();
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stop did not wait for the backoff");
    assert_eq!(f.incarnations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_start_is_supervised_too() {
    let system = system();
    let f = fragile(quick_restarts(), true);
    let actor = system.spawn(f.props.clone()).expect("spawn");
    assert_eq!(state(&actor).await, (2, 0));
    system.shutdown().await;
}

#[tokio::test]
async fn a_decider_picks_the_directive_per_failure() {
    let system = system();
    let f = fragile(
        quick_restarts().with_decider(|failure| match failure {
            Failure::Panic(_) => Directive::Stop,
            Failure::Error(_) => Directive::Resume,
        }),
        false,
    );
    let actor = system.spawn(f.props.clone()).expect("spawn");
    actor.tell(Msg::Add(2));
    actor.tell(Msg::Fail);
    assert_eq!(state(&actor).await, (1, 2), "errors resume");
    actor.tell(Msg::Panic);
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("panics stop");
}

/// Spawns one child and forwards the failure notices it gets.
struct Guardian {
    child: Props<Fragile>,
    notices: mpsc::UnboundedSender<(String, Directive, String)>,
}

impl Actor for Guardian {
    type Msg = ();

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        ctx.spawn(self.child.clone())?;
        Ok(())
    }

    async fn handle(&mut self, _: (), _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Ok(())
    }

    async fn child_failed(
        &mut self,
        notice: ChildFailure,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let _ = self.notices.send((
            notice.child.to_string(),
            notice.directive,
            notice.failure.to_string(),
        ));
        Ok(())
    }
}

#[tokio::test]
async fn the_parent_is_told_of_each_child_failure() {
    let system = system();
    let f = fragile(
        quick_restarts().with_max_restarts(1, Duration::from_secs(60)),
        false,
    );
    let (tx, mut notices) = mpsc::unbounded_channel();
    let child_props = f.props.clone().with_name("worker");
    system
        .spawn(
            Props::new(move || Guardian {
                child: child_props.clone(),
                notices: tx.clone(),
            })
            .with_name("guardian"),
        )
        .expect("spawn");
    let mut child = None;
    courier_test_support::eventually("the worker is registered", SECOND, || {
        child = system.lookup::<Msg>("/user/guardian/worker").ok();
        child.is_some()
    })
    .await;
    let child = child.expect("child");
    child.tell(Msg::Fail);
    assert_eq!(
        recv_within(&mut notices, SECOND).await,
        (
            "/user/guardian/worker".to_string(),
            Directive::Restart,
            "error: asked to fail".to_string()
        )
    );
    child.tell(Msg::Panic);
    let (path, directive, failure) = recv_within(&mut notices, SECOND).await;
    assert_eq!(path, "/user/guardian/worker");
    assert_eq!(directive, Directive::Stop, "the restart limit was reached");
    assert_eq!(failure, "panic: asked to panic");
    child.terminated().await;
    system.shutdown().await;
}

struct GivesUp;

impl Actor for GivesUp {
    type Msg = ();

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        ctx.stop();
        Err("unrecoverable".into())
    }

    async fn handle(&mut self, _: (), _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failure_after_ctx_stop_is_not_restarted() {
    let system = system();
    let made = Arc::new(AtomicU64::new(0));
    let counter = made.clone();
    let actor = system
        .spawn(
            Props::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                GivesUp
            })
            .with_supervisor(quick_restarts()),
        )
        .expect("spawn");
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped");
    assert_eq!(made.load(Ordering::SeqCst), 1, "no restart");
}

/// A parent that fails when its child fails.
struct Nest {
    child: Props<Fragile>,
    made: mpsc::UnboundedSender<ActorRef<Msg>>,
}

impl Actor for Nest {
    type Msg = ();

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let _ = self.made.send(ctx.spawn(self.child.clone())?);
        Ok(())
    }

    async fn handle(&mut self, (): (), _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Err("asked to fail".into())
    }
}

/// A decider is the user's code, like a handler: a panic in it must not
/// tear the actor's task down half-way, leaving its children running with
/// no parent to stop them (not even at shutdown) and its messages in
/// flight behind. The actor stops, properly.
#[tokio::test]
async fn a_panicking_decider_stops_the_actor_and_its_children() {
    let system = system();
    let f = fragile(SupervisorStrategy::resume(), false);
    let (tx, mut made) = mpsc::unbounded_channel();
    let child_props = f.props.clone();
    let parent = system
        .spawn(
            Props::new(move || Nest {
                child: child_props.clone(),
                made: tx.clone(),
            })
            .with_supervisor(
                SupervisorStrategy::restart().with_decider(|_| panic!("the decider panics")),
            ),
        )
        .expect("spawn");
    let child = recv_within(&mut made, SECOND).await;
    parent.tell(());
    tokio::time::timeout(SECOND, parent.terminated())
        .await
        .expect("the parent stops");
    assert!(
        child.is_terminated(),
        "the child was stopped before its parent terminated"
    );
    tokio::time::timeout(SECOND, system.shutdown())
        .await
        .expect("shutdown");
    assert!(child.is_terminated(), "shutdown stops every actor");
}
