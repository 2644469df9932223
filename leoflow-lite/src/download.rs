//! Downloads of pinned files (the PostgreSQL build, the Airflow UI wheel): HTTP(S) GET into
//! memory behind a size cap, with a progress bar, checked against a digest pinned in the
//! source before anything is written. A failed or partial download leaves nothing behind.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest as _, Sha256, Sha512};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot download {what} from {url}: {message}; check the network (and HTTPS_PROXY behind a proxy){hint}")]
    Fetch {
        what: String,
        url: String,
        message: String,
        hint: String,
    },
    #[error("{what} from {source_name} does not match its pinned checksum ({algorithm} expected {expected}, got {actual}): the file is corrupt or not the pinned release; nothing was installed")]
    Checksum {
        what: String,
        source_name: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A digest pinned in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    /// Hexadecimal SHA-256 (PyPI).
    Sha256Hex(&'static str),
    /// npm's `dist.integrity`: `sha512-<base64>`.
    Integrity(&'static str),
}

impl Pinned {
    /// Checks `bytes`; `what` and `source_name` name them in the error.
    pub fn check(self, bytes: &[u8], what: &str, source_name: &str) -> Result<(), Error> {
        let (algorithm, expected, actual) = match self {
            Pinned::Sha256Hex(hex_digest) => (
                "sha256",
                hex_digest.to_string(),
                hex::encode(Sha256::digest(bytes)),
            ),
            Pinned::Integrity(sri) => (
                "sha512",
                sri.to_string(),
                format!(
                    "sha512-{}",
                    base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
                ),
            ),
        };
        if expected == actual {
            Ok(())
        } else {
            Err(Error::Checksum {
                what: what.into(),
                source_name: source_name.into(),
                algorithm,
                expected,
                actual,
            })
        }
    }
}

/// Downloads `url` (at most `cap` bytes) with a progress bar and checks it against
/// `pinned`. `hint` ends the error message (how to do without the network). Blocking: call
/// it outside async code.
pub fn fetch(
    url: &str,
    what: &str,
    cap: u64,
    pinned: Pinned,
    hint: &str,
) -> Result<Vec<u8>, Error> {
    let fail = |message: String| Error::Fetch {
        what: what.into(),
        url: url.into(),
        message,
        hint: hint.into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))?;
    let bytes = runtime.block_on(async {
        let mut builder =
            reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(30));
        for certificate in extra_roots().map_err(&fail)? {
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|e| fail(chain(&e)))?;
        let mut response = client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| fail(chain(&e)))?;
        let total = response.content_length();
        if total.is_some_and(|t| t > cap) {
            return Err(fail(format!("it is larger than the {cap}-byte cap")));
        }
        let bar = crate::progress::bytes(total, &format!("downloading {what}"));
        let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(cap) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    bytes.extend_from_slice(&chunk);
                    bar.inc(chunk.len() as u64);
                    if bytes.len() as u64 > cap {
                        bar.abandon();
                        return Err(fail(format!("it is larger than the {cap}-byte cap")));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    bar.abandon();
                    return Err(fail(format!("the transfer broke off: {e}")));
                }
            }
        }
        bar.finish_and_clear();
        if total.is_some_and(|t| t != bytes.len() as u64) {
            return Err(fail(format!(
                "got {} bytes of {}",
                bytes.len(),
                total.unwrap_or_default()
            )));
        }
        Ok(bytes)
    })?;
    pinned.check(&bytes, what, url)?;
    Ok(bytes)
}

/// The certificates of `$SSL_CERT_FILE` (a PEM bundle), trusted besides the built-in
/// roots: what a TLS-inspecting proxy needs, as for curl and OpenSSL.
fn extra_roots() -> Result<Vec<reqwest::Certificate>, String> {
    let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) else {
        return Ok(Vec::new());
    };
    let file = PathBuf::from(file);
    let pem = std::fs::read(&file)
        .map_err(|e| format!("cannot read SSL_CERT_FILE {}: {e}", file.display()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("SSL_CERT_FILE {} is not a PEM bundle: {e}", file.display()))
}

/// An error with its causes (reqwest's own message leaves out why a request failed).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// Reads a local copy of a pinned file (the offline path) and checks it.
pub fn read_local(path: &Path, what: &str, pinned: Pinned) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    pinned.check(&bytes, what, &path.display().to_string())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_in_their_pinned_encoding() {
        // `printf abc | sha512sum | xxd -r -p | base64`
        let abc = Pinned::Integrity(
            "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
        );
        assert!(abc.check(b"abc", "x", "y").is_ok());
        let err = abc
            .check(b"abd", "PostgreSQL", "t.tgz")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not match its pinned checksum")
                && err.contains("nothing was installed"),
            "{err}"
        );
        let sha256 =
            Pinned::Sha256Hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(sha256.check(b"abc", "x", "y").is_ok());
    }
}
