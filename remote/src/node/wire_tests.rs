//! The accepting side against a hand-written client speaking the wire
//! protocol directly, as a hostile or broken peer would.

#![allow(clippy::unwrap_used)]

use courier_core::ActorSystem;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::proto::remote_client::RemoteClient;
use crate::proto::{self, frame::Kind};
use crate::{Node, Registry, RemoteSettings};

async fn link_with(hello_name: String) -> Result<proto::Frame, tonic::Status> {
    let system = ActorSystem::new("x");
    let node = Node::start(
        &system,
        RemoteSettings::new("billing-node", "a-secret-for-wire-tests"),
        Registry::new(),
    )
    .await
    .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RemoteClient::new(channel);
    let (tx, rx) = mpsc::channel(4);
    tx.send(proto::Frame {
        kind: Some(Kind::Hello(proto::Hello {
            node: hello_name,
            nonce: crate::auth::nonce(),
        })),
    })
    .await
    .unwrap();
    let mut inbound = client.link(ReceiverStream::new(rx)).await?.into_inner();
    let first = inbound.message().await?;
    node.shutdown().await;
    first.ok_or_else(|| tonic::Status::unknown("no frame"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_beyond_max_hello_is_refused_and_a_small_one_welcomed() {
    let welcome = link_with("shop-node".into()).await.unwrap();
    assert!(matches!(welcome.kind, Some(Kind::Welcome(_))));
    let refused = link_with("x".repeat(4000)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_carries_at_most_max_streams_links() {
    let system = ActorSystem::new("x");
    let mut settings = RemoteSettings::new("billing-node", "a-secret-for-wire-tests");
    settings.max_streams = 1;
    settings.handshake_timeout = std::time::Duration::from_secs(30);
    settings.idle_timeout = std::time::Duration::from_secs(30);
    let node = Node::start(&system, settings, Registry::new())
        .await
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let open = |client: &mut RemoteClient<tonic::transport::Channel>| {
        let (tx, rx) = mpsc::channel(4);
        let hello = proto::Frame {
            kind: Some(Kind::Hello(proto::Hello {
                node: "shop-node".into(),
                nonce: crate::auth::nonce(),
            })),
        };
        let mut client = client.clone();
        async move {
            tx.send(hello).await.unwrap();
            let mut inbound = client.link(ReceiverStream::new(rx)).await?.into_inner();
            let welcome = inbound.message().await?;
            Ok::<_, tonic::Status>((tx, inbound, welcome))
        }
    };
    let mut client = RemoteClient::new(channel);
    let first = open(&mut client).await.unwrap();
    assert!(matches!(
        first.2.as_ref().and_then(|f| f.kind.as_ref()),
        Some(Kind::Welcome(_))
    ));
    // A second link on the same connection waits for the first to end.
    let mut second = tokio::spawn(open(&mut client));
    let early = tokio::time::timeout(std::time::Duration::from_secs(1), &mut second).await;
    assert!(
        early.is_err(),
        "the second link was not let in beside the first"
    );
    drop(first);
    let second = tokio::time::timeout(std::time::Duration::from_secs(10), second)
        .await
        .expect("the second link once the first ended")
        .unwrap()
        .unwrap();
    assert!(matches!(
        second.2.and_then(|f| f.kind),
        Some(Kind::Welcome(_))
    ));
}

/// A request body that sends `prefix` and then nothing more, ever.
struct Stalled(Option<bytes::Bytes>);

impl http_body::Body for Stalled {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        match self.0.take() {
            Some(data) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
            None => std::task::Poll::Pending,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_declared_beyond_max_hello_is_refused_before_its_bytes_arrive() {
    use tonic::codegen::http;
    use tower::ServiceExt;
    let system = ActorSystem::new("x");
    let mut settings = RemoteSettings::new("billing-node", "a-secret-for-wire-tests");
    // Long enough that only the hello's declared size can end the link
    // within the test's wait: without the limit the node would buffer
    // towards the 3 MiB and answer at this timeout, "unauthenticated".
    settings.handshake_timeout = std::time::Duration::from_secs(60);
    settings.idle_timeout = std::time::Duration::from_secs(60);
    let node = Node::start(&system, settings, Registry::new())
        .await
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The gRPC prefix of a 3 MiB message (below max_frame, far above
    // max_hello), and none of the message.
    let declared: u32 = 3 << 20;
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&declared.to_be_bytes());
    let request = http::Request::post(format!(
        "http://{}/courier.remote.v1.Remote/Link",
        node.address()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(tonic::body::Body::new(Stalled(Some(prefix.into()))))
    .unwrap();
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(20), channel.oneshot(request))
            .await
            .expect("refused on the declared size, not at the handshake timeout")
            .unwrap();
    let status = tonic::Status::from_header_map(response.headers()).expect("a grpc-status");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "hello too large");
    node.shutdown().await;
}
