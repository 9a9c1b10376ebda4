//! Dead letters reach the event stream, and their log is rate limited.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{ActorSystem, DeadLetter, DeadLetterReason, Mailbox, SystemConfig};
use support::drain_dead_letters;
use support::recorder::{Msg, recorder};

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

#[tokio::test(start_paused = true)]
async fn every_dead_letter_is_published_but_the_log_is_rate_limited() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let system = ActorSystem::with_config(
        "test",
        SystemConfig {
            dead_letter_log_per_second: 5,
            ..SystemConfig::default()
        },
    );
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let actor = system
        .spawn(recorder(Mailbox::unbounded()).with_name("gone"))
        .expect("spawn");
    actor.stop();
    actor.terminated().await;
    for n in 0..1000 {
        actor.tell(Msg::Note(n));
    }
    let letters = drain_dead_letters(&mut dead);
    assert_eq!(letters.len(), 1000, "the event stream is not rate limited");
    assert!(letters.iter().all(
        |l| l.recipient.as_str() == "/user/gone" && l.reason == DeadLetterReason::ActorStopped
    ));

    let logged = lines.text();
    assert_eq!(
        logged.matches("dead letter recipient=").count(),
        5,
        "{logged}"
    );
    assert!(logged.contains("recipient=/user/gone"), "{logged}");
    assert!(logged.contains("reason=actor stopped"), "{logged}");

    // The next window starts with a summary of what was suppressed.
    tokio::time::advance(Duration::from_millis(1100)).await;
    actor.tell(Msg::Note(0));
    let logged = lines.text();
    assert!(logged.contains("suppressed=995"), "{logged}");
    assert_eq!(
        logged.matches("dead letter recipient=").count(),
        6,
        "{logged}"
    );
}

#[tokio::test]
async fn suppressed_message_types_are_published_but_not_logged() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let system = ActorSystem::new("test");
    system.suppress_dead_letter_logs::<Msg>();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let actor = system
        .spawn(recorder(Mailbox::unbounded()).with_name("quiet"))
        .expect("spawn");
    actor.stop();
    actor.terminated().await;
    actor.tell(Msg::Note(1));
    assert_eq!(drain_dead_letters(&mut dead).len(), 1, "still published");
    let logged = lines.text();
    assert!(!logged.contains("recipient=/user/quiet"), "{logged}");

    // Another type's dead letters are still logged.
    let unsuppressed: courier_core::ActorRef<u64> = system
        .spawn(courier_core::Props::new(|| Sink).with_name("loud"))
        .expect("spawn");
    unsuppressed.stop();
    unsuppressed.terminated().await;
    unsuppressed.tell(1);
    assert!(
        lines.text().contains("recipient=/user/loud"),
        "{}",
        lines.text()
    );
}

struct Sink;

impl courier_core::Actor for Sink {
    type Msg = u64;

    async fn handle(
        &mut self,
        _: u64,
        _ctx: &mut courier_core::Context<Self>,
    ) -> Result<(), courier_core::BoxError> {
        Ok(())
    }
}
