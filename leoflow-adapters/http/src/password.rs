//! Password hashing for local users: argon2id with a random salt, stored as a PHC string
//! (`$argon2id$v=19$…`). `leoflow setup` hashes the admin's password with
//! [`hash_password`]; the login endpoint checks it with [`verify_password`].

use aes_gcm::aead::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not hash the password: {0}")]
pub struct Error(String);

/// The argon2id PHC string of `password` under a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("otter4821").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("otter4821", &h));
        assert!(!verify_password("otter4822", &h));
        assert!(!verify_password("otter4821", "not a hash"));
        assert_ne!(h, hash_password("otter4821").unwrap(), "salts differ");
    }
}
