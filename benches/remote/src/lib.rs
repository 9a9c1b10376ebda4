//! A bare gRPC stream on courier's own protocol, with none of the node's
//! work (no auth, no registry, no actors): the limit the remote benches
//! compare a node against, in plaintext and over TLS (mutual TLS 1.3 with
//! rustls and ring, as the node uses). It lives outside the library on purpose: it
//! serves anyone who connects. The protocol is compiled here from the
//! remote crate's own `.proto`, so both always speak the same frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use proto::frame::Kind;
use proto::remote_client::RemoteClient;
use proto::remote_server::{Remote, RemoteServer};

/// The generated protocol types.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod proto {
    tonic::include_proto!("courier.remote.v1");
}

type FrameStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<proto::Frame, Status>> + Send>>;

/// A server that counts the envelopes it receives.
pub struct BareServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// Envelopes received so far.
    pub received: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for BareServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Counter {
    received: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl Remote for Counter {
    type LinkStream = FrameStream;

    async fn link(
        &self,
        request: Request<Streaming<proto::Frame>>,
    ) -> Result<Response<Self::LinkStream>, Status> {
        let mut inbound = request.into_inner();
        let received = Arc::clone(&self.received);
        let (keep_open, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            // Keep the response stream open while the client sends.
            let _keep_open = keep_open;
            while let Ok(Some(frame)) = inbound.message().await {
                if let Some(Kind::Batch(batch)) = frame.kind {
                    received.fetch_add(batch.envelopes.len() as u64, Ordering::Relaxed);
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Starts a counting server on loopback.
///
/// # Errors
///
/// When it cannot bind.
pub async fn serve() -> std::io::Result<BareServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let service = RemoteServer::new(Counter {
        received: Arc::clone(&received),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    Ok(BareServer {
        address,
        received,
        stop: Some(stop),
    })
}

/// Starts a counting server on loopback that speaks TLS with `tls`.
///
/// # Errors
///
/// When it cannot bind.
pub async fn serve_tls(
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
) -> std::io::Result<BareServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let service = RemoteServer::new(Counter {
        received: Arc::clone(&received),
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (conns, incoming) = mpsc::channel::<std::io::Result<TlsConn>>(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let (acceptor, conns) = (acceptor.clone(), conns.clone());
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    let _ = conns.send(Ok(TlsConn(stream))).await;
                }
            });
        }
    });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(ReceiverStream::new(incoming), async {
                let _ = stopped.await;
            }),
    );
    Ok(BareServer {
        address,
        received,
        stop: Some(stop),
    })
}

/// An accepted TLS connection, as tonic takes it.
struct TlsConn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tokio::io::AsyncRead for TlsConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

/// An open stream to a [`BareServer`].
pub struct BareClient {
    tx: mpsc::Sender<proto::Frame>,
    _inbound: Streaming<proto::Frame>,
}

impl BareClient {
    /// Connects and opens the stream.
    ///
    /// # Errors
    ///
    /// When it cannot connect.
    pub async fn connect(address: SocketAddr) -> Result<Self, Box<dyn std::error::Error>> {
        let mut client = RemoteClient::connect(format!("http://{address}")).await?;
        let (tx, rx) = mpsc::channel(64);
        let inbound = client.link(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self {
            tx,
            _inbound: inbound,
        })
    }

    /// Connects over TLS with `tls`, expecting the server's certificate to
    /// name `server`, and opens the stream.
    ///
    /// # Errors
    ///
    /// When it cannot connect or the handshake fails.
    pub async fn connect_tls(
        address: SocketAddr,
        tls: Arc<tokio_rustls::rustls::ClientConfig>,
        server: &str,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let connector = tokio_rustls::TlsConnector::from(tls);
        let name = rustls_pki_types::ServerName::try_from(server.to_owned())?;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let (connector, name) = (connector.clone(), name.clone());
                async move {
                    let tcp = tokio::net::TcpStream::connect(address).await?;
                    tcp.set_nodelay(true)?;
                    let tls = connector.connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            }))
            .await?;
        let mut client = RemoteClient::new(channel);
        let (tx, rx) = mpsc::channel(64);
        let inbound = client.link(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self {
            tx,
            _inbound: inbound,
        })
    }

    /// Sends one batch of `count` envelopes with `payload` bytes each, for
    /// `recipient` under `manifest`.
    ///
    /// # Errors
    ///
    /// When the stream is closed.
    pub async fn send_batch(
        &self,
        recipient: &str,
        manifest: &str,
        payload: &[u8],
        count: usize,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let payload = bytes::Bytes::copy_from_slice(payload);
        let envelopes = (0..count)
            .map(|i| proto::Envelope {
                recipient: recipient.to_owned(),
                manifest: manifest.to_owned(),
                payload: payload.clone(),
                seq: i as u64,
                stop: false,
            })
            .collect();
        self.tx
            .send(proto::Frame {
                kind: Some(Kind::Batch(proto::Batch { envelopes })),
            })
            .await
            .map_err(|_| "stream closed")?;
        Ok(())
    }
}
