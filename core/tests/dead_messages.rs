//! Dead messages: dead letters that carry the undelivered message and
//! its sender's path, for subscribers to `DeadMessage`.

mod support;

use std::sync::{Arc, Mutex};

use courier_core::{ActorSystem, Mailbox};
use support::recorder::{Msg, recorder};

#[tokio::test]
async fn a_dead_message_carries_the_message_and_the_sender() {
    let system = ActorSystem::new("test");
    let mut dead = system
        .event_stream()
        .subscribe::<courier_core::DeadMessage>();
    let actor = system
        .spawn(recorder(Mailbox::unbounded()).with_name("gone"))
        .expect("spawn");
    actor.stop();
    actor.terminated().await;
    let me = courier_core::ActorPath::parse("/user/me").expect("path");
    actor.tell_from(Msg::Note(7), &me);
    actor.tell(Msg::Note(8));
    let first = dead.try_recv().expect("a dead message");
    assert_eq!(first.sender.as_ref(), Some(&me));
    assert_eq!(first.letter.recipient.as_str(), "/user/gone");
    assert!(first.is::<Msg>());
    assert!(first.take::<String>().is_none(), "another type stays");
    assert!(matches!(first.take::<Msg>(), Some(Msg::Note(7))));
    assert!(first.take::<Msg>().is_none(), "taken once");
    let second = dead.try_recv().expect("a dead message");
    assert_eq!(second.sender, None);
    assert!(matches!(second.take::<Msg>(), Some(Msg::Note(8))));
}

#[tokio::test]
async fn messages_left_in_a_stopped_mailbox_come_back_as_dead_messages() {
    let system = ActorSystem::new("test");
    let mut dead = system
        .event_stream()
        .subscribe::<courier_core::DeadMessage>();
    let blocked = Arc::new(tokio::sync::Notify::new());
    let handled = Arc::new(Mutex::new(Vec::new()));
    struct Slow {
        gate: Arc<tokio::sync::Notify>,
        handled: Arc<Mutex<Vec<u64>>>,
    }
    impl courier_core::Actor for Slow {
        type Msg = u64;
        async fn handle(
            &mut self,
            n: u64,
            _ctx: &mut courier_core::Context<Self>,
        ) -> Result<(), courier_core::BoxError> {
            self.handled.lock().expect("lock").push(n);
            self.gate.notified().await;
            Ok(())
        }
    }
    let (gate, seen) = (Arc::clone(&blocked), Arc::clone(&handled));
    let slow = system
        .spawn(courier_core::Props::new(move || Slow {
            gate: Arc::clone(&gate),
            handled: Arc::clone(&seen),
        }))
        .expect("spawn");
    for n in 1..=3 {
        slow.tell(n);
    }
    slow.stop();
    blocked.notify_one();
    slow.terminated().await;
    let mut all = handled.lock().expect("lock").clone();
    while let Ok(d) = dead.try_recv() {
        all.extend(d.take::<u64>());
    }
    // Each message was either handled or handed back as a dead message
    // (the stop overtakes the queue).
    assert_eq!(all, vec![1, 2, 3]);
}

/// Senders on other threads keep telling an actor while it stops: every
/// message whose `try_tell` answered `Ok` is either handled or comes back
/// as a dead message, exactly once. A tell in flight when the mailbox
/// closes (accepted by the channel but not yet in its queue) was once left
/// behind by the final drain: answered `Ok`, never handled, no dead letter.
/// That window is a few instructions wide and this test seldom hits it;
/// `system_channel`'s `a_drain_after_close_takes_every_accepted_send`
/// does, on the same tokio channel. This one guards the whole path.
/// Repeated, unbounded and bounded, with the stop at varying points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tell_racing_the_stop_is_handled_or_dead_never_lost() {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Keep(Arc<Mutex<Vec<u64>>>);
    impl courier_core::Actor for Keep {
        type Msg = u64;
        async fn handle(
            &mut self,
            n: u64,
            _ctx: &mut courier_core::Context<Self>,
        ) -> Result<(), courier_core::BoxError> {
            self.0.lock().expect("lock").push(n);
            Ok(())
        }
    }

    const SENDERS: u64 = 3;
    for round in 0..60u64 {
        // Room for every dead message: the stream must not lag.
        let config = courier_core::SystemConfig {
            event_stream_capacity: 1 << 20,
            ..courier_core::SystemConfig::default()
        };
        let system = ActorSystem::with_config("test", config);
        let mut dead = system
            .event_stream()
            .subscribe::<courier_core::DeadMessage>();
        let handled = Arc::new(Mutex::new(Vec::new()));
        let mailbox = if round % 2 == 0 {
            Mailbox::unbounded()
        } else {
            Mailbox::bounded(16)
        };
        let seen = Arc::clone(&handled);
        let actor = system
            .spawn(courier_core::Props::new(move || Keep(Arc::clone(&seen))).with_mailbox(mailbox))
            .expect("spawn");
        let started = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let (actor, started) = (actor.clone(), Arc::clone(&started));
                std::thread::spawn(move || {
                    let mut accepted = Vec::new();
                    // Until the actor is gone (bounded, in case it never
                    // stops).
                    for i in 0..20_000u64 {
                        let n = s * 1_000_000 + i;
                        match actor.try_tell(n) {
                            Ok(()) => accepted.push(n),
                            Err(courier_core::TryTellError::Full(_)) => {}
                            Err(_) => break,
                        }
                        started.store(true, Ordering::Release);
                    }
                    accepted
                })
            })
            .collect();
        while !started.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
        for _ in 0..round % 7 {
            tokio::task::yield_now().await;
        }
        actor.stop();
        actor.terminated().await;
        let mut accepted = BTreeSet::new();
        for sender in senders {
            accepted.extend(sender.join().expect("sender panicked"));
        }
        let mut got: Vec<u64> = handled.lock().expect("lock").clone();
        loop {
            match dead.try_recv() {
                Ok(d) => got.extend(d.take::<u64>()),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
                Err(e) => panic!("round {round}: the dead-letter stream {e}"),
            }
        }
        let once: BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(once.len(), got.len(), "round {round}: a message came twice");
        let lost: Vec<_> = accepted.difference(&once).collect();
        assert!(
            lost.is_empty(),
            "round {round}: accepted, never handled, no dead letter: {lost:?}"
        );
        system.shutdown().await;
    }
}
