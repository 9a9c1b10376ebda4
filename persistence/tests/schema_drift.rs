//! Events and snapshots written by an older shape of their type, under the
//! same manifest (a change nobody versioned): the default upcasts refuse
//! them with a typed error instead of allocating what a misread length
//! prefix claims, which would abort the process on every restart.

use std::sync::Arc;
use std::time::Duration;

use courier_core::{ActorSystem, BoxError, ReplyTo};
use courier_persistence::{
    Effect, EventRecord, EventSourced, Journal, MemoryStore, Persistent, PersistentContext,
    PersistentSettings, Snapshot, SnapshotMetadata, SnapshotStore, Snapshots, WriteBatch,
    decode_payload, encode_payload,
};
use serde::{Deserialize, Serialize};

const SECOND: Duration = Duration::from_secs(1);
const PID: &str = "notes-1";

/// The shape an older version wrote: its second field is read by the new
/// shape as the length of a string. 2^50 bytes cannot be allocated, so an
/// unlimited decode aborts the process.
#[derive(Serialize)]
struct OldNote {
    id: u64,
    amount: u64,
}

const CLAIMED: u64 = 1 << 50;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    id: u64,
    text: String,
}

#[derive(Default)]
struct Notes {
    notes: Vec<Note>,
}

struct Get(ReplyTo<Vec<Note>>);

impl EventSourced for Notes {
    type Command = Get;
    type Event = Note;

    async fn handle_command(
        &mut self,
        Get(reply): Get,
        _ctx: &mut PersistentContext<Self>,
    ) -> Result<Effect<Self>, BoxError> {
        reply.reply(self.notes.clone());
        Ok(Effect::none())
    }

    fn apply_event(&mut self, note: Note) {
        self.notes.push(note);
    }
}

impl Snapshots for Notes {
    type Snapshot = Vec<Note>;

    fn to_snapshot(&self) -> Vec<Note> {
        self.notes.clone()
    }

    fn apply_snapshot(&mut self, notes: Vec<Note>) {
        self.notes = notes;
    }
}

fn old_payload() -> Vec<u8> {
    encode_payload(&OldNote {
        id: 1,
        amount: CLAIMED,
    })
    .expect("encode")
}

fn event(seq_nr: u64, payload: Vec<u8>) -> EventRecord {
    EventRecord {
        persistence_id: PID.into(),
        seq_nr,
        manifest: Notes::event_manifest(),
        payload,
        writer_id: uuid::Uuid::now_v7(),
        timestamp: 0,
    }
}

fn notes(store: &Arc<MemoryStore>) -> courier_core::Props<Persistent<Notes>> {
    Persistent::props_with(
        PID,
        Notes::default,
        store.clone(),
        store.clone(),
        PersistentSettings::default(),
    )
}

#[test]
fn an_older_shape_is_a_decode_error() {
    let refused = decode_payload::<Note>(&old_payload()).expect_err("older shape");
    let cause = std::error::Error::source(&refused).map(ToString::to_string);
    assert!(
        refused.to_string().contains("Note") && cause.is_some_and(|c| c.contains("length prefix")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn recovery_refuses_an_event_of_an_older_shape_and_the_process_lives_on() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let good = Note {
        id: 0,
        text: "kept".into(),
    };
    store
        .write(
            WriteBatch::new()
                .event(event(1, encode_payload(&good).expect("encode")))
                .event(event(2, old_payload())),
        )
        .await
        .expect("write");
    let system = ActorSystem::new("drift");
    let actor = system.spawn(notes(&store)).expect("spawn");
    // A failed recovery stops the actor: no partial state, no reply.
    let reply = actor.ask(Get, SECOND).await;
    assert!(reply.is_err(), "{reply:?}");
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("stopped");
    system.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_of_an_older_shape_falls_back_to_replay() {
    let store = Arc::new(MemoryStore::memory().expect("store"));
    let good = Note {
        id: 0,
        text: "replayed".into(),
    };
    store
        .write(WriteBatch::new().event(event(1, encode_payload(&good).expect("encode"))))
        .await
        .expect("write");
    // An old snapshot is a sequence of old notes: its first note's `amount`
    // is where the new shape reads a string's length.
    let payload = encode_payload(&vec![OldNote {
        id: 1,
        amount: CLAIMED,
    }])
    .expect("encode");
    store
        .save_snapshot(Snapshot {
            metadata: SnapshotMetadata {
                persistence_id: PID.into(),
                seq_nr: 1,
                timestamp: 0,
            },
            manifest: Notes::snapshot_manifest(),
            payload,
        })
        .await
        .expect("save");
    let system = ActorSystem::new("drift");
    let actor = system.spawn(notes(&store)).expect("spawn");
    let seen = actor.ask(Get, SECOND).await.expect("recovered");
    assert_eq!(seen, [good]);
    system.shutdown().await;
}
