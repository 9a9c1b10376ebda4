//! The accepting side of a node's connections, before gRPC: at most
//! `max_connections` at once (one more is closed at once), and each one's
//! TLS handshake run on its own task within `handshake_timeout`, so that a
//! peer that connects and sends nothing holds neither the accept loop nor
//! a place for long. Only connections that completed the handshake (with a
//! client certificate signed by the configured CA, when TLS is on) reach
//! the gRPC server, and one that carries no authenticated link for
//! `idle_timeout` is closed (a peer that connects and never authenticates,
//! or whose links all ended).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::refusals::Refusals;
use crate::transport::{Conn, ConnInfo, Incoming};

/// What the accept loop enforces.
pub(crate) struct Accept {
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) max_connections: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) refusals: Arc<Refusals>,
}

/// Accepts from `incoming` under `accept`'s limits; the stream yields the
/// connections that may speak gRPC. It ends when `incoming` does; the
/// loop stops when the stream is dropped.
pub(crate) fn accept(mut incoming: Incoming, accept: Accept) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel::<io::Result<Conn>>(16);
    let places = Arc::new(Semaphore::new(accept.max_connections));
    let accept = Arc::new(accept);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = incoming.next() => next,
                () = tx.closed() => return,
            };
            let conn = match next {
                None => return,
                Some(Ok(conn)) => conn,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "accepting a connection failed");
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&places).try_acquire_owned() else {
                accept.refusals.refused(
                    None,
                    &format!(
                        "too many connections (max_connections = {})",
                        accept.max_connections
                    ),
                );
                drop(conn);
                continue;
            };
            let (tx, accept) = (tx.clone(), Arc::clone(&accept));
            tokio::spawn(async move {
                let Some(tls) = &accept.tls else {
                    let _ = tx
                        .send(Ok(Conn::accepted(
                            conn,
                            ConnInfo::default(),
                            permit,
                            accept.idle_timeout,
                        )))
                        .await;
                    return;
                };
                match tokio::time::timeout(accept.handshake_timeout, tls.accept(conn)).await {
                    Ok(Ok(stream)) => {
                        let cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .map(|cert| cert.clone().into_owned());
                        let info = ConnInfo {
                            cert,
                            ..ConnInfo::default()
                        };
                        let conn = Conn::accepted(stream, info, permit, accept.idle_timeout);
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(e)) => {
                        accept
                            .refusals
                            .refused(None, &format!("TLS handshake failed: {e}"));
                    }
                    Err(_) => {
                        accept.refusals.refused(
                            None,
                            &format!(
                                "no TLS handshake within handshake_timeout ({:?})",
                                accept.handshake_timeout
                            ),
                        );
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
