//! The conformance suite against the in-memory store.

courier_persistence::journal_tck!(
    memory,
    courier_persistence::MemoryStore::memory().expect("store")
);
