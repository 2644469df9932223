//! Secrets at rest: AES-256-GCM under the 32-byte `LEOFLOW_SECRET_KEY`, a fresh random
//! 12-byte nonce per value, stored as standard base64 of `nonce || ciphertext || tag`.
//! Connection passwords and extras are encrypted with it before the datastore sees them.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

const NONCE_BYTES: usize = 12;

/// Why a value could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot decrypt a stored secret: {0} (was LEOFLOW_SECRET_KEY changed? re-enter the connection)"
)]
pub struct Error(&'static str);

/// Encrypts and decrypts secrets with one key.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Base64 of `nonce || ciphertext || tag`.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .aead
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, Error> {
        let bytes = STANDARD.decode(stored).map_err(|_| Error("not base64"))?;
        if bytes.len() < NONCE_BYTES {
            return Err(Error("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| Error("authentication failed"))?;
        String::from_utf8(plain).map_err(|_| Error("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_never_appear_in_clear() {
        let c = Cipher::new(&[7; 32]);
        let sealed = c.encrypt("hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, c.encrypt("hunter2"), "nonces differ");
        assert_eq!(c.decrypt(&sealed).unwrap(), "hunter2");
        assert!(Cipher::new(&[8; 32]).decrypt(&sealed).is_err());
        assert!(c.decrypt("!!").is_err());
    }
}
