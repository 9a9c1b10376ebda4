//! tell, try_tell, send and ask through the public API.

mod support;

use std::time::Duration;

use courier_core::{DeadLetter, DeadLetterReason, Error, Mailbox, TryTellError};
use support::recorder::{Msg, block, recorder};
use support::{SECOND, drain_dead_letters, system};

#[tokio::test]
async fn tell_delivers_and_ask_replies() {
    let system = system();
    let actor = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    for n in 0..100 {
        actor.tell(Msg::Note(n));
    }
    let seen = actor.ask(Msg::Seen, SECOND).await.expect("reply");
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    system.shutdown().await;
}

#[tokio::test]
async fn try_tell_hands_the_message_back_when_the_mailbox_is_full() {
    let system = system();
    let actor = system.spawn(recorder(Mailbox::bounded(2))).expect("spawn");
    let gate = block(&actor).await;
    actor.try_tell(Msg::Note(0)).expect("first slot");
    actor.try_tell(Msg::Note(1)).expect("second slot");
    match actor.try_tell(Msg::Note(2)) {
        Err(TryTellError::Full(Msg::Note(2))) => {}
        other => panic!("expected Full(Note(2)), got {:?}", other.err()),
    }
    gate.add_permits(1);
    let seen = actor.ask(Msg::Seen, SECOND).await.expect("reply");
    assert_eq!(seen, vec![0, 1]);
    system.shutdown().await;
}

#[tokio::test]
async fn tell_to_a_full_mailbox_makes_a_mailbox_full_dead_letter() {
    let system = system();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let actor = system.spawn(recorder(Mailbox::bounded(1))).expect("spawn");
    let gate = block(&actor).await;
    actor.try_tell(Msg::Note(0)).expect("first slot");
    actor.tell(Msg::Note(1)); // no room: dead letter, tell does not wait
    let letter = tokio::time::timeout(SECOND, dead.recv())
        .await
        .expect("a dead letter")
        .expect("stream open");
    assert_eq!(letter.recipient, *actor.path());
    assert_eq!(letter.reason, DeadLetterReason::MailboxFull);
    assert_eq!(letter.reason.to_string(), "mailbox full");
    assert!(
        letter.message_type.ends_with("Msg"),
        "{}",
        letter.message_type
    );
    gate.add_permits(1);
    assert_eq!(actor.ask(Msg::Seen, SECOND).await.expect("reply"), vec![0]);
    system.shutdown().await;
}

// Paused time: the sleep below ends only once every task is idle, so a send
// that would complete has completed by then.
#[tokio::test(start_paused = true)]
async fn send_waits_for_room_in_a_bounded_mailbox() {
    let system = system();
    let actor = system.spawn(recorder(Mailbox::bounded(1))).expect("spawn");
    let gate = block(&actor).await;
    actor.try_tell(Msg::Note(0)).expect("first slot");
    // The mailbox is full: send must wait rather than fail or drop.
    let sender = {
        let actor = actor.clone();
        tokio::spawn(async move { actor.send(Msg::Note(1)).await.is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !sender.is_finished(),
        "send returned while the mailbox was full"
    );
    gate.add_permits(1);
    assert!(sender.await.expect("join"), "send failed");
    assert_eq!(
        actor.ask(Msg::Seen, SECOND).await.expect("reply"),
        vec![0, 1]
    );
    system.shutdown().await;
}

#[tokio::test]
async fn send_and_try_tell_hand_the_message_back_when_the_actor_is_gone() {
    let system = system();
    let actor = system.spawn(recorder(Mailbox::bounded(4))).expect("spawn");
    actor.stop();
    actor.terminated().await;
    match actor.send(Msg::Note(7)).await {
        Err(e) => assert!(matches!(e.0, Msg::Note(7))),
        Ok(()) => panic!("send to a stopped actor succeeded"),
    }
    assert!(matches!(
        actor.try_tell(Msg::Note(8)),
        Err(TryTellError::Stopped(Msg::Note(8)))
    ));
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    actor.tell(Msg::Note(9));
    let letters = drain_dead_letters(&mut dead);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::ActorStopped);
}

#[tokio::test]
async fn ask_fails_fast_when_the_target_is_already_stopped() {
    let system = system();
    let actor = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    actor.stop();
    actor.terminated().await;
    let started = std::time::Instant::now();
    let result = actor.ask(Msg::Seen, Duration::from_secs(30)).await;
    assert!(
        matches!(result, Err(Error::RecipientStopped { ref path }) if path == actor.path()),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ask waited for its timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn ask_times_out_with_a_typed_error() {
    let system = system();
    let actor = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    let result = actor.ask(Msg::Hold, Duration::from_millis(250)).await;
    match result {
        Err(Error::AskTimeout { path, timeout }) => {
            assert_eq!(&path, actor.path());
            assert_eq!(timeout, Duration::from_millis(250));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    system.shutdown().await;
}

/// The system's ask-timeout reaper runs on the runtime of the ask that
/// started it. A system outlives that runtime (as in
/// `actors_of_a_dropped_runtime_count_as_terminated`): asks made on the next
/// runtime must still time out, not wait forever for a reaper that is gone.
#[test]
fn asks_still_time_out_after_the_runtime_of_an_earlier_ask_is_dropped() {
    let system = system();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let first = runtime();
    first.block_on(async {
        let actor = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
        // Pending when the runtime goes: its reaper is running then.
        let pending = tokio::spawn(async move { actor.ask(Msg::Hold, SECOND * 30).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pending.is_finished());
    });
    drop(first);
    runtime().block_on(async {
        let actor = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
        let result =
            tokio::time::timeout(SECOND * 5, actor.ask(Msg::Hold, Duration::from_millis(100)))
                .await
                .expect("the ask ends within its timeout");
        assert!(
            matches!(result, Err(Error::AskTimeout { .. })),
            "{result:?}"
        );
        system.shutdown().await;
    });
}

#[tokio::test]
async fn ask_reports_a_dropped_request() {
    let system = system();
    let actor = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    let result = actor.ask(Msg::Drop, Duration::from_secs(30)).await;
    assert!(matches!(result, Err(Error::NoReply { .. })), "{result:?}");
    system.shutdown().await;
}

#[tokio::test]
async fn refs_compare_by_actor_and_print_their_path() {
    let system = system();
    let a = system
        .spawn(recorder(Mailbox::unbounded()).with_name("a"))
        .expect("spawn");
    let b = system
        .spawn(recorder(Mailbox::unbounded()).with_name("b"))
        .expect("spawn");
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    assert_eq!(format!("{a:?}"), "ActorRef(/user/a)");
    system.shutdown().await;
}

#[tokio::test]
async fn a_zero_capacity_mailbox_is_a_typed_error() {
    let system = system();
    let result = system.spawn(recorder(Mailbox::bounded(0)));
    assert!(
        matches!(result, Err(Error::InvalidConfig { .. })),
        "{:?}",
        result.err()
    );
}

#[test]
fn spawn_outside_a_runtime_is_a_typed_error() {
    let system = system();
    let result = system.spawn(recorder(Mailbox::unbounded()));
    assert!(
        matches!(result, Err(Error::NoRuntime)),
        "{:?}",
        result.err()
    );
}
