//! courier-remote: actors on other nodes, reached over gRPC.
//!
//! A [`Node`] listens on an address, keeps one stream per peer node (so
//! messages between two nodes keep their order) and resolves
//! `courier://node@host:port/…` paths, so `lookup` returns references whose
//! `tell` and `ask` cross processes. Every message travels with a manifest
//! from the [`Registry`]; bad input (an unknown manifest, an oversized
//! frame, bytes that do not decode) gets a typed [`Rejection`], never a
//! crash. Links are mutual TLS ([`TlsSettings`]): each node proves its name
//! with a certificate from the cluster's CA before anything is delivered;
//! a shared [`Secret`] alone is for development on loopback. The wire protocol (`proto/courier_remote.proto`) is compiled
//! by `build.rs` with protox, so no system `protoc` is needed; the
//! generated types stay private.

mod auth;
mod error;
mod hello_limit;
mod listen;
mod metrics;
mod node;
mod refusals;
mod registry;
mod rejection;
mod secret;
mod services;
mod settings;
mod sink;
mod tls;
mod transport;

/// The generated protocol types; private to the crate.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod proto {
    tonic::include_proto!("courier.remote.v1");
}

/// What a server answers a link with: the frames it sends back, or the
/// status that ends the stream.
type FrameStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = std::result::Result<proto::Frame, tonic::Status>> + Send>,
>;

pub use error::{Error, Result};
pub use node::{Node, SCHEME};
pub use registry::{Registry, RegistryError};
pub use rejection::{Rejection, RejectionReason};
pub use secret::Secret;
pub use services::{PeerIdentity, connect};
pub use settings::{DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT, MAX_RECONNECT_DELAY, RemoteSettings};
pub use tls::TlsSettings;
pub use transport::{Io, Transport};
