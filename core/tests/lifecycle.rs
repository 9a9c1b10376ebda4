//! Hooks, stop, system messages overtaking user messages, and shutdown.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use courier_core::{Actor, BoxError, Context, DeadLetter, DeadLetterReason, Error, Mailbox, Props};
use support::recorder::{Msg, block, recorder};
use support::{SECOND, drain_dead_letters, recv_within, system};
use tokio::sync::mpsc;

#[tokio::test]
async fn stop_overtakes_a_long_backlog() {
    let system = system();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let actor = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    let gate = block(&actor).await;
    for n in 0..500 {
        actor.tell(Msg::Note(n));
    }
    actor.stop();
    gate.add_permits(1);
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped");
    // Not one queued message was handled: all 500 became dead letters.
    let letters = drain_dead_letters(&mut dead);
    assert_eq!(letters.len(), 500);
    assert!(
        letters
            .iter()
            .all(|l| l.reason == DeadLetterReason::ActorStopped)
    );
}

#[tokio::test]
async fn stop_works_while_a_bounded_mailbox_is_full() {
    let system = system();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let actor = system.spawn(recorder(Mailbox::bounded(4))).expect("spawn");
    let gate = block(&actor).await;
    for n in 0..4 {
        actor.try_tell(Msg::Note(n)).expect("room");
    }
    assert!(
        actor.try_tell(Msg::Note(99)).is_err(),
        "mailbox should be full"
    );
    actor.stop();
    gate.add_permits(1);
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped");
    let letters = drain_dead_letters(&mut dead);
    assert_eq!(letters.len(), 4);
}

enum Work {
    Sleep(Duration),
    StopSelf,
}

/// Reports its lifecycle on a channel and spawns the children it is given.
struct Probe {
    name: String,
    events: mpsc::UnboundedSender<String>,
    handled: Arc<AtomicUsize>,
    children: Vec<&'static str>,
}

impl Actor for Probe {
    type Msg = Work;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let _ = self
            .events
            .send(format!("{} started at {}", self.name, ctx.path()));
        for child in self.children.clone() {
            ctx.spawn(probe(child, &self.events, &self.handled, vec![]))?;
        }
        Ok(())
    }

    async fn handle(&mut self, msg: Work, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match msg {
            Work::Sleep(d) => tokio::time::sleep(d).await,
            Work::StopSelf => ctx.stop(),
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.events.send(format!("{} stopped", self.name));
    }
}

fn probe(
    name: &'static str,
    events: &mpsc::UnboundedSender<String>,
    handled: &Arc<AtomicUsize>,
    children: Vec<&'static str>,
) -> Props<Probe> {
    let events = events.clone();
    let handled = handled.clone();
    Props::new(move || Probe {
        name: name.to_string(),
        events: events.clone(),
        handled: handled.clone(),
        children: children.clone(),
    })
    .with_name(name)
}

#[tokio::test]
async fn hooks_run_around_the_actor_life() {
    let system = system();
    let (tx, mut events) = mpsc::unbounded_channel();
    let handled = Arc::new(AtomicUsize::new(0));
    let actor = system
        .spawn(probe("solo", &tx, &handled, vec![]))
        .expect("spawn");
    assert_eq!(
        recv_within(&mut events, SECOND).await,
        "solo started at /user/solo"
    );
    actor.tell(Work::Sleep(Duration::ZERO));
    actor.stop();
    actor.terminated().await;
    assert_eq!(recv_within(&mut events, SECOND).await, "solo stopped");
    assert!(actor.is_terminated());
}

#[tokio::test]
async fn context_stop_ends_the_actor_after_the_current_message() {
    let system = system();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let (tx, _events) = mpsc::unbounded_channel();
    let handled = Arc::new(AtomicUsize::new(0));
    let actor = system
        .spawn(probe("quitter", &tx, &handled, vec![]))
        .expect("spawn");
    actor.tell(Work::StopSelf);
    for _ in 0..10 {
        actor.tell(Work::Sleep(Duration::ZERO));
    }
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped");
    let handled = handled.load(Ordering::SeqCst);
    let letters = drain_dead_letters(&mut dead).len();
    assert_eq!(handled, 1, "no message after ctx.stop()");
    // Each message that was not handled became a dead letter (some may have
    // been sent after the actor closed its mailbox: dead letters too).
    assert_eq!(letters, 10);
}

#[tokio::test]
async fn shutdown_stops_children_first_and_dead_letters_leftovers() {
    let system = system();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let (tx, mut events) = mpsc::unbounded_channel();
    let handled = Arc::new(AtomicUsize::new(0));
    let parent = system
        .spawn(probe("parent", &tx, &handled, vec!["child"]))
        .expect("spawn");
    // parent started, then child started
    recv_within(&mut events, SECOND).await;
    assert_eq!(
        recv_within(&mut events, SECOND).await,
        "child started at /user/parent/child"
    );
    let child = system
        .lookup::<Work>("/user/parent/child")
        .expect("child is registered under its parent");
    for _ in 0..50 {
        child.tell(Work::Sleep(Duration::from_millis(2)));
        parent.tell(Work::Sleep(Duration::from_millis(2)));
    }
    tokio::time::timeout(Duration::from_secs(5), system.shutdown())
        .await
        .expect("shutdown finished");
    assert_eq!(recv_within(&mut events, SECOND).await, "child stopped");
    assert_eq!(recv_within(&mut events, SECOND).await, "parent stopped");
    assert!(parent.is_terminated() && child.is_terminated());
    // Every message was either handled or became a dead letter.
    let letters = drain_dead_letters(&mut dead).len();
    assert_eq!(handled.load(Ordering::SeqCst) + letters, 100);
    assert!(letters > 0, "shutdown should overtake the backlog");
    // The system refuses new actors and the names are gone.
    assert!(matches!(
        system.spawn(probe("late", &tx, &handled, vec![])),
        Err(Error::ShuttingDown)
    ));
    assert!(matches!(
        system.lookup::<Work>("/user/parent"),
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn stopping_a_parent_stops_its_children_first() {
    let system = system();
    let (tx, mut events) = mpsc::unbounded_channel();
    let handled = Arc::new(AtomicUsize::new(0));
    let parent = system
        .spawn(probe("p", &tx, &handled, vec!["c1", "c2"]))
        .expect("spawn");
    for _ in 0..3 {
        recv_within(&mut events, SECOND).await;
    }
    parent.stop();
    parent.terminated().await;
    let mut order = Vec::new();
    while let Ok(e) = events.try_recv() {
        order.push(e);
    }
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(order[2], "p stopped", "{order:?}");
    system.shutdown().await;
}

#[test]
fn actors_of_a_dropped_runtime_count_as_terminated() {
    let system = system();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let actor = first
        .block_on(async { system.spawn(recorder(Mailbox::unbounded()).with_name("orphan")) })
        .expect("spawn");
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    second.block_on(async {
        tokio::time::timeout(SECOND, actor.terminated())
            .await
            .expect("terminated resolves once the task is gone");
        assert!(matches!(
            system.lookup::<Msg>("/user/orphan"),
            Err(Error::NotFound { .. })
        ));
        // The name can be used again on the new runtime.
        system
            .spawn(recorder(Mailbox::unbounded()).with_name("orphan"))
            .expect("name free");
    });
}

/// A parent that blocks on a gate while handling its first report (and
/// then fails, if `fail` is still set).
struct Boss {
    entered: mpsc::UnboundedSender<()>,
    gate: Arc<tokio::sync::Semaphore>,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

/// A child that sends its parent three reports with back-pressure.
struct Pusher {
    boss: courier_core::ActorRef<u64>,
}

impl Actor for Pusher {
    type Msg = ();

    async fn handle(&mut self, (): (), _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        for n in 0..3 {
            if self.boss.send(n).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

impl Actor for Boss {
    type Msg = u64;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let boss = ctx.myself();
        ctx.spawn(Props::new(move || Pusher { boss: boss.clone() }))?
            .tell(());
        Ok(())
    }

    async fn handle(&mut self, n: u64, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if n == 0 {
            let _ = self.entered.send(());
            let _permit = self.gate.acquire().await?;
            if self.fail.swap(false, Ordering::SeqCst) {
                return Err("asked to fail".into());
            }
        }
        Ok(())
    }
}

/// A child waiting for room in its parent's full bounded mailbox is stopped
/// by that parent's stop: the parent stops its children before its mailbox
/// is drained, so the child's `send` must not wait for a place that its
/// parent will never free.
#[tokio::test]
async fn a_child_sending_to_its_stopping_parent_does_not_hold_the_stop_up() {
    let system = system();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let (entered, mut entered_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let boss_gate = gate.clone();
    let boss = system
        .spawn(
            Props::new(move || Boss {
                entered: entered.clone(),
                gate: boss_gate.clone(),
                fail: Arc::default(),
            })
            .with_mailbox(Mailbox::bounded(1)),
        )
        .expect("spawn");
    // The parent is busy with report 0. Its mailbox is full (with report 1,
    // or with this message if the child has not sent it yet), so the
    // child's next send waits for room.
    recv_within(&mut entered_rx, SECOND).await;
    let _ = boss.try_tell(99);
    boss.stop();
    gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(5), boss.terminated())
        .await
        .expect("the parent stops although its child was waiting to send to it");
    // What filled the mailbox was accepted and not handled: a dead letter.
    let letters = drain_dead_letters(&mut dead);
    assert!(
        letters
            .iter()
            .any(|l| l.message_type == std::any::type_name::<u64>()),
        "{letters:?}"
    );
    system.shutdown().await;
}

/// The same for a restart: the failed parent stops its children before the
/// new instance starts, and a child waiting in `send` for room in the
/// parent's full mailbox must not hold the restart (and so any later stop)
/// up forever. The message it was sending is kept for the new instance.
#[tokio::test]
async fn a_child_sending_to_its_restarting_parent_does_not_hold_the_restart_up() {
    let system = system();
    let (entered, mut entered_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (boss_gate, boss_fail) = (gate.clone(), fail.clone());
    let boss = system
        .spawn(
            Props::new(move || Boss {
                entered: entered.clone(),
                gate: boss_gate.clone(),
                fail: boss_fail.clone(),
            })
            .with_mailbox(Mailbox::bounded(1))
            .with_supervisor(
                courier_core::SupervisorStrategy::restart()
                    .with_backoff(Duration::ZERO, Duration::ZERO),
            ),
        )
        .expect("spawn");
    recv_within(&mut entered_rx, SECOND).await;
    let _ = boss.try_tell(99);
    // Report 0 fails: the parent restarts.
    gate.add_permits(1);
    // The new instance's child sends report 0 again, and the new instance
    // handles it: the restart finished.
    tokio::time::timeout(Duration::from_secs(5), entered_rx.recv())
        .await
        .expect("the restarted parent handles messages again")
        .expect("channel open");
    assert!(!fail.load(Ordering::SeqCst));
    boss.stop();
    tokio::time::timeout(Duration::from_secs(5), boss.terminated())
        .await
        .expect("stopped");
    system.shutdown().await;
}
