//! Mutual TLS between nodes over real loopback sockets, with certificate
//! authorities generated at run time: the right CA works; a peer with a
//! certificate from another CA, an expired one, or none at all is refused
//! during the handshake and reaches no actor; a node checks that the
//! server it dials is the node it meant.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{ActorSystem, DeadLetter, DeadLetterReason, Props};
use courier_remote::{Node, RemoteSettings, TlsSettings};
use rustls_pki_types::pem::PemObject;
use support::certs::Ca;
use support::{Billing, Charge, billing_registry, charge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

struct Receiver {
    node: Node,
    seen: Arc<Mutex<Vec<Charge>>>,
    _system: ActorSystem,
}

async fn receiver(tls: TlsSettings) -> Receiver {
    let system = ActorSystem::new("billing");
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    system
        .spawn(
            Props::new(move || Billing {
                seen: Arc::clone(&s),
            })
            .with_name("billing"),
        )
        .expect("spawn");
    let node = Node::start(
        &system,
        RemoteSettings::with_tls("billing-node", tls),
        billing_registry(),
    )
    .await
    .expect("start receiver node");
    Receiver {
        node,
        seen,
        _system: system,
    }
}

async fn sender(tls: TlsSettings) -> (ActorSystem, Node) {
    let system = ActorSystem::new("shop");
    let node = Node::start(
        &system,
        RemoteSettings::with_tls("shop-node", tls),
        billing_registry(),
    )
    .await
    .expect("start sender node");
    (system, node)
}

async fn eventually(what: &str, check: impl FnMut() -> bool) {
    courier_test_support::eventually(what, Duration::from_secs(10), check).await;
}

/// Sends ten charges to `path` and returns the first dead letter's reason.
async fn refused_tells(system: &ActorSystem, path: &str) -> String {
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    let billing = system.lookup::<Charge>(path).expect("lookup");
    for cents in 1..=10 {
        billing.tell(charge(cents));
    }
    let letter = tokio::time::timeout(Duration::from_secs(20), dead.recv())
        .await
        .expect("dead letter in time")
        .expect("dead letter");
    assert!(letter.recipient.to_string().ends_with("/user/billing"));
    match letter.reason {
        DeadLetterReason::Other(reason) => reason.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_certificates_from_the_cluster_ca_talk() {
    let ca = Ca::new("cluster");
    let r = receiver(ca.tls("billing-node", &ca)).await;
    let (system, _node) = sender(ca.tls("shop-node", &ca)).await;
    let billing = system
        .lookup::<Charge>(&r.node.path_of("/user/billing"))
        .expect("lookup");
    for cents in 1..=100 {
        billing.tell(charge(cents));
    }
    eventually("100 received over TLS", || {
        r.seen.lock().expect("lock").len() == 100
    })
    .await;
    r.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_certificate_from_another_ca_reaches_no_actor() {
    let ca = Ca::new("cluster");
    let other = Ca::new("intruders");
    let r = receiver(ca.tls("billing-node", &ca)).await;
    // The intruder trusts the cluster's CA, so only the server can refuse.
    let (system, _node) = sender(other.tls("shop-node", &ca)).await;
    let reason = refused_tells(&system, &r.node.path_of("/user/billing")).await;
    assert!(reason.contains("unreachable"), "never sent: {reason}");
    assert!(
        r.seen.lock().expect("lock").is_empty(),
        "nothing got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_an_expired_certificate_reaches_no_actor() {
    let ca = Ca::new("cluster");
    let r = receiver(ca.tls("billing-node", &ca)).await;
    let (cert, key) = ca.cert("shop-node", true);
    let (system, _node) = sender(TlsSettings::from_pem(cert, key, ca.pem.clone())).await;
    let reason = refused_tells(&system, &r.node.path_of("/user/billing")).await;
    assert!(reason.contains("unreachable"), "never sent: {reason}");
    assert!(
        r.seen.lock().expect("lock").is_empty(),
        "nothing got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_server_whose_certificate_names_another_node() {
    let ca = Ca::new("cluster");
    let r = receiver(ca.tls("billing-node", &ca)).await;
    let (system, _node) = sender(ca.tls("shop-node", &ca)).await;
    // The right address, but the path says another node lives there.
    let path = format!("courier://ledger-node@{}/user/billing", r.node.address());
    let reason = refused_tells(&system, &path).await;
    assert!(reason.contains("unreachable"), "never sent: {reason}");
    assert!(
        r.seen.lock().expect("lock").is_empty(),
        "nothing got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused_before_http2() {
    let ca = Ca::new("cluster");
    let r = receiver(ca.tls("billing-node", &ca)).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca.pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(r.node.address())
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("billing-node").expect("name");
    // TLS 1.3: the client may finish its side before the server's verdict,
    // which then arrives as an alert on the first read.
    let outcome = match connector.connect(name, tcp).await {
        Err(e) => Err(e),
        Ok(mut tls) => {
            let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
                Ok(Ok(0)) => Ok(0),
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(e),
                Err(_) => panic!("the server neither refused nor answered"),
            }
        }
    };
    match outcome {
        Err(e) => assert!(
            e.to_string().to_lowercase().contains("certificate"),
            "refused for want of a certificate: {e}"
        ),
        Ok(n) => assert_eq!(
            n, 0,
            "no HTTP/2 byte reaches a client without a certificate"
        ),
    }
    assert!(r.seen.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_only_with_a_certificate_that_names_it() {
    let ca = Ca::new("cluster");
    let system = ActorSystem::new("x");
    let wrong = Node::start(
        &system,
        RemoteSettings::with_tls("billing-node", ca.tls("shop-node", &ca)),
        billing_registry(),
    )
    .await;
    assert!(
        matches!(
            wrong,
            Err(courier_remote::Error::Credentials {
                setting: "cert",
                ..
            })
        ),
        "{wrong:?}"
    );
    let (cert, _) = ca.cert("billing-node", false);
    let no_key = RemoteSettings::with_tls(
        "billing-node",
        TlsSettings::from_pem(cert, "not a key", ca.pem.clone()),
    );
    assert!(
        no_key.validate().is_ok(),
        "files and keys are read at start"
    );
    let no_key = Node::start(&system, no_key, billing_registry()).await;
    assert!(
        matches!(
            no_key,
            Err(courier_remote::Error::Credentials { setting: "key", .. })
        ),
        "{no_key:?}"
    );
    let missing = RemoteSettings::with_tls(
        "billing-node",
        TlsSettings::from_files(
            "/nonexistent/cert.pem",
            "/nonexistent/key.pem",
            "/nonexistent/ca.pem",
        ),
    );
    let missing = Node::start(&system, missing, billing_registry()).await;
    assert!(
        matches!(
            missing,
            Err(courier_remote::Error::Credentials {
                setting: "cert",
                ..
            })
        ),
        "{missing:?}"
    );
}

#[test]
fn debug_prints_neither_the_secret_nor_the_key() {
    let ca = Ca::new("cluster");
    let (cert, key) = ca.cert("billing-node", false);
    let mut settings = RemoteSettings::with_tls(
        "billing-node",
        TlsSettings::from_pem(cert, key.clone(), ca.pem.clone()),
    );
    settings.secret = Some(courier_remote::Secret::new("do-not-print-this-secret"));
    let printed = format!("{settings:?}");
    assert!(!printed.contains("do-not-print-this-secret"), "{printed}");
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    let body = key.lines().nth(1).expect("a key line");
    assert!(!printed.contains(body), "{printed}");
}

#[test]
fn without_tls_a_node_listens_on_loopback_only_unless_insecure() {
    let mut settings = RemoteSettings::new("billing-node", "a-secret-for-this-test-only");
    assert!(settings.validate().is_ok());
    settings.listen = "0.0.0.0:7000".parse().expect("address");
    assert!(matches!(
        settings.validate(),
        Err(courier_remote::Error::Settings { setting: "tls", .. })
    ));
    settings.insecure = true;
    assert!(settings.validate().is_ok());
    let sample = RemoteSettings::new("billing-node", "change me: at least 16 bytes");
    assert!(matches!(
        sample.validate(),
        Err(courier_remote::Error::Credentials {
            setting: "secret",
            ..
        })
    ));
}
