//! [`Node`]: a listening gRPC endpoint plus the connections to peers, and
//! the resolver that makes `courier://node@host:port/user/…` paths work
//! with [`ActorSystem::lookup`].
//!
//! Outbound, each peer address has one task that owns the connection: it
//! connects (exponential backoff with jitter between attempts),
//! authenticates, and then sends envelopes in batches over one stream, so
//! messages from this node to that one keep their order. What is queued
//! while the peer cannot be reached, and what was sent but not yet
//! reported `Received` when a connection dies, becomes a dead letter: this
//! layer is at-most-once, like the core; the delivery layer on top makes it
//! at-least-once.
//!
//! Inbound, the server authenticates each stream before reading anything
//! else, then hands each batch to the [`Registry`], answering with
//! `Received` and a rejection per envelope it could not deliver.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use courier_core::{
    ActorPath, ActorSystem, DeadLetter, DeadLetterReason, RefCodec, Resolver, Watcher,
    with_ref_codec,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{self, Role};
use crate::error::{Error, Result};
use crate::frame::{Registry, Rejection, RejectionReason};
use crate::proto::remote_client::RemoteClient;
use crate::proto::remote_server::{Remote, RemoteServer};
use crate::proto::{self, frame::Kind};
use crate::transport::Transport;

/// The scheme of remote paths.
pub const SCHEME: &str = "courier";

/// The largest `max_frame` a node accepts: the codec's limit, 64 MiB.
pub const MAX_FRAME_LIMIT: usize = courier_codec::MAX_LEN;

/// The longest `reconnect_max` a node accepts: 1 hour. A peer that has been
/// unreachable longer is still tried once an hour.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(3600);

/// How long each side of a handshake waits for the other.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// How long a peer may leave sent messages unanswered before the
/// connection is given up.
const UNRESPONSIVE: Duration = Duration::from_secs(10);

/// A node's settings (the `[remote]` section of the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteSettings {
    /// This node's name, the `node` in `courier://node@host:port/…`.
    pub node: String,
    /// Where to listen. Default `127.0.0.1:0` (loopback, any free port).
    pub listen: SocketAddr,
    /// The secret shared by every node of the cluster.
    pub secret: String,
    /// The largest frame sent or accepted, in bytes. Default 4 MiB; from
    /// 1 KiB to [`MAX_FRAME_LIMIT`] (64 MiB).
    pub max_frame: usize,
    /// The first delay before reconnecting to a peer. Default 100 ms; more
    /// than zero.
    pub reconnect_min: Duration,
    /// The longest delay before reconnecting. Default 10 s; at least
    /// `reconnect_min`, at most [`MAX_RECONNECT_DELAY`] (1 hour).
    pub reconnect_max: Duration,
}

impl RemoteSettings {
    /// Settings with defaults for everything but the name and the secret.
    pub fn new(node: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret: secret.into(),
            max_frame: crate::frame::DEFAULT_MAX_FRAME,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
        }
    }

    /// Checks the settings; `Node::start` does too.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] naming the setting and what it must be.
    pub fn validate(&self) -> Result<()> {
        let invalid = |setting: &'static str, reason: &str| {
            Err(Error::Settings {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.node.is_empty()
            || !self
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return invalid("node", "a name of ASCII letters, digits, '-', '_' or '.'");
        }
        if self.secret.len() < 16 {
            return invalid("secret", "at least 16 bytes");
        }
        if self.max_frame < 1024 {
            return invalid("max_frame", "at least 1024 bytes");
        }
        if self.max_frame > MAX_FRAME_LIMIT {
            return invalid("max_frame", "at most 67108864 bytes (64 MiB)");
        }
        if self.reconnect_min.is_zero() {
            return invalid("reconnect_min", "more than zero");
        }
        if self.reconnect_max < self.reconnect_min {
            return invalid("reconnect_max", "at least reconnect_min");
        }
        if self.reconnect_max > MAX_RECONNECT_DELAY {
            return invalid("reconnect_max", "at most \"1h\"");
        }
        Ok(())
    }
}

/// A running node. Dropping it does not stop it; call
/// [`shutdown`](Self::shutdown).
pub struct Node {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Node({}@{})",
            self.shared.settings.node, self.shared.address
        )
    }
}

pub(crate) struct Shared {
    pub(crate) settings: RemoteSettings,
    pub(crate) system: ActorSystem,
    registry: Arc<Registry>,
    address: SocketAddr,
    peers: Mutex<HashMap<String, PeerHandle>>,
    /// Opens connections to peers.
    connect: crate::transport::Connect,
    /// Set when the node shuts down: inbound streams end.
    closing: tokio::sync::watch::Sender<bool>,
    /// Translates references inside messages.
    pub(crate) codec: Arc<dyn RefCodec>,
}

impl Node {
    /// Starts listening, and registers the `courier` scheme with `system`
    /// so that [`ActorSystem::lookup`] returns references to remote actors
    /// for the types in `registry`.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid settings, [`Error::Io`] when the
    /// address cannot be bound.
    pub async fn start(
        system: &ActorSystem,
        settings: RemoteSettings,
        registry: Registry,
    ) -> Result<Self> {
        settings.validate()?;
        let transport = Transport::tcp(settings.listen)
            .await
            .map_err(|source| Error::Io {
                context: format!("binding {}", settings.listen),
                source,
            })?;
        Self::start_with(system, settings, registry, transport).await
    }

    /// [`start`](Self::start) over a given [`Transport`] (a simulated
    /// network, for example); `settings.listen` is not used.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid settings.
    pub async fn start_with(
        system: &ActorSystem,
        settings: RemoteSettings,
        registry: Registry,
        transport: Transport,
    ) -> Result<Self> {
        settings.validate()?;
        let Transport {
            address,
            incoming,
            connect,
        } = transport;
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            system: system.clone(),
            registry: Arc::new(registry),
            address,
            peers: Mutex::new(HashMap::new()),
            connect,
            closing: tokio::sync::watch::Sender::new(false),
            codec: Arc::new(NodeCodec {
                system: system.clone(),
                prefix: format!("{SCHEME}://{}@{address}", settings.node),
            }),
        });
        let service = RemoteServer::new(Inbound {
            shared: Arc::clone(&shared),
        })
        // Room for a full frame plus its framing; the limit itself is
        // enforced per frame with a typed rejection.
        .max_decoding_message_size(shared.settings.max_frame + 64 * 1024)
        .max_encoding_message_size(shared.settings.max_frame + 64 * 1024);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "remote server failed");
            }
        });
        system.register_resolver(
            SCHEME,
            Arc::new(NodeResolver {
                shared: Arc::downgrade(&shared),
            }),
        );
        tracing::info!(node = %shared.settings.node, %address, "node listening");
        Ok(Self {
            shared,
            stop: Some(stop),
            server,
        })
    }

    /// The address the node listens on.
    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// The remote path of the local actor at `local` (`/user/…`), as other
    /// nodes address it.
    pub fn path_of(&self, local: &str) -> String {
        format!(
            "{SCHEME}://{}@{}{local}",
            self.shared.settings.node, self.shared.address
        )
    }

    /// Stops listening and closes every connection to peers; what is still
    /// queued for them becomes dead letters.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // End the inbound streams, so that the server's graceful shutdown
        // does not wait for peers to hang up.
        self.shared.closing.send_replace(true);
        let peers: Vec<PeerHandle> = self.shared.lock_peers().drain().map(|(_, p)| p).collect();
        drop(peers);
        let _ = (&mut self.server).await;
    }
}

impl Shared {
    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, PeerHandle>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection to the node `node` at `host_port`, started on first
    /// use.
    fn peer(self: &Arc<Self>, node: &str, host_port: &str) -> PeerHandle {
        let key = format!("{node}@{host_port}");
        let mut peers = self.lock_peers();
        if let Some(peer) = peers.get(&key) {
            if !peer.queue.is_closed() {
                return peer.clone();
            }
        }
        let (queue, rx) = mpsc::unbounded_channel();
        let watchers: Arc<Mutex<Vec<(ActorPath, Watcher)>>> = Arc::default();
        let handle = PeerHandle {
            queue,
            watchers: Arc::clone(&watchers),
        };
        let peer = Peer {
            shared: Arc::downgrade(self),
            node: node.to_owned(),
            host_port: host_port.to_owned(),
            rx,
            watchers,
            next_seq: 1,
            in_flight: BTreeMap::new(),
        };
        tokio::spawn(peer.run());
        peers.insert(key, handle.clone());
        handle
    }

    pub(crate) fn dead_letter(
        &self,
        recipient: &ActorPath,
        type_name: &'static str,
        reason: String,
    ) {
        self.system.publish_dead_letter(DeadLetter {
            recipient: recipient.clone(),
            message_type: type_name,
            reason: DeadLetterReason::Other(reason.into()),
        });
    }
}

/// One message on its way to a peer.
pub(crate) struct Outbound {
    pub(crate) path: ActorPath,
    pub(crate) recipient: String,
    pub(crate) manifest: String,
    pub(crate) payload: Bytes,
    pub(crate) type_name: &'static str,
}

/// The sending side's handle on a peer connection.
#[derive(Clone)]
pub(crate) struct PeerHandle {
    pub(crate) queue: mpsc::UnboundedSender<Outbound>,
    pub(crate) watchers: Arc<Mutex<Vec<(ActorPath, Watcher)>>>,
}

/// The task that owns one peer connection.
struct Peer {
    shared: std::sync::Weak<Shared>,
    node: String,
    host_port: String,
    rx: mpsc::UnboundedReceiver<Outbound>,
    watchers: Arc<Mutex<Vec<(ActorPath, Watcher)>>>,
    next_seq: u64,
    /// Sent, not yet reported `Received`: (path, type) by sequence number.
    in_flight: BTreeMap<u64, InFlight>,
}

/// A message sent and not yet reported `Received`.
struct InFlight {
    path: ActorPath,
    type_name: &'static str,
    /// Kept so that a rejection can hand it back to the sender.
    payload: Bytes,
}

/// How a connection ended.
enum Ended {
    /// Every handle is gone: stop.
    Closed,
    /// The connection failed: reconnect.
    Lost(String),
}

impl Peer {
    async fn run(mut self) {
        let mut delay = None;
        loop {
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            let (min, max) = (shared.settings.reconnect_min, shared.settings.reconnect_max);
            drop(shared);
            if let Some(wait) = delay {
                // Whatever was queued meanwhile cannot be sent now.
                self.drain_queue("peer unreachable");
                tokio::time::sleep(wait).await;
            }
            let ended = match self.connect().await {
                Ok((tx, inbound)) => {
                    delay = None;
                    self.pump(tx, inbound).await
                }
                Err(e) => Ended::Lost(e),
            };
            match ended {
                Ended::Closed => {
                    self.lost("node shut down");
                    return;
                }
                Ended::Lost(reason) => {
                    tracing::warn!(peer = %self.node, address = %self.host_port, %reason, "connection to peer lost");
                    self.lost(&format!("connection to {} lost: {reason}", self.node));
                    // Saturating, so that no setting can make the delay
                    // arithmetic panic (validate bounds them anyway).
                    let next = delay.map_or(min, |d: Duration| d.saturating_mul(2).min(max));
                    let jitter = next.mul_f64(0.2 * fastrand::f64());
                    delay = Some(next.saturating_add(jitter));
                }
            }
        }
    }

    /// Connects and authenticates.
    async fn connect(
        &self,
    ) -> std::result::Result<(mpsc::Sender<proto::Frame>, Streaming<proto::Frame>), String> {
        let Some(shared) = self.shared.upgrade() else {
            return Err("node shut down".into());
        };
        let secret = shared.settings.secret.as_bytes();
        let limit = shared.settings.max_frame + 64 * 1024;
        let channel =
            crate::transport::channel(&shared.connect, &self.host_port, HANDSHAKE).await?;
        let mut client = RemoteClient::new(channel)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        let (tx, rx) = mpsc::channel(64);
        let ours = auth::nonce();
        let hello = proto::Frame {
            kind: Some(Kind::Hello(proto::Hello {
                node: shared.settings.node.clone(),
                nonce: ours.clone(),
            })),
        };
        tx.send(hello)
            .await
            .map_err(|_| "stream closed".to_owned())?;
        let response = tokio::time::timeout(HANDSHAKE, client.link(ReceiverStream::new(rx)))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|s| format!("refused: {}", s.message()))?;
        let mut inbound = response.into_inner();
        let welcome = match tokio::time::timeout(HANDSHAKE, inbound.message()).await {
            Ok(Ok(Some(proto::Frame {
                kind: Some(Kind::Welcome(welcome)),
            }))) => welcome,
            Ok(Err(status)) => return Err(format!("refused: {}", status.message())),
            _ => return Err("no welcome from the peer".into()),
        };
        if welcome.node != self.node {
            return Err(format!(
                "the node at {} is {:?}, not {:?}",
                self.host_port, welcome.node, self.node
            ));
        }
        if !auth::check(secret, Role::Server, &ours, &welcome.nonce, &welcome.proof) {
            return Err("the peer could not prove the shared secret".into());
        }
        let proof = proto::Frame {
            kind: Some(Kind::Proof(proto::Proof {
                proof: auth::prove(secret, Role::Client, &welcome.nonce, &ours),
            })),
        };
        tx.send(proof)
            .await
            .map_err(|_| "stream closed".to_owned())?;
        Ok((tx, inbound))
    }

    /// Sends batches until the connection fails or every handle is gone.
    async fn pump(
        &mut self,
        tx: mpsc::Sender<proto::Frame>,
        mut inbound: Streaming<proto::Frame>,
    ) -> Ended {
        let Some(max_frame) = self.shared.upgrade().map(|s| s.settings.max_frame) else {
            return Ended::Closed;
        };
        // The last time the peer showed progress; a peer that sits on
        // messages for too long is treated as gone (a half-open connection
        // or a partition that drops packets without resetting anything).
        let mut progress = tokio::time::Instant::now();
        loop {
            let waiting = !self.in_flight.is_empty();
            tokio::select! {
                () = tokio::time::sleep_until(progress + UNRESPONSIVE), if waiting => {
                    return Ended::Lost(format!("no answer for {UNRESPONSIVE:?}"));
                }
                next = self.rx.recv() => {
                    let Some(first) = next else {
                        return Ended::Closed;
                    };
                    let mut size = first.payload.len();
                    let mut envelopes = vec![self.envelope(first)];
                    // Batch what else is queued, up to one frame.
                    while size < max_frame / 2 {
                        match self.rx.try_recv() {
                            Ok(more) => {
                                size += more.payload.len() + more.recipient.len();
                                envelopes.push(self.envelope(more));
                            }
                            Err(_) => break,
                        }
                    }
                    let frame = proto::Frame {
                        kind: Some(Kind::Batch(proto::Batch { envelopes })),
                    };
                    if !waiting {
                        progress = tokio::time::Instant::now();
                    }
                    match tokio::time::timeout(UNRESPONSIVE, tx.send(frame)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Ended::Lost("stream closed".into()),
                        Err(_) => return Ended::Lost(format!("stuck sending for {UNRESPONSIVE:?}")),
                    }
                }
                frame = inbound.message() => match frame {
                    Ok(Some(proto::Frame { kind: Some(Kind::Received(r)) })) => {
                        self.in_flight = self.in_flight.split_off(&(r.up_to + 1));
                        progress = tokio::time::Instant::now();
                    }
                    Ok(Some(proto::Frame { kind: Some(Kind::Rejection(r)) })) => self.rejected(r),
                    Ok(Some(_)) => {}
                    Ok(None) => return Ended::Lost("the peer closed the stream".into()),
                    Err(status) => return Ended::Lost(status.message().to_owned()),
                },
            }
        }
    }

    fn envelope(&mut self, out: Outbound) -> proto::Envelope {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.insert(
            seq,
            InFlight {
                path: out.path,
                type_name: out.type_name,
                payload: out.payload.clone(),
            },
        );
        proto::Envelope {
            recipient: out.recipient,
            manifest: out.manifest,
            payload: out.payload,
            seq,
        }
    }

    fn rejected(&mut self, r: proto::Rejection) {
        let Some(sent) = self.in_flight.remove(&r.seq) else {
            return;
        };
        use proto::rejection::Reason;
        let reason = match Reason::try_from(r.reason) {
            Ok(Reason::UnknownManifest) => RejectionReason::UnknownManifest,
            Ok(Reason::Undecodable) => RejectionReason::Undecodable,
            Ok(Reason::Oversized) => RejectionReason::Oversized,
            Ok(Reason::UnknownRecipient) => RejectionReason::UnknownRecipient,
            Ok(Reason::WrongType) => RejectionReason::WrongType,
            // A reason this version does not know: treat it as permanent.
            Ok(Reason::Unspecified) | Err(_) => RejectionReason::Undecodable,
        };
        if let Some(shared) = self.shared.upgrade() {
            shared.dead_letter(
                &sent.path,
                sent.type_name,
                format!("rejected by {}: {reason}: {}", self.node, r.detail),
            );
            // Transport-neutral, so that layers above need not know remote.
            shared.system.event_stream().publish(courier_core::Refusal {
                recipient: sent.path,
                message_type: sent.type_name,
                permanent: reason.is_permanent(),
                detail: format!("rejected by {}: {reason}: {}", self.node, r.detail),
                payload: std::sync::Arc::from(sent.payload.as_ref()),
            });
        }
    }

    /// The connection is gone: in-flight messages may be lost, and watchers
    /// of actors on the peer hear that it is unreachable.
    fn lost(&mut self, reason: &str) {
        let in_flight = std::mem::take(&mut self.in_flight);
        if let Some(shared) = self.shared.upgrade() {
            for (_, sent) in in_flight {
                shared.dead_letter(
                    &sent.path,
                    sent.type_name,
                    format!("{reason}; may not have arrived"),
                );
            }
        }
        let watchers =
            std::mem::take(&mut *self.watchers.lock().unwrap_or_else(PoisonError::into_inner));
        for (path, watcher) in watchers {
            watcher.notify_terminated(&path, 0);
        }
    }

    fn drain_queue(&mut self, reason: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        while let Ok(out) = self.rx.try_recv() {
            shared.dead_letter(&out.path, out.type_name, format!("{reason}: {}", self.node));
        }
    }
}

/// The server side of `Link`.
struct Inbound {
    shared: Arc<Shared>,
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
                    reason: crate::frame::RejectionReason::Oversized,
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

/// Resolves `courier://node@host:port/user/…` paths.
struct NodeResolver {
    shared: std::sync::Weak<Shared>,
}

impl Resolver for NodeResolver {
    fn resolve(
        &self,
        system: &ActorSystem,
        path: &ActorPath,
        message_type: TypeId,
        type_name: &'static str,
    ) -> courier_core::Result<Box<dyn Any + Send>> {
        let fail = |reason: String| courier_core::Error::Resolver {
            path: path.clone(),
            source: reason.into(),
        };
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| fail("the node has shut down".into()))?;
        let (node, host_port, local) = split(path.as_str()).map_err(fail)?;
        if node == shared.settings.node && host_port == shared.address.to_string() {
            // One of ours: no need to go through the network.
            let local = ActorPath::parse(local).map_err(|e| fail(e.to_string()))?;
            return shared
                .registry
                .local_ref(system, message_type, &local)
                .ok_or_else(|| {
                    fail(format!(
                        "{type_name} is not registered with this node's registry"
                    ))
                })?
                .map_err(|e| fail(e.to_string()));
        }
        let peer = shared.peer(node, host_port);
        shared
            .registry
            .remote_ref(
                system,
                message_type,
                crate::frame::RemoteTarget {
                    path: path.clone(),
                    recipient: local.to_owned(),
                    peer,
                    shared: Arc::downgrade(&shared),
                },
            )
            .ok_or_else(|| {
                fail(format!(
                    "{type_name} is not registered with this node's registry"
                ))
            })
    }
}

/// `courier://node@host:port/user/x` → (`node`, `host:port`, `/user/x`).
pub(crate) fn split(path: &str) -> std::result::Result<(&str, &str, &str), String> {
    let rest = path
        .strip_prefix("courier://")
        .ok_or_else(|| format!("{path:?} is not a courier:// path"))?;
    let slash = rest
        .find('/')
        .ok_or_else(|| format!("{path:?} has no actor path"))?;
    let (authority, local) = rest.split_at(slash);
    let (node, host_port) = authority
        .split_once('@')
        .ok_or_else(|| format!("{path:?}: the authority must be node@host:port"))?;
    if node.is_empty() || host_port.is_empty() {
        return Err(format!("{path:?}: the authority must be node@host:port"));
    }
    Ok((node, host_port, local))
}

/// A node's reference codec: local paths are exported under the node's
/// address; decoded paths are looked up in its system.
struct NodeCodec {
    system: ActorSystem,
    prefix: String,
}

impl RefCodec for NodeCodec {
    fn export(&self, path: &ActorPath) -> String {
        format!("{}{}", self.prefix, path.as_str())
    }

    fn system(&self) -> &ActorSystem {
        &self.system
    }
}
