//! courier-remote: actors on other nodes, reached over gRPC.
//!
//! This crate is being built in steps (issue 5). What is here so far: the
//! wire protocol (`proto/courier_remote.proto`, compiled by `build.rs` with
//! protox, so no system `protoc` is needed; the generated types stay
//! private), the [`Registry`] of message manifests, and the receiving end
//! of a frame: decoding with typed [`Rejection`]s for bad input, and
//! delivery of each envelope to its local actor.

mod auth;
#[doc(hidden)]
pub mod bare;
mod error;
mod frame;
mod node;
mod transport;

/// The generated protocol types; private to the crate.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod proto {
    tonic::include_proto!("courier.remote.v1");
}

pub use error::{Error, Result};
pub use frame::{DEFAULT_MAX_FRAME, Registry, RegistryError, Rejection, RejectionReason};
pub use node::{MAX_FRAME_LIMIT, MAX_RECONNECT_DELAY, Node, RemoteSettings, SCHEME};
pub use transport::{Io, Transport};
