//! Property test of the pure delivery logic against a model.
//!
//! A sender ([`Outbox`], with its durable entries) and a receiver ([`Inbox`],
//! with its durable windows) talk through a network that drops, duplicates
//! and reorders; either side crashes and restarts from what was durable;
//! acks get lost; confirmations that were not yet written are lost in a
//! sender crash. Deliveries may also be written concurrently: an id is
//! reserved, and its write completes (out of order with other writes),
//! fails without reaching the disk, or fails after reaching it (the outcome
//! the sender cannot know). Once the faults stop and the network heals,
//! every accepted message's effect (and every one whose failed write
//! reached the disk) must have been applied exactly once, no other, and
//! the outbox must drain.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use courier_delivery::model::{Confirmation, Dispatch, Inbox, InboxChange, Outbox, Window};
use courier_delivery::{DeliveryId, OutboxSettings, Receipt, Redelivery, SenderId};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Clone, Debug)]
enum Op {
    Send,
    Reserve,
    Complete(usize),
    Fail(usize, bool),
    Tick,
    Deliver(usize),
    Drop(usize),
    Duplicate(usize),
    FlushConfirms,
    CrashSender,
    CrashReceiver,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Send),
        3 => Just(Op::Reserve),
        3 => any::<usize>().prop_map(Op::Complete),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, durable)| Op::Fail(i, durable)),
        3 => Just(Op::Tick),
        8 => any::<usize>().prop_map(Op::Deliver),
        2 => any::<usize>().prop_map(Op::Drop),
        2 => any::<usize>().prop_map(Op::Duplicate),
        1 => Just(Op::FlushConfirms),
        1 => Just(Op::CrashSender),
        1 => Just(Op::CrashReceiver),
    ]
}

#[derive(Clone, Debug)]
enum Wire {
    Delivery {
        id: DeliveryId,
        settled_below: DeliveryId,
        payload: u64,
    },
    Ack(DeliveryId),
}

struct World {
    sender: SenderId,
    settings: OutboxSettings,
    outbox: Outbox<u64>,
    /// The sender's journal: entries and the id mark its cleaner writes.
    durable_outbox: BTreeMap<DeliveryId, (String, u64, Duration)>,
    durable_next: DeliveryId,
    /// Every id whose entry was ever durable, with its payload: an id is
    /// never given to a second payload, across crashes too.
    ids: HashMap<DeliveryId, u64>,
    /// Reserved ids whose write has not finished, with their payloads.
    writing: Vec<(DeliveryId, u64)>,
    /// Payloads whose deliver returned Ok.
    accepted: BTreeSet<u64>,
    /// Payloads whose write failed but reached the disk anyway.
    failed_durable: BTreeSet<u64>,
    /// Confirmations not yet written (fire-and-forget deletes).
    unwritten_confirms: Vec<DeliveryId>,
    inbox: Inbox,
    durable_window: Window,
    /// The receiver's durable effect: how often each payload was applied.
    applied: HashMap<u64, u32>,
    net: Vec<Wire>,
    now: Duration,
    sent: u64,
}

const TICK: Duration = Duration::from_secs(1);

impl World {
    fn new(burst_limit: usize, max_unconfirmed: usize) -> Self {
        let settings = OutboxSettings {
            redelivery: Redelivery::Fixed { interval: TICK },
            burst_limit,
            warn_after_attempts: 3,
            max_unconfirmed,
            max_attempts: None,
            expire_after: None,
        };
        Self {
            sender: SenderId {
                name: "sender".to_owned(),
                incarnation: Uuid::from_u128(7),
            },
            outbox: Outbox::new(settings.clone()),
            settings,
            durable_outbox: BTreeMap::new(),
            durable_next: DeliveryId(1),
            ids: HashMap::new(),
            writing: Vec::new(),
            accepted: BTreeSet::new(),
            failed_durable: BTreeSet::new(),
            unwritten_confirms: Vec::new(),
            inbox: Inbox::new(),
            durable_window: Window::default(),
            applied: HashMap::new(),
            net: Vec::new(),
            now: Duration::ZERO,
            sent: 0,
        }
    }

    /// The entry of `id` is durable.
    fn written(&mut self, id: DeliveryId, payload: u64) {
        self.durable_outbox
            .insert(id, ("/user/r".to_owned(), payload, self.now));
        let first = *self.ids.entry(id).or_insert(payload);
        assert_eq!(first, payload, "id {id} reused");
    }

    fn put_on_wire(&mut self, id: DeliveryId) {
        let payload = self.outbox.get(id).expect("pending").message;
        self.net.push(Wire::Delivery {
            id,
            settled_below: self.outbox.settled_below(),
            payload,
        });
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Send => {
                let payload = self.sent + 1;
                let Ok((id, dispatch)) = self.outbox.append("/user/r", |_| payload, self.now, 0.5)
                else {
                    return;
                };
                self.sent = payload;
                // Durable before it is sent.
                self.written(id, payload);
                self.accepted.insert(payload);
                if dispatch == Dispatch::Now {
                    self.put_on_wire(id);
                }
            }
            Op::Reserve => {
                let Ok(id) = self.outbox.reserve() else {
                    return;
                };
                self.sent += 1;
                self.writing.push((id, self.sent));
            }
            Op::Complete(i) => {
                if self.writing.is_empty() {
                    return;
                }
                let (id, payload) = self.writing.remove(i % self.writing.len());
                self.written(id, payload);
                self.accepted.insert(payload);
                let dispatch = self.outbox.insert(id, "/user/r", payload, self.now, 0.5);
                if dispatch == Dispatch::Now {
                    self.put_on_wire(id);
                }
            }
            Op::Fail(i, durable) => {
                if self.writing.is_empty() {
                    return;
                }
                let (id, payload) = self.writing.remove(i % self.writing.len());
                if durable {
                    self.written(id, payload);
                    self.failed_durable.insert(payload);
                }
                self.outbox.doubt(id);
            }
            Op::Tick => {
                self.now += TICK;
                let tick = self.outbox.tick(self.now, || 0.5);
                assert!(tick.park.is_empty());
                // The adapter reads the store after a barrier write.
                for id in tick.resolve {
                    let found = self.durable_outbox.get(&id).cloned();
                    self.outbox.resolve(id, found);
                }
                for id in tick.send {
                    self.put_on_wire(id);
                }
            }
            Op::Deliver(i) => {
                if self.net.is_empty() {
                    return;
                }
                let wire = self.net.remove(i % self.net.len());
                self.receive(wire);
            }
            Op::Drop(i) => {
                if !self.net.is_empty() {
                    let n = self.net.len();
                    self.net.remove(i % n);
                }
            }
            Op::Duplicate(i) => {
                if !self.net.is_empty() {
                    let copy = self.net[i % self.net.len()].clone();
                    self.net.push(copy);
                }
            }
            Op::FlushConfirms => {
                // The sender's writer deletes in one write, and raises the
                // id mark in it only when no pending delivery above the
                // deleted ones stays stored (what the adapter does).
                let Some(highest) = self.unwritten_confirms.iter().max().copied() else {
                    return;
                };
                for id in self.unwritten_confirms.drain(..) {
                    self.durable_outbox.remove(&id);
                }
                if self.outbox.needs_mark(highest) {
                    self.durable_next = self.durable_next.max(highest.next());
                }
            }
            Op::CrashSender => {
                self.unwritten_confirms.clear();
                // Writes in flight never reached the disk.
                self.writing.clear();
                self.outbox = Outbox::new(self.settings.clone());
                let entries = self
                    .durable_outbox
                    .iter()
                    .map(|(id, (dest, payload, created))| (*id, dest.clone(), *payload, *created));
                self.outbox
                    .restore(self.durable_next, entries.collect::<Vec<_>>());
                let tick = self.outbox.tick(self.now, || 0.5);
                for id in tick.send {
                    self.put_on_wire(id);
                }
            }
            Op::CrashReceiver => {
                self.inbox = Inbox::new();
                self.inbox
                    .restore(self.sender.clone(), self.durable_window.clone());
            }
        }
    }

    fn receive(&mut self, wire: Wire) {
        match wire {
            Wire::Delivery {
                id,
                settled_below,
                payload,
            } => {
                if self.inbox.check(&self.sender, id) == Receipt::New {
                    // Effect and inbox record commit in one atomic write.
                    *self.applied.entry(payload).or_default() += 1;
                    let change = self.inbox.record(&self.sender, id, settled_below);
                    apply(&mut self.durable_window, &change);
                }
                self.net.push(Wire::Ack(id));
            }
            Wire::Ack(id) => {
                if let Confirmation::Confirmed(_) = self.outbox.confirm(id) {
                    self.unwritten_confirms.push(id);
                }
            }
        }
    }

    /// No more faults: deliver everything, tick until drained.
    fn heal(&mut self) {
        while !self.writing.is_empty() {
            self.step(Op::Complete(0));
        }
        for _ in 0..10_000 {
            while let Some(wire) = (!self.net.is_empty()).then(|| self.net.remove(0)) {
                self.receive(wire);
            }
            if self.outbox.is_empty() {
                return;
            }
            self.step(Op::Tick);
        }
        panic!("outbox did not drain: {} left", self.outbox.len());
    }
}

fn apply(window: &mut Window, change: &InboxChange) {
    if let Some(w) = change.watermark {
        window.watermark = w;
    }
    for id in &change.added {
        window.above.insert(*id);
    }
    for id in &change.removed {
        window.above.remove(id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_effect_applied_exactly_once_and_the_outbox_drains(
        ops in proptest::collection::vec(op(), 0..300),
        burst_limit in 1usize..5,
        max_unconfirmed in 1usize..20,
    ) {
        let mut world = World::new(burst_limit, max_unconfirmed);
        for op in ops {
            world.step(op);
            // The durable window always matches the live one.
            prop_assert_eq!(world.inbox.window(&world.sender).cloned().unwrap_or_default(), world.durable_window.clone());
        }
        world.heal();
        let must: BTreeSet<u64> = world.accepted.union(&world.failed_durable).copied().collect();
        for payload in 1..=world.sent {
            let expected = must.contains(&payload).then_some(1);
            prop_assert_eq!(world.applied.get(&payload).copied(), expected, "payload {}", payload);
        }
        prop_assert_eq!(world.applied.len(), must.len());
        prop_assert!(world.outbox.is_empty());
        // Everything settled. A write in doubt holds the settled mark down
        // until a tick resolves it, which widens the receiver's window for a
        // while; the next delivery carries the settled mark again.
        world.step(Op::Send);
        world.heal();
        prop_assert_eq!(world.applied.get(&world.sent).copied(), Some(1));
        prop_assert!(world.inbox.kept() <= max_unconfirmed);
    }
}
