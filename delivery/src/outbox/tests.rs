//! The outbox's unit tests: ids, the settled mark, ticks, parking, restore.
use super::*;

const S: Duration = Duration::from_secs(1);

fn settings() -> OutboxSettings {
    OutboxSettings {
        redelivery: Redelivery::Fixed { interval: S },
        burst_limit: 100,
        warn_after_attempts: 3,
        max_unconfirmed: 10,
        max_attempts: None,
        expire_after: None,
    }
}

fn append(outbox: &mut Outbox<String>, now: Duration) -> (DeliveryId, Dispatch) {
    outbox
        .append("/user/dest", |id| format!("msg {}", id.0), now, 0.5)
        .expect("room")
}

#[test]
fn ids_are_gap_free_from_one_and_messages_see_their_id() {
    let mut outbox = Outbox::new(settings());
    let ids: Vec<_> = (0..3).map(|_| append(&mut outbox, S).0).collect();
    assert_eq!(ids, [DeliveryId(1), DeliveryId(2), DeliveryId(3)]);
    assert_eq!(
        outbox.get(DeliveryId(2)).map(|p| p.message.as_str()),
        Some("msg 2")
    );
    assert_eq!(outbox.settled_below(), DeliveryId(1));
}

#[test]
fn full_outbox_refuses_without_using_an_id() {
    let mut outbox = Outbox::new(OutboxSettings {
        max_unconfirmed: 2,
        ..settings()
    });
    append(&mut outbox, S);
    append(&mut outbox, S);
    let refused = outbox.append("/user/dest", |_| String::new(), S, 0.5);
    assert_eq!(refused, Err(OutboxFull { max_unconfirmed: 2 }));
    outbox.confirm(DeliveryId(1));
    assert_eq!(append(&mut outbox, S).0, DeliveryId(3));
}

#[test]
fn confirm_is_idempotent_and_never_touches_another_id() {
    let mut outbox = Outbox::new(settings());
    append(&mut outbox, S);
    append(&mut outbox, S);
    assert!(matches!(
        outbox.confirm(DeliveryId(1)),
        Confirmation::Confirmed(_)
    ));
    assert_eq!(outbox.confirm(DeliveryId(1)), Confirmation::Unknown);
    assert_eq!(outbox.confirm(DeliveryId(7)), Confirmation::Unknown);
    assert_eq!(outbox.len(), 1);
    assert!(outbox.get(DeliveryId(2)).is_some());
    assert_eq!(outbox.settled_below(), DeliveryId(2));
}

#[test]
fn tick_resends_only_overdue_oldest_first_within_the_burst() {
    let mut outbox = Outbox::new(OutboxSettings {
        burst_limit: 2,
        ..settings()
    });
    for _ in 0..3 {
        append(&mut outbox, Duration::ZERO);
    }
    assert!(outbox.tick(S / 2, || 0.5).send.is_empty());
    let first = outbox.tick(S, || 0.5);
    assert_eq!(first.send, [DeliveryId(1), DeliveryId(2)]);
    let second = outbox.tick(S, || 0.5);
    assert_eq!(second.send, [DeliveryId(3)]);
    assert_eq!(outbox.get(DeliveryId(1)).map(|p| p.attempts), Some(2));
}

#[test]
fn a_small_burst_limit_rotates_instead_of_starving_later_deliveries() {
    let mut outbox = Outbox::new(OutboxSettings {
        burst_limit: 2,
        ..settings()
    });
    for _ in 0..6 {
        append(&mut outbox, Duration::ZERO);
    }
    // None is ever confirmed: each round takes the two most overdue.
    let rounds: Vec<Vec<u64>> = (1..=4u32)
        .map(|n| {
            outbox
                .tick(S * n, || 0.5)
                .send
                .iter()
                .map(|id| id.0)
                .collect()
        })
        .collect();
    assert_eq!(rounds, [vec![1, 2], vec![3, 4], vec![5, 6], vec![1, 2]]);
}

#[test]
fn warns_once_per_delivery_after_the_threshold() {
    let mut outbox = Outbox::new(settings());
    append(&mut outbox, Duration::ZERO);
    let warned: Vec<_> = (1..=5u32)
        .flat_map(|n| outbox.tick(S * n, || 0.5).warn)
        .collect();
    assert_eq!(warned, [DeliveryId(1)]);
    assert!(outbox.tick(S * 6, || 0.5).warn.is_empty());
}

#[test]
fn parks_after_max_attempts_or_expiry() {
    let mut outbox = Outbox::new(OutboxSettings {
        max_attempts: Some(2),
        ..settings()
    });
    append(&mut outbox, Duration::ZERO);
    assert_eq!(outbox.tick(S, || 0.5).send, [DeliveryId(1)]);
    let tick = outbox.tick(S * 2, || 0.5);
    assert!(tick.send.is_empty());
    assert_eq!(tick.park, [(DeliveryId(1), ParkReason::MaxAttempts(2))]);
    // Still unconfirmed until its parked record is durable; proposed
    // again if that write fails, and never sent meanwhile.
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox.settled_below(), DeliveryId(1));
    let again = outbox.tick(S * 3, || 0.5);
    assert!(again.send.is_empty());
    assert_eq!(again.park, tick.park);
    assert!(outbox.settle_parked(DeliveryId(1)).is_some());
    assert!(outbox.is_empty());
    assert_eq!(outbox.settled_below(), DeliveryId(2));

    let mut outbox = Outbox::new(OutboxSettings {
        expire_after: Some(S * 3),
        ..settings()
    });
    append(&mut outbox, Duration::ZERO);
    assert_eq!(outbox.tick(S * 2, || 0.5).park.len(), 0);
    let tick = outbox.tick(S * 3, || 0.5);
    assert_eq!(tick.park, [(DeliveryId(1), ParkReason::Expired(S * 3))]);
}

#[test]
fn restored_entries_go_out_before_new_ones() {
    let mut outbox = Outbox::new(OutboxSettings {
        burst_limit: 1,
        ..settings()
    });
    outbox.restore(
        DeliveryId(8),
        [
            (DeliveryId(5), "/user/a".to_owned(), "five".to_owned(), S),
            (DeliveryId(6), "/user/a".to_owned(), "six".to_owned(), S),
        ],
    );
    let (id, dispatch) = append(&mut outbox, S * 2);
    assert_eq!((id, dispatch), (DeliveryId(8), Dispatch::Later));
    assert_eq!(outbox.tick(S * 2, || 0.5).send, [DeliveryId(5)]);
    assert_eq!(outbox.tick(S * 2, || 0.5).send, [DeliveryId(6)]);
    assert_eq!(outbox.tick(S * 2, || 0.5).send, [DeliveryId(8)]);
    // The backlog is drained: new deliveries go out at once again.
    assert_eq!(append(&mut outbox, S * 2).1, Dispatch::Now);
}

#[test]
fn a_cancelled_reservation_leaves_no_gap() {
    let mut outbox: Outbox<String> = Outbox::new(OutboxSettings {
        max_unconfirmed: 1,
        ..settings()
    });
    let id = outbox.reserve().expect("room");
    assert!(outbox.reserve().is_err(), "the reservation holds the room");
    outbox.cancel(id);
    assert_eq!(outbox.reserve(), Ok(DeliveryId(1)));
}

#[test]
fn restore_never_reuses_an_id() {
    let mut outbox: Outbox<String> = Outbox::new(settings());
    outbox.restore(
        DeliveryId(3),
        [(DeliveryId(9), "/user/a".to_owned(), "x".to_owned(), S)],
    );
    assert_eq!(outbox.next_id(), DeliveryId(10));
}

#[test]
fn settled_below_covers_reserved_ids_written_out_of_order() {
    let mut outbox: Outbox<String> = Outbox::new(settings());
    let first = outbox.reserve().expect("room");
    let second = outbox.reserve().expect("room");
    // The second write finishes first and is sent: it must not tell the
    // receiver that the first is settled.
    outbox.insert(second, "/user/a", "two".into(), S, 0.5);
    assert_eq!(outbox.settled_below(), first);
    outbox.insert(first, "/user/a", "one".into(), S, 0.5);
    assert_eq!(outbox.settled_below(), first);
    outbox.confirm(first);
    assert_eq!(outbox.settled_below(), second);
    outbox.confirm(second);
    assert_eq!(outbox.settled_below(), DeliveryId(3));
}

#[test]
fn an_id_in_doubt_holds_the_settled_mark_until_resolved() {
    let mut outbox: Outbox<String> = Outbox::new(settings());
    let lost = outbox.reserve().expect("room");
    let (later, _) = append(&mut outbox, S);
    outbox.doubt(lost);
    outbox.confirm(later);
    assert_eq!(outbox.settled_below(), lost);
    assert_eq!(outbox.tick(S, || 0.5).resolve, [lost]);
    // It turned out durable: pending again, sent on the next tick.
    outbox.resolve(lost, Some(("/user/a", "one".to_owned(), S)));
    assert_eq!(outbox.settled_below(), lost);
    let tick = outbox.tick(S, || 0.5);
    assert!(tick.resolve.is_empty());
    assert_eq!(tick.send, [lost]);
    outbox.confirm(lost);
    assert_eq!(outbox.settled_below(), DeliveryId(3));

    // Never written: the id is skipped, never reused.
    let gone = outbox.reserve().expect("room");
    outbox.doubt(gone);
    outbox.resolve::<&str>(gone, None);
    assert_eq!(outbox.settled_below(), DeliveryId(4));
    assert_eq!(outbox.reserve(), Ok(DeliveryId(4)));
}

#[test]
fn pending_pages_by_id() {
    let mut outbox = Outbox::new(settings());
    for _ in 0..5 {
        append(&mut outbox, S);
    }
    let page: Vec<_> = outbox
        .iter_after(Some(DeliveryId(2)))
        .map(|(id, _)| id.0)
        .collect();
    assert_eq!(page, [3, 4, 5]);
    assert_eq!(outbox.iter_after(None).count(), 5);
}

#[test]
fn the_id_mark_is_needed_only_when_no_pending_delivery_is_above_the_deleted() {
    let mut outbox = Outbox::new(settings());
    let (one, _) = append(&mut outbox, S);
    let (two, _) = append(&mut outbox, S);
    // A reserved id is not stored yet: it does not count.
    let three = outbox.reserve().expect("room");
    assert!(matches!(outbox.confirm(one), Confirmation::Confirmed(_)));
    assert!(!outbox.needs_mark(one), "2 is pending and stored above 1");
    assert!(matches!(outbox.confirm(two), Confirmation::Confirmed(_)));
    assert!(outbox.needs_mark(two), "only the reserved 3 is above 2");
    outbox.insert(three, "/user/dest", "msg 3".into(), S, 0.5);
    assert!(!outbox.needs_mark(two));
    assert!(outbox.needs_mark(three));
}
