//! Throwaway certificates for the examples' mutual TLS: a CA and one
//! certificate per name (naming it as a DNS subject alternative name, for
//! both ends of a link), as PEM files `ca.crt`, `NAME.crt` and `NAME.key`.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Writes a new CA called `ca_name` and a certificate for each of `names`
/// into `dir` (created if need be; older files of the same names are
/// replaced).
pub fn generate(dir: &Path, ca_name: &str, names: &[&str]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    std::fs::write(dir.join("ca.crt"), ca.self_signed(&ca_key)?.pem())?;
    let issuer = Issuer::new(ca, ca_key);
    for name in names {
        let mut params = CertificateParams::new(vec![(*name).to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, *name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        std::fs::write(
            dir.join(format!("{name}.crt")),
            params.signed_by(&key, &issuer)?.pem(),
        )?;
        write_private(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
    }
    Ok(())
}

/// Writes a key file that only this user can read (replacing an older one).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())?;
    Ok(())
}
