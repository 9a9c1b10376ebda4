//! Death watch: `Terminated` exactly once.
//!
//! On paused time: a timeout fires only once every task is idle, so "quiet
//! for 100 ms" means "nothing more will arrive", not "the machine was fast".

mod support;

use std::time::Duration;

use courier_core::{Actor, ActorRef, BoxError, Context, Mailbox, Props, ReplyTo, Terminated};
use support::recorder::{Msg, recorder};
use support::{SECOND, system};
use tokio::sync::mpsc;

enum WatchMsg {
    Watch(ActorRef<Msg>),
    Unwatch(ActorRef<Msg>),
    /// Answered once every message sent before it was handled.
    Handled(ReplyTo<()>),
}

struct Watcher {
    seen: mpsc::UnboundedSender<String>,
}

impl Actor for Watcher {
    type Msg = WatchMsg;

    async fn handle(&mut self, msg: WatchMsg, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            WatchMsg::Watch(target) => ctx.watch(&target),
            WatchMsg::Unwatch(target) => ctx.unwatch(&target),
            WatchMsg::Handled(reply) => reply.reply(()),
        }
        Ok(())
    }

    async fn terminated(
        &mut self,
        t: Terminated,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let _ = self.seen.send(t.path.to_string());
        Ok(())
    }
}

fn watcher() -> (Props<Watcher>, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Props::new(move || Watcher { seen: tx.clone() }), rx)
}

/// Waits until the watcher handled every request sent to it so far (a
/// sender's messages arrive in order).
async fn handled(w: &ActorRef<WatchMsg>) {
    w.ask(WatchMsg::Handled, SECOND)
        .await
        .expect("the watcher answers");
}

/// Collects what arrives until everything is quiet.
async fn settle(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(v)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
        out.push(v);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn terminated_arrives_exactly_once_even_if_watched_twice() {
    let system = system();
    let (props, mut seen) = watcher();
    let w = system.spawn(props).expect("spawn");
    let target = system
        .spawn(recorder(Mailbox::unbounded()).with_name("target"))
        .expect("spawn");
    w.tell(WatchMsg::Watch(target.clone()));
    w.tell(WatchMsg::Watch(target.clone()));
    // Both watch requests are registered before the stop.
    handled(&w).await;
    target.stop();
    assert_eq!(settle(&mut seen).await, vec!["/user/target".to_string()]);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watching_an_actor_that_is_already_dead_yields_terminated() {
    let system = system();
    let (props, mut seen) = watcher();
    let w = system.spawn(props).expect("spawn");
    let target = system
        .spawn(recorder(Mailbox::unbounded()).with_name("gone"))
        .expect("spawn");
    target.stop();
    target.terminated().await;
    w.tell(WatchMsg::Watch(target.clone()));
    assert_eq!(settle(&mut seen).await, vec!["/user/gone".to_string()]);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unwatch_means_no_terminated() {
    let system = system();
    let (props, mut seen) = watcher();
    let w = system.spawn(props).expect("spawn");
    let target = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    w.tell(WatchMsg::Watch(target.clone()));
    w.tell(WatchMsg::Unwatch(target.clone()));
    handled(&w).await;
    target.stop();
    target.terminated().await;
    assert!(settle(&mut seen).await.is_empty());
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn every_watcher_hears_once_when_the_target_fails_and_stops() {
    use courier_core::SupervisorStrategy;
    let system = system();
    let mut receivers = Vec::new();
    let target = system
        .spawn(
            recorder(Mailbox::unbounded())
                .with_name("fragile")
                .with_supervisor(SupervisorStrategy::stop()),
        )
        .expect("spawn");
    for _ in 0..5 {
        let (props, seen) = watcher();
        let w = system.spawn(props).expect("spawn");
        w.tell(WatchMsg::Watch(target.clone()));
        handled(&w).await;
        receivers.push(seen);
    }
    // A Wait on a closed gate makes the handler return an error, which the
    // Stop strategy turns into a stop.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    gate.close();
    let (entered, _rx) = tokio::sync::oneshot::channel();
    target.tell(Msg::Wait { entered, gate });
    tokio::time::timeout(SECOND, target.terminated())
        .await
        .expect("stopped after failing");
    for mut seen in receivers {
        assert_eq!(settle(&mut seen).await, vec!["/user/fragile".to_string()]);
    }
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_watch_racing_the_stop_still_yields_exactly_one_terminated() {
    let system = system();
    for round in 0..50 {
        let (props, mut seen) = watcher();
        let w = system.spawn(props).expect("spawn");
        let target = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
        if round % 2 == 0 {
            target.stop();
            w.tell(WatchMsg::Watch(target.clone()));
        } else {
            w.tell(WatchMsg::Watch(target.clone()));
            target.stop();
        }
        let got = tokio::time::timeout(SECOND, seen.recv())
            .await
            .expect("terminated within a second");
        assert_eq!(got.as_deref(), Some(target.path().as_str()));
        w.stop();
        w.terminated().await;
        assert!(
            seen.try_recv().is_err(),
            "round {round}: more than one Terminated"
        );
    }
    system.shutdown().await;
}
