//! Redelivery, warnings, parking and recovery: Akka's AtLeastOnceDelivery
//! scenarios, and the chaos journal.

use super::*;

#[tokio::test(start_paused = true)]
async fn three_destinations_through_links_dropping_every_2nd_5th_3rd_all_arrive() {
    let system = ActorSystem::new("test");
    let store = memory();
    let journal: Arc<dyn Journal> = store;
    let mut seen = Vec::new();
    for (name, every) in [("a", 2), ("b", 5), ("c", 3)] {
        let s = receiver(&system, &journal, name, true);
        let target = system
            .lookup::<Delivery<u64>>(&format!("/user/{name}"))
            .expect("receiver");
        FaultyLink::spawn_for_deliveries(
            &system,
            &format!("link-{name}"),
            target,
            Faults::seeded(1).drop_every(every),
            Faults::seeded(2),
        )
        .expect("link");
        seen.push(s);
    }
    let client = client(&system, &journal, settings(), SupervisorStrategy::restart());
    for n in 1..=100 {
        for name in ["a", "b", "c"] {
            client
                .deliver(&format!("/user/link-{name}"), n)
                .await
                .expect("deliver");
        }
    }
    client.drained().await;
    for (s, name) in seen.iter().zip(["a", "b", "c"]) {
        let report = History::from_ledgers(1..=100, s.applied()).check();
        assert!(report.is_clean(), "receiver {name}: {report}");
        let redelivered = s.deliveries().iter().filter(|(_, a, _)| *a > 1).count();
        assert!(redelivered > 0, "some were dropped and redelivered");
    }
}

#[tokio::test(start_paused = true)]
async fn burst_limit_lets_exactly_that_many_through_per_round() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    // Never acks: every round redelivers.
    let seen = receiver(&system, &journal, "sink", false);
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            burst_limit: 2,
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    for n in 1..=6 {
        client.deliver("/user/sink", n).await.expect("deliver");
    }
    tokio::time::sleep(SECOND * 4 + SECOND / 2).await;
    let mut rounds: BTreeMap<Instant, Vec<u64>> = BTreeMap::new();
    let deliveries = seen.deliveries();
    assert_eq!(deliveries.iter().filter(|(_, a, _)| *a == 1).count(), 6);
    for (id, attempt, at) in deliveries {
        if attempt > 1 {
            rounds.entry(at).or_default().push(id.0);
        }
    }
    let rounds: Vec<Vec<u64>> = rounds.into_values().collect();
    assert!(rounds.len() >= 4, "four rounds in 4.5 s: {rounds:?}");
    assert_eq!(
        rounds[..4],
        [vec![1, 2], vec![3, 4], vec![5, 6], vec![1, 2]]
    );
}

#[tokio::test(start_paused = true)]
async fn one_warning_covers_several_destinations_with_ids_global_to_the_sender() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    // Nothing exists at these paths: every attempt is lost.
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            warn_after_attempts: 2,
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    for (n, to) in [(10, "/user/x"), (20, "/user/y"), (30, "/user/z")] {
        client.deliver(to, n).await.expect("deliver");
    }
    tokio::time::sleep(SECOND * 6).await;
    let warnings = client.warnings.lock().expect("lock").clone();
    assert_eq!(warnings.len(), 1, "one warning, not one per delivery");
    let listed: Vec<(u64, &str)> = warnings[0]
        .deliveries
        .iter()
        .map(|(id, to, _)| (id.0, to.as_str()))
        .collect();
    assert_eq!(listed, [(1, "/user/x"), (2, "/user/y"), (3, "/user/z")]);
    assert!(
        warnings[0]
            .deliveries
            .iter()
            .all(|(_, _, attempts)| *attempts >= 2)
    );
}

#[tokio::test(start_paused = true)]
async fn parked_deliveries_are_reported_listed_requeued_and_purged() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();
    let mut dead_messages = system.event_stream().subscribe::<courier::DeadMessage>();
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            max_attempts: Some(3),
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    client.deliver("/user/later", 7).await.expect("deliver");
    client.deliver("/user/later", 8).await.expect("deliver");
    tokio::time::sleep(SECOND * 5).await;

    let out = client.outbox().await;
    assert_eq!(out.unconfirmed(), 0, "parked ones leave the outbox");
    let parked = out.parked().await.expect("parked");
    let listed: Vec<(u64, u64)> = parked
        .iter()
        .map(|p| (p.id.0, p.message.unwrap_or_default()))
        .collect();
    assert_eq!(listed, [(1, 7), (2, 8)]);
    assert!(
        parked[0].reason.contains("3 attempts"),
        "{}",
        parked[0].reason
    );
    let mut reported = 0;
    while let Ok(letter) = dead_letters.try_recv() {
        if let DeadLetterReason::Other(reason) = &letter.reason {
            if reason.contains("parked") {
                assert_eq!(letter.recipient.to_string(), "/user/later");
                reported += 1;
            }
        }
    }
    assert_eq!(reported, 2, "each parked delivery is a dead letter");
    // As Akka's DeadLetter(message, sender, recipient): the message itself
    // and the sending actor come with it.
    let mut messages = Vec::new();
    while let Ok(dead) = dead_messages.try_recv() {
        let sender = dead.sender.clone().expect("the sending actor");
        assert!(sender.to_string().starts_with("/user/"), "{sender}");
        messages.push(dead.take::<u64>().expect("the parked message, as its type"));
    }
    assert_eq!(messages, [7, 8]);

    // The receiver appears; one is re-queued (under a new id), one purged.
    let seen = receiver(&system, &journal, "later", true);
    let requeued = out.requeue(DeliveryId(1)).await.expect("requeue");
    assert_eq!(requeued, DeliveryId(3));
    out.purge(DeliveryId(2)).await.expect("purge");
    client.drained().await;
    assert_eq!(seen.applied(), [7]);
    assert!(out.parked().await.expect("parked").is_empty());
    assert!(matches!(
        out.requeue(DeliveryId(2)).await,
        Err(courier::delivery::Error::NotParked { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn expired_deliveries_are_parked() {
    let system = ActorSystem::new("test");
    let journal: Arc<dyn Journal> = memory();
    let client = client(
        &system,
        &journal,
        OutboxSettings {
            expire_after: Some(SECOND * 3),
            ..settings()
        },
        SupervisorStrategy::restart(),
    );
    client.deliver("/user/nobody", 1).await.expect("deliver");
    tokio::time::sleep(SECOND * 2).await;
    let out = client.outbox().await;
    assert_eq!(out.unconfirmed(), 1, "not yet expired");
    tokio::time::sleep(SECOND * 2).await;
    assert_eq!(out.unconfirmed(), 0);
    let parked = out.parked().await.expect("parked");
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("after 3s"),
        "{}",
        parked[0].reason
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_recovery_sends_nothing() {
    let system = ActorSystem::new("test");
    let store = memory();
    let chaos = Arc::new(ChaosJournal::new(store, 0.0, 0.0, 3));
    let journal: Arc<dyn Journal> = chaos.clone();
    let first = client(&system, &journal, settings(), SupervisorStrategy::restart());
    for n in 1..=3 {
        first.deliver("/user/shop", n).await.expect("deliver");
    }
    first.actor.stop();
    first.actor.terminated().await;

    // Every read fails now: the outbox cannot be loaded.
    chaos.set_failures(0.0, 1.0);
    let seen = receiver(&system, &memory_journal(), "shop", true);
    let second = client(
        &system,
        &journal,
        settings(),
        SupervisorStrategy::restart().with_max_restarts(3, SECOND * 60),
    );
    tokio::time::sleep(SECOND * 30).await;
    assert!(seen.deliveries().is_empty(), "nothing may be sent");
    assert!(
        second.actor.is_terminated(),
        "it gave up after its restarts"
    );

    // Healed, the next start sends all three.
    chaos.set_failures(0.0, 0.0);
    let third = client(&system, &journal, settings(), SupervisorStrategy::restart());
    third.drained().await;
    assert_eq!(seen.applied(), [1, 2, 3]);
}

fn memory_journal() -> Arc<dyn Journal> {
    memory()
}

#[tokio::test(start_paused = true)]
async fn chaos_journals_and_dropped_acks_still_apply_exactly_1_to_10() {
    for seed in [11, 12, 13] {
        let system = ActorSystem::new("test");
        let (sender_store, receiver_store) = (memory(), memory());
        let sender_chaos = Arc::new(ChaosJournal::new(sender_store, 0.2, 0.2, seed));
        let receiver_chaos = Arc::new(ChaosJournal::new(
            receiver_store.clone(),
            0.3,
            0.3,
            seed + 100,
        ));
        let sender_journal: Arc<dyn Journal> = sender_chaos.clone();
        let receiver_journal: Arc<dyn Journal> = receiver_chaos.clone();
        let never_give_up = SupervisorStrategy::restart()
            .with_max_restarts(u32::MAX, SECOND)
            .with_backoff(Duration::from_millis(10), Duration::from_millis(100));
        let target = system
            .spawn(
                Ledger::<u64>::props(&receiver_journal)
                    .with_name("ledger")
                    .with_supervisor(never_give_up.clone()),
            )
            .expect("receiver");
        FaultyLink::spawn_for_deliveries(
            &system,
            "link",
            target,
            Faults::seeded(seed).drop(0.2),
            Faults::seeded(seed + 1).drop(0.3),
        )
        .expect("link");
        let client = client(&system, &sender_journal, settings(), never_give_up);
        for n in 1..=10 {
            // A failed deliver accepted nothing: try again.
            let mut tries = 0;
            while client.deliver("/user/link", n).await.is_err() {
                tries += 1;
                assert!(tries < 100, "seed {seed}: deliver keeps failing");
            }
        }
        client.drained().await;
        // Each number's ledger entries, straight from the receiver's store.
        let report = History::from_ledgers(1..=10, ledger(&*receiver_store).await).check();
        assert!(report.is_clean(), "seed {seed}: {report}");
        assert!(
            sender_chaos.failures() > 0 && receiver_chaos.failures() > 0,
            "seed {seed}: {} {}",
            sender_chaos.failures(),
            receiver_chaos.failures()
        );
        system.shutdown().await;
    }
}

// ---- event-sourced sender and receiver ----
