//! The WARN about stuck deliveries, as an operator sees it. Alone in its
//! test binary: it installs a global `tracing` subscriber (a scoped one
//! races with other tests over tracing's per-callsite interest cache).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::{Deliverer, OutboxSettings, Redelivery};
use courier::persistence::{Journal, MemoryStore};
use courier::prelude::*;

const SECOND: Duration = Duration::from_secs(1);

struct Owner {
    journal: Arc<dyn Journal>,
    out: Option<Deliverer<u64>>,
}

impl Actor for Owner {
    type Msg = ReplyTo<Deliverer<u64>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed { interval: SECOND },
            ..OutboxSettings::default()
        };
        let journal = Arc::clone(&self.journal);
        self.out = Some(Deliverer::start(ctx, "lonely", journal, settings).await?);
        Ok(())
    }

    async fn handle(
        &mut self,
        reply: ReplyTo<Deliverer<u64>>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        reply.reply(self.out.clone().ok_or("not started")?);
        Ok(())
    }
}

/// Collects what the `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_destination_is_retried_with_a_repeated_warning_naming_it() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory().expect("memory store"));
    let j = Arc::clone(&journal);
    let owner = system
        .spawn(Props::new(move || Owner {
            journal: Arc::clone(&j),
            out: None,
        }))
        .expect("spawn");
    let out = owner.ask(|r| r, SECOND * 5).await.expect("deliverer");
    out.deliver("/user/nobody", |_| 1).await.expect("deliver");
    tokio::time::sleep(SECOND * 95).await;
    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let warnings: Vec<_> = log
        .lines()
        .filter(|l| l.contains("deliveries still unconfirmed"))
        .collect();
    // Once at the first failed attempt, then at most every 30 s.
    assert!(
        (3..=4).contains(&warnings.len()),
        "{} warnings:\n{log}",
        warnings.len()
    );
    for warning in &warnings {
        assert!(warning.contains("#1 to /user/nobody"), "{warning}");
        assert!(warning.contains("no actor at /user/nobody"), "{warning}");
    }
    assert_eq!(out.unconfirmed(), 1, "still retried");
    assert!(out.pending(None, 10)[0].attempts > 50);
}
