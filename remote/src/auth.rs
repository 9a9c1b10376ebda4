//! Mutual authentication of two nodes with a shared secret: a challenge and
//! response over fresh nonces from both sides, so neither the secret nor a
//! replayable token ever crosses the wire.
//!
//! The connecting node sends nonce `c`; the accepting node answers with its
//! nonce `s` and `HMAC(secret, "courier-server" ++ c ++ s)`; the connecting
//! node checks it and answers `HMAC(secret, "courier-client" ++ s ++ c)`.
//! Each side proves it knows the secret for this connection only.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Which side's proof.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    Server,
    Client,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Server => b"courier-server",
            Self::Client => b"courier-client",
        }
    }
}

/// A fresh random nonce (from the operating system's RNG).
pub(crate) fn nonce() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

fn mac(secret: &[u8], role: Role, first: &[u8], second: &[u8]) -> HmacSha256 {
    // HMAC takes keys of every length: this cannot fail, whatever the secret.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(role.label());
    mac.update(&(first.len() as u64).to_be_bytes());
    mac.update(first);
    mac.update(second);
    mac
}

/// The proof `role` sends: over its peer's nonce, then its own (server) or
/// the other way round (client), as the module explains.
pub(crate) fn prove(secret: &[u8], role: Role, first: &[u8], second: &[u8]) -> Vec<u8> {
    mac(secret, role, first, second)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Checks a proof in constant time.
pub(crate) fn check(secret: &[u8], role: Role, first: &[u8], second: &[u8], proof: &[u8]) -> bool {
    mac(secret, role, first, second).verify_slice(proof).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_checks_only_with_the_same_secret_role_and_nonces() {
        let (c, s) = (nonce(), nonce());
        let proof = prove(b"secret", Role::Server, &c, &s);
        assert!(check(b"secret", Role::Server, &c, &s, &proof));
        assert!(!check(b"other", Role::Server, &c, &s, &proof));
        assert!(!check(b"secret", Role::Client, &c, &s, &proof));
        assert!(!check(b"secret", Role::Server, &s, &c, &proof));
        assert!(!check(b"secret", Role::Server, &c, &nonce(), &proof));
        assert!(!check(b"secret", Role::Server, &c, &s, &proof[..16]));
    }
}
