//! The event-sourced sink the persistence benches persist through
//! (`persistence` and `persist_profile` include this file), and the size of
//! the record courier stores for one of its events, so that raw loops
//! write the same.

// Each bench that includes this uses its own part of it.
#![allow(dead_code)]

use std::sync::Arc;

use courier::persistence::{
    Effect, EventRecord, EventSourced, Journal, Persistent, PersistentContext, SnapshotStore,
    Snapshots, encode_payload, now_millis,
};
use courier::prelude::*;
use serde::{Deserialize, Serialize};

/// Payload bytes per event (about), as in the reference figures.
pub const PAYLOAD: usize = 200;

#[derive(Default)]
pub struct Sink {
    events: u64,
    bytes: u64,
}

pub enum Cmd {
    Write(ReplyTo<u64>),
    Count(ReplyTo<u64>),
}

/// `n` sinks (`sink-0` …) persisting to `store`, as the 100-actor runs
/// spawn them.
pub fn spawn_sinks<S: Journal + SnapshotStore + 'static>(
    system: &ActorSystem,
    store: &Arc<S>,
    n: u64,
) -> Vec<ActorRef<Cmd>> {
    (0..n)
        .map(|i| {
            system
                .spawn(
                    Persistent::props(format!("sink-{i}"), Sink::default)
                        .with_store(Arc::clone(store)),
                )
                .expect("spawn")
        })
        .collect()
}

/// A typical domain event of about 200 encoded bytes: a number and a text.
#[derive(Serialize, Deserialize)]
pub struct Written {
    id: u64,
    note: String,
}

pub fn event() -> Written {
    Written {
        id: 42,
        note: "x".repeat(PAYLOAD - 10),
    }
}

impl EventSourced for Sink {
    type Command = Cmd;
    type Event = Written;

    async fn handle_command(
        &mut self,
        cmd: Cmd,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        Ok(match cmd {
            Cmd::Write(reply) => Effect::persist(event()).reply(reply, |s: &Self| s.events),
            Cmd::Count(reply) => {
                reply.reply(self.events);
                Effect::none()
            }
        })
    }

    fn apply_event(&mut self, written: Written) {
        self.events += 1;
        self.bytes += written.note.len() as u64;
    }
}

impl Snapshots for Sink {
    type Snapshot = (u64, u64);

    fn to_snapshot(&self) -> (u64, u64) {
        (self.events, self.bytes)
    }

    fn apply_snapshot(&mut self, (events, bytes): (u64, u64)) {
        self.events = events;
        self.bytes = bytes;
    }
}

/// The bytes courier stores for one event, so raw sled writes the same size.
pub fn stored_event_size() -> usize {
    let record = EventRecord {
        persistence_id: "sink-0".into(),
        seq_nr: 1,
        manifest: <Sink as EventSourced>::event_manifest(),
        payload: encode_payload(&event()).expect("encode"),
        writer_id: uuid_like(),
        timestamp: now_millis(),
    };
    // 4 bytes of CRC around the bincode body, as the store frames it.
    4 + encode_payload(&record).expect("encode").len()
}

pub fn uuid_like() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
