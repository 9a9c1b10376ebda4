//! [`TlsSettings`]: the certificates a node proves itself with and checks
//! its peers against, and the rustls configurations built from them.
//!
//! Every link is mutual TLS 1.3 (rustls with the ring provider, no
//! OpenSSL): the accepting node requires a client certificate signed by the
//! configured CA, the connecting node requires the same of the server, and
//! each checks that the other's certificate names the node it claims to be
//! (the node name as a DNS subject alternative name). A peer that fails any
//! of this is refused during the TLS handshake, before a single gRPC frame
//! is read.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName};
use tokio_rustls::rustls;

use crate::error::Error;

/// The largest PEM file read, in bytes: a certificate chain or a key is a
/// few KiB, so a path naming something else is refused rather than read.
const MAX_PEM: u64 = 1 << 20;

/// Where a PEM document comes from.
#[derive(Clone, PartialEq, Eq)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn read(&self, setting: &'static str) -> Result<Vec<u8>, Error> {
        let fail = |reason: String| Error::Credentials { setting, reason };
        match self {
            Self::Inline(text) => Ok(text.clone().into_bytes()),
            Self::File(path) => {
                use std::io::Read;
                let file = std::fs::File::open(path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                let mut bytes = Vec::new();
                file.take(MAX_PEM + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                if bytes.len() as u64 > MAX_PEM {
                    return Err(fail(format!(
                        "{} is larger than {MAX_PEM} bytes: not a PEM file",
                        path.display()
                    )));
                }
                Ok(bytes)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Inline(_) => "<inline PEM>".to_owned(),
        }
    }
}

/// A node's TLS credentials: its certificate chain and private key, and
/// the CA that every peer's certificate must be signed by (the `cert`,
/// `key` and `ca` keys of `[remote]`). `Debug` never prints the key.
///
/// The certificate must name the node (its `node` setting) as a DNS
/// subject alternative name; so must every peer's.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsSettings {
    cert: Pem,
    key: Pem,
    ca: Pem,
}

impl TlsSettings {
    /// Credentials from PEM files, read when the node starts: `cert` holds
    /// the node's certificate (then any intermediates), `key` its private
    /// key (PKCS#8, PKCS#1 or SEC1), `ca` the certificates peers must chain
    /// to.
    pub fn from_files(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        ca: impl Into<PathBuf>,
    ) -> Self {
        Self {
            cert: Pem::File(cert.into()),
            key: Pem::File(key.into()),
            ca: Pem::File(ca.into()),
        }
    }

    /// Credentials from PEM text held in memory (certificates generated at
    /// run time, for example), in the same forms as
    /// [`from_files`](Self::from_files).
    pub fn from_pem(
        cert: impl Into<String>,
        key: impl Into<String>,
        ca: impl Into<String>,
    ) -> Self {
        Self {
            cert: Pem::Inline(cert.into()),
            key: Pem::Inline(key.into()),
            ca: Pem::Inline(ca.into()),
        }
    }

    /// Reads and checks the credentials, and builds both sides' rustls
    /// configurations for the node `node`.
    pub(crate) fn load(&self, node: &str) -> Result<Tls, Error> {
        let cert_fail = |reason: String| Error::Credentials {
            setting: "cert",
            reason,
        };
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&self.cert.read("cert")?)
                .collect::<Result<_, _>>()
                .map_err(|e| cert_fail(format!("{}: {e}", self.cert.describe())))?;
        let Some(own) = certs.first() else {
            return Err(cert_fail(format!(
                "{} holds no certificate",
                self.cert.describe()
            )));
        };
        if !names(own, node) {
            return Err(cert_fail(format!(
                "{}: the certificate does not name this node, {node:?}, as a DNS subject alternative name",
                self.cert.describe()
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key.read("key")?).map_err(|e| {
            Error::Credentials {
                setting: "key",
                reason: format!("{}: no private key: {e}", self.key.describe()),
            }
        })?;
        let ca_fail = |reason: String| Error::Credentials {
            setting: "ca",
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&self.ca.read("ca")?) {
            let ca = ca.map_err(|e| ca_fail(format!("{}: {e}", self.ca.describe())))?;
            roots
                .add(ca)
                .map_err(|e| ca_fail(format!("{}: {e}", self.ca.describe())))?;
        }
        if roots.is_empty() {
            return Err(ca_fail(format!(
                "{} holds no certificate",
                self.ca.describe()
            )));
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = &[&rustls::version::TLS13];
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| ca_fail(e.to_string()))?;
        let key_fail = |e: rustls::Error| Error::Credentials {
            setting: "key",
            reason: format!("{}: {e}", self.key.describe()),
        };
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(key_fail)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(key_fail)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(key_fail)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(key_fail)?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        })
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match &self.key {
            Pem::File(path) => path.display().to_string(),
            Pem::Inline(_) => "<redacted>".to_owned(),
        };
        f.debug_struct("TlsSettings")
            .field("cert", &self.cert.describe())
            .field("key", &key)
            .field("ca", &self.ca.describe())
            .finish()
    }
}

/// A node's loaded TLS configuration, both sides.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) connector: tokio_rustls::TlsConnector,
}

/// The name a connecting node expects the server's certificate to carry.
pub(crate) fn server_name(node: &str) -> Result<ServerName<'static>, String> {
    DnsName::try_from(node.to_owned())
        .map(ServerName::DnsName)
        .map_err(|_| format!("the node name {node:?} is not a DNS name, as TLS requires"))
}

/// Whether `cert` names `node` as a DNS subject alternative name. Only the
/// name: the chain was verified by the TLS handshake.
pub(crate) fn names(cert: &CertificateDer<'_>, node: &str) -> bool {
    let Ok(name) = server_name(node) else {
        return false;
    };
    rustls::server::ParsedCertificate::try_from(cert)
        .and_then(|parsed| rustls::client::verify_server_name(&parsed, &name))
        .is_ok()
}
