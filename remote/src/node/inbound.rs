//! [`Inbound`]: the server side of a peer's stream. It authenticates the
//! stream before reading anything else, then hands each batch to the
//! [`Registry`](crate::Registry), answering with `Received` and a rejection
//! per envelope it could not deliver.
//!
//! An unauthenticated peer gets nothing but a refusal; a bad envelope is
//! rejected alone (loudly when the cause is one an operator must fix), so
//! the rest of its batch and the stream go on.

use std::sync::Arc;

use courier_core::with_ref_codec;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::Shared;
use crate::FrameStream;
use crate::auth::{self, Role};
use crate::proto::remote_server::Remote;
use crate::proto::{self, frame::Kind};
use crate::refusals::bounded;
use crate::rejection::{Rejection, RejectionReason};
use crate::tls;
use crate::transport::ConnInfo;

/// The server side of `Link`.
pub(crate) struct Inbound {
    pub(crate) shared: Arc<Shared>,
}

#[tonic::async_trait]
impl Remote for Inbound {
    type LinkStream = FrameStream;

    async fn link(
        &self,
        request: Request<Streaming<proto::Frame>>,
    ) -> Result<Response<Self::LinkStream>, Status> {
        let shared = Arc::clone(&self.shared);
        let info = request
            .extensions()
            .get::<ConnInfo>()
            .cloned()
            .unwrap_or_default();
        let mut inbound = request.into_inner();
        let timeout = shared.settings.handshake_timeout;
        let hello = match tokio::time::timeout(timeout, inbound.message()).await {
            Ok(Ok(Some(proto::Frame {
                kind: Some(Kind::Hello(hello)),
            }))) => hello,
            // Held to max_hello before it was buffered (hello_limit.rs,
            // which logged the refusal).
            Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => {
                return Err(status);
            }
            _ => {
                shared
                    .refusals
                    .refused(None, "the link did not start with a hello in time");
                return Err(Status::unauthenticated("a link starts with hello"));
            }
        };
        let size = prost::Message::encoded_len(&hello);
        if size > shared.settings.max_hello {
            shared.refusals.refused(
                None,
                &format!(
                    "a hello of {size} bytes (max_hello = {})",
                    shared.settings.max_hello
                ),
            );
            return Err(Status::invalid_argument("hello too large"));
        }
        if shared.tls.is_some() {
            let named = info
                .cert
                .as_ref()
                .is_some_and(|cert| tls::names(cert, &hello.node));
            if !named {
                shared.refusals.refused(
                    Some(&hello.node),
                    "its certificate does not name the node it says it is",
                );
                return Err(Status::unauthenticated("invalid credentials"));
            }
        }
        let ours = auth::nonce();
        let (tx, rx) = mpsc::channel::<Result<proto::Frame, Status>>(64);
        let welcome = proto::Frame {
            kind: Some(Kind::Welcome(proto::Welcome {
                node: shared.settings.node.clone(),
                nonce: ours.clone(),
                // Under TLS without a secret, the certificates prove who
                // is who and the proofs stay empty.
                proof: shared
                    .secret
                    .as_ref()
                    .map(|secret| auth::prove(secret, Role::Server, &hello.nonce, &ours))
                    .unwrap_or_default(),
            })),
        };
        if tx.send(Ok(welcome)).await.is_err() {
            return Err(Status::unavailable("closed"));
        }
        let link = Link {
            shared,
            info,
            hello,
            ours,
            inbound,
            tx,
        };
        // The peer's name is what its hello says (proven by its
        // certificate under TLS, by its proof otherwise, before anything is
        // delivered), cut to a bounded length.
        let span = tracing::info_span!(
            "courier.remote.inbound",
            peer = %bounded(&link.hello.node, 64),
        );
        tokio::spawn(link.run().instrument(span));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The task behind one peer's stream, once this node has sent its welcome:
/// it checks the peer's proof, then delivers the peer's batches until the
/// stream ends or the node shuts down.
struct Link {
    shared: Arc<Shared>,
    info: ConnInfo,
    hello: proto::Hello,
    /// This node's nonce, which the peer's proof must cover.
    ours: Vec<u8>,
    inbound: Streaming<proto::Frame>,
    tx: mpsc::Sender<Result<proto::Frame, Status>>,
}

impl Link {
    async fn run(mut self) {
        if !self.proven().await {
            self.shared.refusals.refused(
                Some(&self.hello.node),
                "it did not prove the shared secret in time",
            );
            let _ = self
                .tx
                .send(Err(Status::unauthenticated("invalid credentials")))
                .await;
            return;
        }
        tracing::debug!(peer = %bounded(&self.hello.node, 64), "peer authenticated");
        // The connection is in use while this link lasts.
        let _link = self.info.links.enter();
        let _counted = crate::metrics::InboundGuard::enter();
        let max_batch = self.shared.settings.max_batch;
        let mut closing = self.shared.closing.subscribe();
        loop {
            let message = tokio::select! {
                message = self.inbound.message() => message,
                _ = closing.wait_for(|closing| *closing) => return,
            };
            let batch = match message {
                Ok(Some(proto::Frame {
                    kind: Some(Kind::Batch(batch)),
                })) => batch,
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(status) => {
                    tracing::debug!(error = %status, "peer stream ended");
                    return;
                }
            };
            if batch.envelopes.len() > max_batch {
                self.shared.refusals.refused(
                    Some(&self.hello.node),
                    &format!(
                        "a batch of {} envelopes (max_batch = {max_batch}); the link is closed and its messages were not delivered",
                        batch.envelopes.len()
                    ),
                );
                let _ = self
                    .tx
                    .send(Err(Status::resource_exhausted("batch too large")))
                    .await;
                return;
            }
            for answer in self.deliver(batch) {
                if self.tx.send(Ok(answer)).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Whether the peer's next frame proves the shared secret, in time.
    async fn proven(&mut self) -> bool {
        let timeout = self.shared.settings.handshake_timeout;
        match tokio::time::timeout(timeout, self.inbound.message()).await {
            Ok(Ok(Some(proto::Frame {
                kind: Some(Kind::Proof(p)),
            }))) => match &self.shared.secret {
                Some(secret) => auth::check(
                    secret,
                    Role::Client,
                    &self.ours,
                    &self.hello.nonce,
                    &p.proof,
                ),
                // Only under TLS (settings refuse neither): the peer's
                // certificate was checked before the welcome.
                None => self.shared.tls.is_some(),
            },
            _ => false,
        }
    }

    /// Delivers one batch; the answers are a rejection per envelope that
    /// was not delivered, then `Received` up to the batch's last one.
    fn deliver(&self, batch: proto::Batch) -> Vec<proto::Frame> {
        let shared = &self.shared;
        let max_frame = shared.settings.max_frame;
        let mut up_to = 0;
        let mut answers = Vec::new();
        for envelope in batch.envelopes {
            up_to = up_to.max(envelope.seq);
            let size = envelope.payload.len();
            let result = if size > max_frame {
                Err(Rejection {
                    seq: envelope.seq,
                    recipient: envelope.recipient.clone(),
                    manifest: envelope.manifest.clone(),
                    reason: RejectionReason::Oversized,
                    detail: format!("{size} bytes, limit {max_frame}"),
                })
            } else {
                with_ref_codec(&shared.codec, || {
                    super::resolver::from_peer(&self.hello.node, || {
                        shared
                            .registry
                            .dispatch(&shared.system, envelope, max_frame)
                    })
                })
            };
            if let Err(r) = result {
                crate::metrics::inbound_rejected(r.reason);
                log(&self.hello.node, &r);
                answers.push(proto::Frame {
                    kind: Some(Kind::Rejection(r.into_proto())),
                });
            }
        }
        answers.push(proto::Frame {
            kind: Some(Kind::Received(proto::Received { up_to })),
        });
        answers
    }
}

/// Logs a rejection, as an error with what to do when an operator must act.
fn log(peer: &str, r: &Rejection) {
    let peer = bounded(peer, 64);
    match r.reason {
        // Permanent, and a sign of a peer running another version of a
        // message type (or of a hostile peer).
        RejectionReason::Undecodable => tracing::error!(
            peer = %peer,
            rejection = %r,
            "envelope refused: its payload is not the registered type; if the peer runs another version of it, give the changed type a new manifest"
        ),
        RejectionReason::Oversized => tracing::error!(
            peer = %peer,
            rejection = %r,
            "envelope refused: larger than max_frame; raise max_frame on both nodes or send smaller messages"
        ),
        _ => tracing::debug!(rejection = %r, "envelope rejected"),
    }
}
