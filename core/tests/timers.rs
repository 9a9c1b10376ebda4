//! Timers to self: once, repeated, cancelled, and cancelled with the actor.

mod support;

use std::sync::Arc;
use std::time::Duration;

use courier_core::{Actor, ActorRef, BoxError, Context, DeadLetter, Props, ReplyTo, TimerKey};
use support::{SECOND, drain_dead_letters, system};
use tokio::sync::{Semaphore, oneshot};

enum Msg {
    Tick(u32),
    Once(Duration),
    Every(Duration),
    Cancel(ReplyTo<bool>),
    /// Blocks until the gate opens, then cancels the current timer.
    BlockThenCancel {
        entered: oneshot::Sender<()>,
        gate: Arc<Semaphore>,
    },
    Ticks(ReplyTo<Vec<u32>>),
    /// Keeps the actor busy this long.
    Busy(Duration),
}

#[derive(Default)]
struct Timed {
    key: Option<TimerKey>,
    ticks: Vec<u32>,
}

impl Actor for Timed {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            Msg::Tick(n) => self.ticks.push(n),
            Msg::Once(delay) => self.key = Some(ctx.schedule_once(delay, Msg::Tick(0))),
            Msg::Every(interval) => {
                let mut n = 0;
                self.key = Some(ctx.schedule_repeated(interval, move || {
                    n += 1;
                    Msg::Tick(n)
                }));
            }
            Msg::Cancel(reply) => {
                let cancelled = self.key.take().is_some_and(|k| ctx.cancel_timer(k));
                reply.reply(cancelled);
            }
            Msg::BlockThenCancel { entered, gate } => {
                let _ = entered.send(());
                let _permit = gate.acquire().await?;
                if let Some(k) = self.key.take() {
                    ctx.cancel_timer(k);
                }
            }
            Msg::Ticks(reply) => reply.reply(self.ticks.clone()),
            Msg::Busy(how_long) => tokio::time::sleep(how_long).await,
        }
        Ok(())
    }
}

async fn ticks(actor: &ActorRef<Msg>) -> Vec<u32> {
    actor.ask(Msg::Ticks, SECOND).await.expect("ticks")
}

#[tokio::test(start_paused = true)]
async fn schedule_once_delivers_after_the_delay() {
    let system = system();
    let actor = system.spawn(Props::new(Timed::default)).expect("spawn");
    actor.tell(Msg::Once(Duration::from_millis(500)));
    tokio::time::sleep(Duration::from_millis(499)).await;
    assert!(ticks(&actor).await.is_empty(), "too early");
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(ticks(&actor).await, vec![0]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ticks(&actor).await, vec![0], "only once");
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn schedule_repeated_ticks_until_cancelled() {
    let system = system();
    let actor = system.spawn(Props::new(Timed::default)).expect("spawn");
    actor.tell(Msg::Every(Duration::from_millis(100)));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(ticks(&actor).await, vec![1, 2, 3]);
    assert!(actor.ask(Msg::Cancel, SECOND).await.expect("cancel"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ticks(&actor).await, vec![1, 2, 3], "no tick after cancel");
    assert!(
        !actor.ask(Msg::Cancel, SECOND).await.expect("cancel"),
        "already cancelled"
    );
    system.shutdown().await;
}

/// A busy actor finds one tick waiting, not one per interval it was busy
/// (docs/semantics.md: "delays its next tick rather than piling ticks
/// up"), also with an unbounded mailbox, where enqueueing never waits.
#[tokio::test(start_paused = true)]
async fn a_busy_actor_finds_one_tick_waiting_not_a_pile() {
    let system = system();
    let actor = system.spawn(Props::new(Timed::default)).expect("spawn");
    actor.tell(Msg::Every(Duration::from_millis(10)));
    tokio::time::sleep(Duration::from_millis(35)).await;
    assert_eq!(ticks(&actor).await, vec![1, 2, 3]);
    actor.tell(Msg::Busy(SECOND));
    tokio::time::sleep(SECOND + Duration::from_millis(5)).await;
    let after = ticks(&actor).await;
    assert!(
        after.len() <= 5,
        "a busy second piled up {} ticks: {after:?}",
        after.len() - 3
    );
    // And they go on at their interval.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let later = ticks(&actor).await.len();
    assert!(
        (after.len() + 8..=after.len() + 11).contains(&later),
        "{later} ticks after 100 ms more (had {})",
        after.len()
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_once_timer_never_fires() {
    let system = system();
    let actor = system.spawn(Props::new(Timed::default)).expect("spawn");
    actor.tell(Msg::Once(Duration::from_millis(100)));
    assert!(actor.ask(Msg::Cancel, SECOND).await.expect("cancel"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(ticks(&actor).await.is_empty());
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_timer_cancelled_after_firing_is_not_handled() {
    let system = system();
    let actor = system.spawn(Props::new(Timed::default)).expect("spawn");
    actor.tell(Msg::Once(Duration::from_millis(100)));
    let gate = Arc::new(Semaphore::new(0));
    let (entered, rx) = oneshot::channel();
    actor.tell(Msg::BlockThenCancel {
        entered,
        gate: gate.clone(),
    });
    rx.await.expect("blocked");
    // The timer fires while the actor is busy: its message waits in the
    // mailbox. The handler then cancels the timer before taking it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.add_permits(1);
    assert!(
        ticks(&actor).await.is_empty(),
        "a cancelled timer's message was handled"
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn timers_end_with_their_actor() {
    let system = system();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let actor = system.spawn(Props::new(Timed::default)).expect("spawn");
    actor.tell(Msg::Every(Duration::from_millis(10)));
    tokio::time::sleep(Duration::from_millis(55)).await;
    assert_eq!(ticks(&actor).await.len(), 5);
    actor.stop();
    actor.terminated().await;
    drain_dead_letters(&mut dead);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A timer still running would try to deliver to the stopped actor and
    // make a dead letter every 10 ms.
    assert!(drain_dead_letters(&mut dead).is_empty());
}

#[tokio::test(start_paused = true)]
async fn any_duration_is_a_valid_timer_and_a_huge_one_waits_max_timer_delay() {
    let system = system();
    let once = system.spawn(Props::new(Timed::default)).expect("spawn");
    let every = system.spawn(Props::new(Timed::default)).expect("spawn");
    // Duration::MAX overflows every `Instant + Duration`: it is clamped, not
    // a panic in the timer task (which would stop the timer silently).
    once.tell(Msg::Once(Duration::MAX));
    every.tell(Msg::Every(Duration::MAX));
    tokio::time::sleep(courier_core::MAX_TIMER_DELAY - SECOND).await;
    assert!(ticks(&once).await.is_empty(), "too early");
    assert!(ticks(&every).await.is_empty(), "too early");
    tokio::time::sleep(2 * SECOND).await;
    assert_eq!(ticks(&once).await, vec![0]);
    assert_eq!(ticks(&every).await, vec![1], "the repeated timer is alive");
    system.shutdown().await;
}
