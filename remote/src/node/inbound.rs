//! [`Inbound`]: the server side of a peer's stream. It authenticates the
//! stream before reading anything else, then hands each batch to the
//! [`Registry`](crate::Registry), answering with `Received` and a rejection
//! per envelope it could not deliver.
//!
//! An unauthenticated peer gets nothing but a refusal; a bad envelope is
//! rejected alone (loudly when the cause is one an operator must fix), so
//! the rest of its batch and the stream go on.

use std::pin::Pin;
use std::sync::Arc;

use courier_core::with_ref_codec;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{HANDSHAKE, Shared};
use crate::auth::{self, Role};
use crate::proto::remote_server::Remote;
use crate::proto::{self, frame::Kind};
use crate::rejection::{Rejection, RejectionReason};

/// The server side of `Link`.
pub(crate) struct Inbound {
    pub(crate) shared: Arc<Shared>,
}

type FrameStream = Pin<Box<dyn Stream<Item = std::result::Result<proto::Frame, Status>> + Send>>;

#[tonic::async_trait]
impl Remote for Inbound {
    type LinkStream = FrameStream;

    async fn link(
        &self,
        request: Request<Streaming<proto::Frame>>,
    ) -> std::result::Result<Response<Self::LinkStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HANDSHAKE, inbound.message()).await {
            Ok(Ok(Some(proto::Frame {
                kind: Some(Kind::Hello(hello)),
            }))) => hello,
            _ => return Err(Status::unauthenticated("a link starts with hello")),
        };
        let shared = Arc::clone(&self.shared);
        let secret = shared.settings.secret.clone();
        let ours = auth::nonce();
        let (tx, rx) = mpsc::channel::<std::result::Result<proto::Frame, Status>>(64);
        let welcome = proto::Frame {
            kind: Some(Kind::Welcome(proto::Welcome {
                node: shared.settings.node.clone(),
                nonce: ours.clone(),
                proof: auth::prove(secret.as_bytes(), Role::Server, &hello.nonce, &ours),
            })),
        };
        if tx.send(Ok(welcome)).await.is_err() {
            return Err(Status::unavailable("closed"));
        }
        tokio::spawn(async move {
            let proven = match tokio::time::timeout(HANDSHAKE, inbound.message()).await {
                Ok(Ok(Some(proto::Frame {
                    kind: Some(Kind::Proof(p)),
                }))) => auth::check(
                    secret.as_bytes(),
                    Role::Client,
                    &ours,
                    &hello.nonce,
                    &p.proof,
                ),
                _ => false,
            };
            if !proven {
                tracing::warn!(peer = %hello.node, "peer refused: it could not prove the shared secret");
                let _ = tx
                    .send(Err(Status::unauthenticated("invalid credentials")))
                    .await;
                return;
            }
            tracing::debug!(peer = %hello.node, "peer authenticated");
            serve(&shared, &hello.node, &mut inbound, &tx).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Delivers an authenticated peer's batches until its stream ends.
async fn serve(
    shared: &Shared,
    peer: &str,
    inbound: &mut Streaming<proto::Frame>,
    tx: &mpsc::Sender<std::result::Result<proto::Frame, Status>>,
) {
    let max_frame = shared.settings.max_frame;
    let mut closing = shared.closing.subscribe();
    loop {
        let message = tokio::select! {
            message = inbound.message() => message,
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
                    shared
                        .registry
                        .dispatch(&shared.system, envelope, max_frame)
                })
            };
            if let Err(r) = result {
                match r.reason {
                    // Permanent, and a sign of a peer running another
                    // version of a message type (or of a hostile peer).
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
                answers.push(proto::Frame {
                    kind: Some(Kind::Rejection(r.into_proto())),
                });
            }
        }
        answers.push(proto::Frame {
            kind: Some(Kind::Received(proto::Received { up_to })),
        });
        for answer in answers {
            if tx.send(Ok(answer)).await.is_err() {
                return;
            }
        }
    }
}
