//! The persistence conformance suite against a real PostgreSQL.

mod support;

courier_persistence::journal_tck!(
    postgres,
    match support::store().await {
        Some(store) => store,
        None => return,
    }
);
