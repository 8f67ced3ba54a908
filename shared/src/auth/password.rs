//! Password hashing with argon2id, parameters as OWASP recommends (19 MiB, 2 passes, 1 lane):
//! well inside a 128 MB Lambda, and tens of milliseconds per hash.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

use crate::secret::Secret;

/// OWASP's argon2id minimum: m = 19456 KiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`), with a fresh random salt.
pub fn hash(password: &Secret) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher().hash_password(password.expose().as_bytes(), &salt).map(|h| h.to_string()).map_err(|_| HashError)
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
pub fn verify(password: &Secret, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(password.expose().as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the user does not exist, so that an unknown
/// username and a wrong password take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash(&Secret::new(random)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let pw = Secret::new("correct horse battery");
        let phc = hash(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(&pw, &phc));
        assert!(!verify(&Secret::new("wrong horse battery"), &phc));
        assert!(!verify(&pw, "not a hash"));
        assert_ne!(hash(&pw).unwrap(), phc, "salts differ");
    }
}
