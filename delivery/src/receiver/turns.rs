//! One turn per inbox in the process: an inbox opened again (by a
//! restarted actor, which makes a new `ExactlyOnce` or opens its
//! `DedupInbox` in `started`) reads its records only once the commits of
//! its earlier opening have landed.
//!
//! Without it, a commit still in flight when the actor restarts (a
//! `submit`ted delivery: the handler returned before its write) lands after
//! the new opening read the disk, and the new inbox takes a redelivery of
//! that delivery for new: applied twice.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use courier_persistence::Journal;

/// The inbox's turn: held by its commit task while it writes, and by
/// `DedupInbox::open` while it reads.
pub(super) type Turn = Arc<tokio::sync::Mutex<()>>;

/// An inbox: its store's identity and its name.
type Key = (usize, String);

/// Turns by inbox, kept while an opening of the inbox lives.
static TURNS: LazyLock<Mutex<HashMap<Key, Weak<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// The turn of inbox `name` in `journal`'s store, shared by every opening
/// of it in this process.
pub(super) fn turn(journal: &Arc<dyn Journal>, name: &str) -> Turn {
    // A journal that does not tell its store is told apart by its handle.
    let store = journal
        .store_identity()
        .unwrap_or_else(|| Arc::as_ptr(journal).cast::<()>() as usize);
    let mut turns = courier_core::sync::lock(&TURNS);
    turns.retain(|_, turn| turn.strong_count() > 0);
    let key = (store, name.to_owned());
    if let Some(turn) = turns.get(&key).and_then(Weak::upgrade) {
        return turn;
    }
    let turn = Turn::default();
    turns.insert(key, Arc::downgrade(&turn));
    turn
}
