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
