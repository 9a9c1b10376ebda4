//! Throwaway certificate authorities and node certificates, generated at
//! run time (rcgen), for the TLS tests.

use courier_remote::TlsSettings;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority that signs node certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, the `ca` nodes trust.
    pub pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `node` (its name as a DNS SAN) and its key, in PEM,
    /// valid now unless `expired`.
    pub fn cert(&self, node: &str, expired: bool) -> (String, String) {
        let mut params = CertificateParams::new(vec![node.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, node);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// TLS settings for `node`, signed by this CA and trusting `trusts`.
    pub fn tls(&self, node: &str, trusts: &Ca) -> TlsSettings {
        let (cert, key) = self.cert(node, false);
        TlsSettings::from_pem(cert, key, trusts.pem.clone())
    }
}
