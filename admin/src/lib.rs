//! courier-admin: the admin endpoint of a running courier process.
//!
//! The offline `courier` tool's queries and repairs (inspect, pending,
//! parked list / requeue / purge, events, verify) against a process that
//! keeps running: an [`AdminService`] over the process's live journal and
//! its running senders, mounted on the node's gRPC listener with
//! [`Node::start_with_services`](courier_remote::Node::start_with_services).
//!
//! Who may ask: the service is served over mutual TLS only (the node
//! refuses to mount it without TLS), so every caller holds a certificate
//! signed by the node's CA; reading needs nothing more. Who may repair:
//! only callers whose certificate names one of the identities in
//! [`AdminSettings::repair`] (default: none). Repairs go through the
//! running [`Deliverer`](courier_delivery::Deliverer) of the sender
//! ([`courier_delivery::live`]), never behind its back: a sender that does
//! not run in the process is refused, not written to.
//!
//! The [`AdminClient`] is what `courier --node …` uses.

mod client;
mod error;
mod service;
mod settings;

/// The wire types of the admin protocol (`proto/courier_admin.proto`),
/// which the client returns as they are.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod wire {
    tonic::include_proto!("courier.admin.v1");
}

pub use client::AdminClient;
pub use error::{Error, Result};
pub use service::{AdminService, MAX_DECODED, MAX_IDS, MAX_LIST, MAX_REQUEST};
pub use settings::AdminSettings;
