//! The seam for other gRPC services on a node's listener (courier's admin
//! endpoint is one): they are mounted with [`Node::start_with_services`]
//! and served only over mutual TLS, so every request that reaches them
//! comes from a client whose certificate the configured CA signed. A
//! service reads who called with [`PeerIdentity::of`]; a client reaches a
//! node with [`connect`].
//!
//! [`Node::start_with_services`]: crate::Node::start_with_services

use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};
use crate::tls::{self, TlsSettings};
use crate::transport::{Conn, ConnInfo, Secure};

/// The verified certificate of the client that sent a request to a service
/// mounted on a node: its chain was checked against the node's CA during
/// the TLS handshake.
#[derive(Clone)]
pub struct PeerIdentity {
    cert: CertificateDer<'static>,
}

impl std::fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerIdentity(..)")
    }
}

impl PeerIdentity {
    /// The caller of a request, from its extensions (`request.extensions()`
    /// of a `tonic::Request` a mounted service received); `None` when the
    /// connection carried no verified certificate.
    pub fn of(extensions: &tonic::Extensions) -> Option<Self> {
        extensions
            .get::<ConnInfo>()
            .and_then(|info| info.cert.clone())
            .map(|cert| Self { cert })
    }

    /// Whether the certificate names `identity` as a DNS subject
    /// alternative name (as a node's certificate names the node).
    pub fn names(&self, identity: &str) -> bool {
        tls::names(&self.cert, identity)
    }
}

/// Opens a gRPC channel to the node `node` at `host_port` over mutual TLS,
/// as the client `identity` (which `tls`'s certificate must name), for a
/// service mounted on that node. The node must prove it is `node` with a
/// certificate signed by `tls`'s CA.
///
/// # Errors
///
/// [`Error::Credentials`] when the credentials cannot be read or do not
/// name `identity`, [`Error::Io`] when the node cannot be reached or the
/// handshake fails within `timeout`.
pub async fn connect(
    node: &str,
    host_port: &str,
    identity: &str,
    tls: &TlsSettings,
    timeout: Duration,
) -> Result<tonic::transport::Channel> {
    let loaded = tls.load(identity)?;
    let name = tls::server_name(node).map_err(|reason| Error::Credentials {
        setting: "node",
        reason,
    })?;
    let connect: crate::transport::Connect = std::sync::Arc::new(|to: String| {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(to).await?;
            stream.set_nodelay(true)?;
            Ok(Conn::new(stream))
        })
    });
    crate::transport::channel(
        &connect,
        host_port,
        timeout,
        Some(Secure {
            connector: loaded.connector,
            name,
        }),
        (Duration::from_secs(10), Duration::from_secs(10)),
    )
    .await
    .map_err(|reason| Error::Io {
        context: format!("connecting to {node} at {host_port}"),
        source: std::io::Error::other(reason),
    })
}
