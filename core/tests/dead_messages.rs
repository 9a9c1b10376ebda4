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
