//! [`Node`]: a listening gRPC endpoint plus the connections to peers, and
//! the resolver that makes `courier://node@host:port/user/…` paths work
//! with [`ActorSystem::lookup`].
//!
//! The node itself only starts and stops things and owns what they share
//! ([`Shared`]): the settings, the registry, and one connection per peer.
//! Each direction of the wire lives in its own module: [`peer`] is the
//! outbound side (one task per peer node, sending in order), [`inbound`]
//! the server side of a peer's stream, and [`resolver`] maps paths to
//! references and back.

mod inbound;
pub(crate) mod peer;
mod resolver;
#[cfg(test)]
mod wire_tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use courier_core::{ActorPath, ActorSystem, DeadLetter, DeadLetterReason, RefCodec};
use tokio::sync::oneshot;

use self::inbound::Inbound;
use self::peer::{Peer, PeerHandle};
use self::resolver::{NodeCodec, NodeResolver};
use crate::error::{Error, Result};
use crate::listen;
use crate::proto::remote_server::RemoteServer;
use crate::refusals::Refusals;
use crate::registry::Registry;
use crate::settings::RemoteSettings;
use crate::tls::Tls;
use crate::transport::Transport;

/// Adds other services to a node's routes.
type Mount = Box<dyn FnOnce(tonic::service::Routes) -> tonic::service::Routes + Send>;

/// The scheme of remote paths.
pub const SCHEME: &str = "courier";

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

/// What a node's parts share. The node and its server hold it; peer tasks,
/// the resolver and remote references hold it weakly, so that they notice
/// when the node is gone instead of keeping it alive.
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
    /// The shared secret's bytes, when one is set.
    pub(crate) secret: Option<Vec<u8>>,
    /// Mutual TLS, when configured.
    pub(crate) tls: Option<Tls>,
    /// The rate-limited log of refused peers.
    pub(crate) refusals: Arc<Refusals>,
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
        settings.check()?;
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
        Self::serve(system, settings, registry, transport, None).await
    }

    /// [`start_with`](Self::start_with), also serving other gRPC services
    /// (courier's admin endpoint, for one) on the node's listener, under the
    /// same limits: `mount` adds them to the node's routes
    /// (`routes.add_service(…)`). They are served over mutual TLS
    /// only: every request reaching them comes from a client with a
    /// certificate the configured CA signed; a service tells who with
    /// [`PeerIdentity::of`](crate::PeerIdentity::of).
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid settings, and for settings without
    /// TLS (`tls`): under a shared secret alone nothing authenticates a
    /// connection before its first link, so no other service is served.
    pub async fn start_with_services(
        system: &ActorSystem,
        settings: RemoteSettings,
        registry: Registry,
        transport: Transport,
        mount: impl FnOnce(tonic::service::Routes) -> tonic::service::Routes + Send + 'static,
    ) -> Result<Self> {
        if settings.tls.is_none() {
            return Err(Error::Settings {
                setting: "tls",
                reason: "set (cert, key and ca) to serve other services such as the admin endpoint: they are served over mutual TLS only".into(),
            });
        }
        Self::serve(system, settings, registry, transport, Some(Box::new(mount))).await
    }

    async fn serve(
        system: &ActorSystem,
        settings: RemoteSettings,
        registry: Registry,
        transport: Transport,
        mount: Option<Mount>,
    ) -> Result<Self> {
        let credentials = settings.credentials()?;
        if credentials.tls.is_none() {
            tracing::warn!(
                node = %settings.node,
                "remote links are not encrypted (no TLS): the shared secret authenticates the handshake only; use TLS anywhere but on loopback"
            );
        }
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
            secret: credentials.secret,
            tls: credentials.tls,
            refusals: Arc::new(Refusals::new()),
        });
        let incoming = listen::accept(
            incoming,
            listen::Accept {
                tls: shared.tls.as_ref().map(|tls| tls.acceptor.clone()),
                max_connections: settings.max_connections,
                handshake_timeout: settings.handshake_timeout,
                idle_timeout: settings.idle_timeout,
                refusals: Arc::clone(&shared.refusals),
            },
        );
        let service = RemoteServer::new(Inbound {
            shared: Arc::clone(&shared),
        })
        .max_decoding_message_size(shared.settings.grpc_message_limit())
        .max_encoding_message_size(shared.settings.grpc_message_limit());
        // The hello is held to `max_hello` before tonic buffers any of it
        // (the limit above is for the frames after the handshake); the
        // handshake checks the hello itself exactly.
        let service = crate::hello_limit::HelloLimit::new(
            service,
            shared.settings.max_hello + crate::hello_limit::FRAME_OVERHEAD,
            Arc::clone(&shared.refusals),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let mut builder = tonic::transport::Server::builder()
                .max_concurrent_streams(settings.max_streams)
                .http2_keepalive_interval(Some(settings.keepalive_interval))
                .http2_keepalive_timeout(Some(settings.keepalive_timeout));
            let mut routes = tonic::service::Routes::new(service);
            if let Some(mount) = mount {
                routes = mount(routes);
            }
            let result = builder
                .add_routes(routes)
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
        courier_core::sync::lock(&self.peers)
    }

    /// Whether this node already has a connection to `node` at
    /// `host_port`.
    fn is_peer(&self, node: &str, host_port: &str) -> bool {
        self.lock_peers()
            .get(&format!("{node}@{host_port}"))
            .is_some_and(|peer| !peer.queue.is_closed())
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
        let handle = Peer::spawn(self, node, host_port);
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
