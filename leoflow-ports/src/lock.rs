//! The `LockManager` port: named leases with a TTL, used to elect the one scheduler that
//! may dispatch. Every lease carries a fencing token.
//!
//! Contract, for every implementation:
//! - At most one holder has a given lease at any time.
//! - Each successful acquisition gets a token strictly greater than every token issued
//!   before for that name, so the datastore can refuse a deposed leader's writes.
//! - `renew` of a lease that was lost (expired and taken, or released) MUST fail with
//!   [`Error::Lost`]; `release` only releases the caller's own lease.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A monotonically increasing number proving how recent a lease is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FencingToken(pub u64);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub token: FencingToken,
    pub expires_at: DateTime<Utc>,
}

/// Lock failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("lease `{name}` is no longer held by this process")]
    Lost { name: String },
    #[error("lock service unavailable: {message}")]
    Unavailable { message: String, retryable: bool },
}

/// Grants leases.
#[async_trait]
pub trait LockManager: Send + Sync {
    /// The lease if it was free (or expired), `None` if someone else holds it.
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error>;
    /// Extends a held lease; the token stays the same.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, Error>;
    async fn release(&self, lease: &Lease) -> Result<(), Error>;
}
