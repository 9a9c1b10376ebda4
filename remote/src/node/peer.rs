//! [`Peer`]: the task that owns the connection to one peer node, and the
//! [`PeerHandle`] that remote references queue their messages on.
//!
//! The task connects (exponential backoff with jitter between attempts),
//! authenticates, and then sends envelopes in batches over one stream, so
//! messages from this node to that one keep their order. What is queued
//! while the peer cannot be reached, and what was sent but not yet
//! reported `Received` when a connection dies, becomes a dead letter: this
//! layer is at-most-once, like the core; the delivery layer on top makes it
//! at-least-once. A rejection from the peer becomes a dead letter and a
//! transport-neutral [`Refusal`](courier_core::Refusal).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use courier_core::{ActorPath, Watcher, WatcherId};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tracing::Instrument;

use super::Shared;
use crate::auth::{self, Role};
use crate::metrics::PeerMetrics;
use crate::proto::remote_client::RemoteClient;
use crate::proto::{self, frame::Kind};
use crate::rejection::RejectionReason;
use crate::sink::Abandon;

/// How long a peer may leave sent messages unanswered before the
/// connection is given up.
const UNRESPONSIVE: Duration = Duration::from_secs(10);

/// Who watches actors on a peer: each hears `Terminated` when the
/// connection is lost.
type Watchers = Arc<Mutex<Vec<(ActorPath, Watcher)>>>;

/// One message on its way to a peer.
pub(crate) struct Outbound {
    pub(crate) path: ActorPath,
    pub(crate) recipient: String,
    pub(crate) manifest: String,
    pub(crate) payload: Bytes,
    pub(crate) type_name: &'static str,
    /// A request to stop the recipient rather than a message.
    pub(crate) stop: bool,
    /// Abandon the asks whose `ReplyTo`s the message carries, should it be
    /// refused or never sent.
    pub(crate) asks: Vec<Abandon>,
}

/// The sending side's handle on a peer connection.
#[derive(Clone)]
pub(crate) struct PeerHandle {
    pub(crate) queue: mpsc::Sender<Outbound>,
    watchers: Watchers,
}

impl PeerHandle {
    /// Tells `watcher` when the connection is lost (the actor at `path`
    /// is then unreachable), as Akka's remote death watch.
    pub(crate) fn watch(&self, path: ActorPath, watcher: Watcher) {
        lock(&self.watchers).push((path, watcher));
    }

    /// Forgets `watcher`.
    pub(crate) fn unwatch(&self, watcher: WatcherId) {
        lock(&self.watchers).retain(|(_, w)| w.id() != watcher);
    }
}

/// Poisoning is ignored: every critical section on the watcher list is one
/// `push`, `retain` or `take`, which leaves the list whole even if a thread
/// panicked while holding the lock.
fn lock(watchers: &Watchers) -> MutexGuard<'_, Vec<(ActorPath, Watcher)>> {
    courier_core::sync::lock(watchers)
}

/// The task that owns one peer connection.
pub(crate) struct Peer {
    shared: Weak<Shared>,
    node: String,
    host_port: String,
    rx: mpsc::Receiver<Outbound>,
    watchers: Watchers,
    next_seq: u64,
    /// Sent, not yet reported `Received`: (path, type) by sequence number.
    in_flight: BTreeMap<u64, InFlight>,
    metrics: PeerMetrics,
}

/// A message sent and not yet reported `Received`.
struct InFlight {
    path: ActorPath,
    type_name: &'static str,
    /// Kept so that a rejection can hand it back to the sender.
    payload: Bytes,
    /// A stop request, not a message: nobody to hand it back to.
    stop: bool,
    /// Abandon the asks it carries, if it is refused.
    asks: Vec<Abandon>,
}

/// How a connection ended.
enum Ended {
    /// Every handle is gone: stop.
    Closed,
    /// The connection failed: reconnect.
    Lost(String),
}

impl Peer {
    /// Starts the task for the node `node` at `host_port`; it runs until
    /// every handle is gone or the node shuts down.
    pub(crate) fn spawn(shared: &Arc<Shared>, node: &str, host_port: &str) -> PeerHandle {
        let (queue, rx) = mpsc::channel(shared.settings.queue_capacity);
        let watchers = Watchers::default();
        let handle = PeerHandle {
            queue,
            watchers: Arc::clone(&watchers),
        };
        let peer = Self {
            shared: Arc::downgrade(shared),
            node: node.to_owned(),
            host_port: host_port.to_owned(),
            rx,
            watchers,
            next_seq: 1,
            in_flight: BTreeMap::new(),
            metrics: PeerMetrics::new(node),
        };
        tokio::spawn(peer.run());
        handle
    }

    async fn run(mut self) {
        let mut delay = None;
        loop {
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            let (min, max) = (shared.settings.reconnect_min, shared.settings.reconnect_max);
            drop(shared);
            if let Some(wait) = delay {
                // Until the next attempt, what is queued cannot be sent:
                // it becomes a dead letter at once rather than waiting.
                if self.wait_unreachable(wait).await {
                    self.lost("node shut down");
                    return;
                }
            }
            let span = tracing::info_span!(
                "courier.remote.link",
                peer = %self.node,
                address = %self.host_port,
            );
            let (ended, connected) = self.session().instrument(span).await;
            if connected {
                delay = None;
            }
            match ended {
                Ended::Closed => {
                    self.lost("node shut down");
                    return;
                }
                Ended::Lost(reason) => {
                    self.metrics.failures.increment(1);
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

    /// One connection: connects, authenticates and sends until it ends;
    /// whether it got connected.
    async fn session(&mut self) -> (Ended, bool) {
        match self.connect().await {
            Ok((tx, inbound)) => {
                tracing::info!(peer = %self.node, address = %self.host_port, "connected to peer");
                let _up = self.metrics.up();
                (self.pump(tx, inbound).await, true)
            }
            Err(e) => (Ended::Lost(e), false),
        }
    }

    /// Connects and authenticates.
    async fn connect(
        &self,
    ) -> std::result::Result<(mpsc::Sender<proto::Frame>, Streaming<proto::Frame>), String> {
        let Some(shared) = self.shared.upgrade() else {
            return Err("node shut down".into());
        };
        let settings = &shared.settings;
        let timeout = settings.handshake_timeout;
        let limit = settings.grpc_message_limit();
        let secure = match &shared.tls {
            Some(tls) => Some(crate::transport::Secure {
                connector: tls.connector.clone(),
                name: crate::tls::server_name(&self.node)?,
            }),
            None => None,
        };
        let channel = crate::transport::channel(
            &shared.connect,
            &self.host_port,
            timeout,
            secure,
            (settings.keepalive_interval, settings.keepalive_timeout),
        )
        .await?;
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
        let response = tokio::time::timeout(timeout, client.link(ReceiverStream::new(rx)))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|s| format!("refused: {}", s.message()))?;
        let mut inbound = response.into_inner();
        let welcome = match tokio::time::timeout(timeout, inbound.message()).await {
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
        let proof = match &shared.secret {
            Some(secret) => {
                if !auth::check(secret, Role::Server, &ours, &welcome.nonce, &welcome.proof) {
                    return Err("the peer could not prove the shared secret".into());
                }
                auth::prove(secret, Role::Client, &welcome.nonce, &ours)
            }
            // TLS only: the server's certificate named the node.
            None => Vec::new(),
        };
        let proof = proto::Frame {
            kind: Some(Kind::Proof(proto::Proof { proof })),
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
        let Some((max_frame, max_batch, window)) = self.shared.upgrade().map(|s| {
            (
                s.settings.max_frame,
                s.settings.max_batch,
                s.settings.max_in_flight,
            )
        }) else {
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
                // A full window stops taking from the queue, so that the
                // queue fills and senders feel the back-pressure.
                next = self.rx.recv(), if self.in_flight.len() < window => {
                    let Some(first) = next else {
                        return Ended::Closed;
                    };
                    if !waiting {
                        progress = tokio::time::Instant::now();
                    }
                    let mut size = encoded_size(&first);
                    let mut envelopes = vec![self.envelope(first)];
                    // Batch what else is queued, up to one frame: a batch
                    // past max_frame would exceed gRPC's message limit and
                    // fail to encode, costing the connection and every
                    // message in flight. One that would not fit closes the
                    // batch and starts the next.
                    while size < max_frame / 2
                        && envelopes.len() < max_batch
                        && self.in_flight.len() < window
                    {
                        match self.rx.try_recv() {
                            Ok(more) => {
                                let more_size = encoded_size(&more);
                                if size + more_size > max_frame {
                                    let full = std::mem::take(&mut envelopes);
                                    if let Err(ended) = send_batch(&tx, full).await {
                                        return ended;
                                    }
                                    size = 0;
                                }
                                size += more_size;
                                envelopes.push(self.envelope(more));
                            }
                            Err(_) => break,
                        }
                    }
                    if let Err(ended) = send_batch(&tx, envelopes).await {
                        return ended;
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
                stop: out.stop,
                asks: out.asks,
            },
        );
        proto::Envelope {
            recipient: out.recipient,
            manifest: out.manifest,
            payload: out.payload,
            seq,
            stop: out.stop,
        }
    }

    fn rejected(&mut self, r: proto::Rejection) {
        let Some(sent) = self.in_flight.remove(&r.seq) else {
            return;
        };
        let reason = RejectionReason::from_proto(r.reason);
        self.metrics.rejected(reason);
        if let Some(shared) = self.shared.upgrade() {
            let detail = format!("rejected by {}: {reason}: {}", self.node, r.detail);
            shared.dead_letter(&sent.path, sent.type_name, detail.clone());
            // An ask in it ends now (its reply will never come) rather than
            // at its timeout, with the rejection as its error.
            crate::sink::abandon(sent.asks, &detail);
            if sent.stop {
                return;
            }
            // Transport-neutral, so that layers above need not know remote.
            shared.system.event_stream().publish(courier_core::Refusal {
                recipient: sent.path,
                message_type: sent.type_name,
                permanent: reason.is_permanent(),
                detail,
                payload: Arc::from(sent.payload.as_ref()),
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
        let watchers = std::mem::take(&mut *lock(&self.watchers));
        for (path, watcher) in watchers {
            watcher.notify_terminated(&path, 0);
        }
    }

    /// Waits `wait` before the next attempt, turning what is queued
    /// meanwhile into dead letters; whether every handle is gone.
    async fn wait_unreachable(&mut self, wait: Duration) -> bool {
        self.drain_queue("peer unreachable");
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return false,
                next = self.rx.recv() => {
                    let Some(out) = next else {
                        return true;
                    };
                    let reason = format!("peer unreachable: {}", self.node);
                    if let Some(shared) = self.shared.upgrade() {
                        shared.dead_letter(&out.path, out.type_name, reason.clone());
                    }
                    crate::sink::abandon(out.asks, &reason);
                }
            }
        }
    }

    fn drain_queue(&mut self, reason: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        while let Ok(out) = self.rx.try_recv() {
            let reason = format!("{reason}: {}", self.node);
            shared.dead_letter(&out.path, out.type_name, reason.clone());
            crate::sink::abandon(out.asks, &reason);
        }
    }
}

/// An envelope's share of a batch frame: what the sink checked against
/// `max_frame` (payload, recipient, manifest) and room for its protobuf
/// framing (tags, lengths, sequence number).
fn encoded_size(out: &Outbound) -> usize {
    const ENVELOPE_FRAMING: usize = 32;
    out.payload.len() + out.recipient.len() + out.manifest.len() + ENVELOPE_FRAMING
}

/// Sends one batch frame on the link.
async fn send_batch(
    tx: &mpsc::Sender<proto::Frame>,
    envelopes: Vec<proto::Envelope>,
) -> Result<(), Ended> {
    let frame = proto::Frame {
        kind: Some(Kind::Batch(proto::Batch { envelopes })),
    };
    match tokio::time::timeout(UNRESPONSIVE, tx.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ended::Lost("stream closed".into())),
        Err(_) => Err(Ended::Lost(format!("stuck sending for {UNRESPONSIVE:?}"))),
    }
}
