//! Keyed hashes of usernames for logs and throttle keys. A failed login must not write what was
//! typed into the username field (often a password) to CloudWatch or DynamoDB, yet an operator
//! must be able to see that many failures are for one account: HMAC-SHA256 of the case-folded
//! username under a key derived from the JWT signing key (a secret; HMAC("fp/identity/v1")), so
//! nobody without the secret can test guesses against a logged hash. Rotating the signing key
//! changes every hash (old log lines and throttle counters stop matching new ones).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Hashes usernames under a key derived from a secret.
pub struct IdentityHasher {
    key: [u8; 32],
}

impl IdentityHasher {
    pub fn new(secret: &Secret) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
        mac.update(b"fp/identity/v1");
        let mut key = [0u8; 32];
        key.copy_from_slice(&mac.finalize().into_bytes());
        Self { key }
    }

    /// 32 hex characters (128 bits) naming `username`, case-folded, without revealing it.
    pub fn username(&self, username: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(username.to_lowercase().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

impl std::fmt::Debug for IdentityHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHasher([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_case_folded_and_hide_the_name() {
        let a = IdentityHasher::new(&Secret::new("k".repeat(40)));
        let b = IdentityHasher::new(&Secret::new("x".repeat(40)));
        let h = a.username("Admin");
        assert_eq!(h.len(), 32);
        assert_eq!(h, a.username("admin"));
        assert_ne!(h, b.username("admin"));
        assert_ne!(h, a.username("admin2"));
        assert!(!h.contains("admin"));
        // Not the plain SHA-256 of the name: without the key a guess cannot be checked.
        use sha2::Digest;
        assert!(!hex::encode(Sha256::digest(b"admin")).starts_with(&h));
    }
}
