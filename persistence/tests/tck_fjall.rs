//! The conformance suite against the fjall store (a fresh directory per
//! case).

#![cfg(feature = "fjall")]

fn fjall_store() -> (courier_persistence::FjallStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = courier_persistence::FjallStore::open(dir.path()).expect("store");
    (store, dir)
}

courier_persistence::journal_tck!(fjall, super::fjall_store());
