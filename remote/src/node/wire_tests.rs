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
