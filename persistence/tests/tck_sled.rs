//! The conformance suite against the sled store (a fresh directory per case).

#![cfg(feature = "sled")]

fn sled_store() -> (courier_persistence::SledStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = courier_persistence::SledStore::open(dir.path()).expect("store");
    (store, dir)
}

courier_persistence::journal_tck!(sled, super::sled_store());
