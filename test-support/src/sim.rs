//! A node's network inside a turmoil simulation: the same node code runs
//! over simulated TCP that the test partitions, holds and bounces.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use courier_remote::Transport;

/// A transport for the simulated host `host`: it listens on `port` on every
/// address of the host and dials peers over simulated TCP.
///
/// Call it inside the host's future (turmoil binds on the current host).
///
/// # Panics
///
/// If the port cannot be bound on the simulated host.
pub async fn transport(host: &str, port: u16) -> Transport {
    let listener = turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
        .await
        .expect("bind on the simulated host");
    let address = SocketAddr::new(turmoil::lookup(host), port);
    Transport::new(address, accepted(listener), |to: String| async move {
        turmoil::net::TcpStream::connect(to).await
    })
}

/// Accepted connections as a stream.
fn accepted(
    listener: turmoil::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<turmoil::net::TcpStream>> + Send {
    // A small queue: accepting runs ahead of the node by at most this much.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            if tx.send(accepted).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
