//! [`Transport`]: where a node's connections come from and how it opens
//! them. TCP by default; tests and simulations (turmoil) inject their own,
//! so the very same node code runs over a simulated network.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::{Stream, StreamExt};

/// A byte stream a node can speak gRPC over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type Connect = Arc<dyn Fn(String) -> BoxFuture<io::Result<Conn>> + Send + Sync>;
pub(crate) type Incoming = Pin<Box<dyn Stream<Item = io::Result<Conn>> + Send>>;

/// A node's network: the address it advertises, the connections it
/// accepts, and how it connects to `host:port`.
pub struct Transport {
    pub(crate) address: SocketAddr,
    pub(crate) incoming: Incoming,
    pub(crate) connect: Connect,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transport({})", self.address)
    }
}

impl Transport {
    /// A transport from parts: `address` is what peers use to reach this
    /// node, `incoming` yields accepted connections, `connect` opens one to
    /// `host:port`.
    pub fn new<I, S, C, F>(address: SocketAddr, incoming: S, connect: C) -> Self
    where
        I: Io,
        S: Stream<Item = io::Result<I>> + Send + 'static,
        C: Fn(String) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<I>> + Send + 'static,
    {
        let connect = Arc::new(connect);
        Self {
            address,
            incoming: Box::pin(incoming.map(|r| r.map(Conn::new))),
            connect: Arc::new(move |to: String| {
                let connect = Arc::clone(&connect);
                Box::pin(async move { connect(to).await.map(Conn::new) })
            }),
        }
    }

    /// TCP, listening on `listen`.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn tcp(listen: SocketAddr) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|r| {
            r.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        });
        Ok(Self::new(address, incoming, |to: String| async move {
            let stream = tokio::net::TcpStream::connect(to).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }))
    }
}

/// One connection, whatever carries it: the bytes, what the TLS
/// handshake established about the peer, and the place it takes among the
/// node's connections (released when the connection closes).
pub(crate) struct Conn {
    io: Box<dyn Io>,
    info: ConnInfo,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// On accepted connections: closes the connection once it has carried
    /// no authenticated link for the idle timeout.
    idle: Option<Idle>,
}

/// What the server knows of a connection's peer; tonic hands it to every
/// request on the connection.
#[derive(Clone, Default)]
pub(crate) struct ConnInfo {
    /// The peer's verified certificate (over TLS only).
    pub(crate) cert: Option<rustls_pki_types::CertificateDer<'static>>,
    /// The authenticated links the connection carries.
    pub(crate) links: Arc<Links>,
}

/// How many authenticated links a connection carries, and since when it
/// carries none.
pub(crate) struct Links {
    state: std::sync::Mutex<(usize, tokio::time::Instant)>,
}

impl Default for Links {
    fn default() -> Self {
        Self {
            state: std::sync::Mutex::new((0, tokio::time::Instant::now())),
        }
    }
}

impl Links {
    /// Counts one authenticated link until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> LinkGuard {
        courier_core::sync::lock(&self.state).0 += 1;
        LinkGuard(Arc::clone(self))
    }

    /// Since when the connection has carried no link, if it carries none.
    fn idle_since(&self) -> Option<tokio::time::Instant> {
        let (count, since) = *courier_core::sync::lock(&self.state);
        (count == 0).then_some(since)
    }
}

/// One authenticated link on a connection.
pub(crate) struct LinkGuard(Arc<Links>);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let mut state = courier_core::sync::lock(&self.0.state);
        state.0 = state.0.saturating_sub(1);
        if state.0 == 0 {
            state.1 = tokio::time::Instant::now();
        }
    }
}

struct Idle {
    timeout: std::time::Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Conn {
    pub(crate) fn new(io: impl Io) -> Self {
        Self {
            io: Box::new(io),
            info: ConnInfo::default(),
            _permit: None,
            idle: None,
        }
    }

    /// An accepted connection, with what was learned of its peer, its
    /// place among the node's connections, and its idle timeout.
    pub(crate) fn accepted(
        io: impl Io,
        info: ConnInfo,
        permit: tokio::sync::OwnedSemaphorePermit,
        idle_timeout: std::time::Duration,
    ) -> Self {
        Self {
            io: Box::new(io),
            info,
            _permit: Some(permit),
            idle: Some(Idle {
                timeout: idle_timeout,
                sleep: Box::pin(tokio::time::sleep(idle_timeout)),
            }),
        }
    }

    /// Whether the connection has been idle too long; when not, the waker
    /// is registered for the moment it would be.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(idle) = &mut self.idle else {
            return false;
        };
        let Some(since) = self.info.links.idle_since() else {
            return false;
        };
        let deadline = since + idle.timeout;
        if idle.sleep.deadline() != deadline {
            idle.sleep.as_mut().reset(deadline);
        }
        idle.sleep.as_mut().poll(cx).is_ready()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.idle_expired(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no authenticated link within idle_timeout",
            )));
        }
        Pin::new(&mut *self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

/// How a connecting node secures a link: TLS to a server that must prove
/// it is the named node.
pub(crate) struct Secure {
    pub(crate) connector: tokio_rustls::TlsConnector,
    pub(crate) name: rustls_pki_types::ServerName<'static>,
}

/// Opens a tonic channel to `host_port` through `connect`, over TLS when
/// `secure` says so, with HTTP/2 keepalive pings every `ping` (a peer that
/// does not answer one within `ping_timeout` ends the channel).
pub(crate) async fn channel(
    connect: &Connect,
    host_port: &str,
    timeout: std::time::Duration,
    secure: Option<Secure>,
    keepalive: (std::time::Duration, std::time::Duration),
) -> Result<tonic::transport::Channel, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{host_port}"))
        .map_err(|e| format!("bad address {host_port}: {e}"))?
        .connect_timeout(timeout)
        .http2_keep_alive_interval(keepalive.0)
        .keep_alive_timeout(keepalive.1)
        .keep_alive_while_idle(true);
    let connect = Arc::clone(connect);
    let to = host_port.to_owned();
    let secure = secure.map(Arc::new);
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let (connect, to, secure) = (Arc::clone(&connect), to.clone(), secure.clone());
        async move {
            let conn = connect(to).await?;
            let conn = match secure {
                Some(secure) => {
                    Conn::new(secure.connector.connect(secure.name.clone(), conn).await?)
                }
                None => conn,
            };
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(conn))
        }
    });
    tokio::time::timeout(timeout, endpoint.connect_with_connector(connector))
        .await
        .map_err(|_| format!("connecting to {host_port} timed out"))?
        .map_err(|e| format!("cannot connect to {host_port}: {e}"))
}
