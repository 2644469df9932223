//! `PgLocks`: the `LockManager` port on session-level advisory locks. Each held lease owns
//! a dedicated connection (the session that holds the lock); its fencing token comes from
//! the `lease_tokens` sequence. `renew` checks in `pg_locks` that this very session still
//! holds the lock, so a dead or terminated connection is reported as [`Error::Lost`]. A
//! lease not renewed within its TTL is released by a watchdog, so the TTL means what the
//! port says even though advisory locks themselves never expire; as a backstop for a holder
//! process that hangs with its connection open, the session also gets an
//! `idle_session_timeout` of twice the TTL, after which Postgres ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leoflow_ports::clock::Clock;
use leoflow_ports::lock::{Error, FencingToken, Lease, LockManager};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

use crate::clock::SystemClock;

/// How many times (10 ms apart) `try_acquire` re-tries a lease that is past its expiry
/// but not yet unlocked.
const EXPIRED_RELEASE_RETRIES: u32 = 50;

/// The lease name the scheduler campaigns for.
pub const SCHEDULER_LEASE: &str = "scheduler";
/// The advisory lock id of [`SCHEDULER_LEASE`]: "LeoFlow" in ASCII, the id the Go
/// implementation used, so a Go and a Rust scheduler never lead the same database at once.
pub const SCHEDULER_LOCK_ID: i64 = 0x004C_656F_466C_6F77;

/// How long a lock query may take before the lease is considered lost.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock id of a lease name: [`SCHEDULER_LOCK_ID`] for the scheduler, else
/// the first 8 bytes of sha256("leoflow-lease:" + name).
pub fn lock_id(name: &str) -> i64 {
    if name == SCHEDULER_LEASE {
        return SCHEDULER_LOCK_ID;
    }
    let digest = Sha256::digest(format!("leoflow-lease:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A lease this process holds: the connection whose session owns the advisory lock.
struct Held {
    token: u64,
    holder: String,
    lock_id: i64,
    /// `None` once released, expired or lost.
    conn: Mutex<Option<PgConnection>>,
    /// Expiry on the lock manager's clock.
    deadline: SyncMutex<DateTime<Utc>>,
}

impl Held {
    fn deadline(&self) -> DateTime<Utc> {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The Postgres `LockManager`. Cheap to clone; clones share the held leases.
#[derive(Clone)]
pub struct PgLocks {
    options: PgConnectOptions,
    held: Arc<SyncMutex<HashMap<String, Arc<Held>>>>,
    /// A connection left over from a failed attempt, reused by the next one so a follower
    /// campaigning every few seconds does not open a connection each time.
    spare: Arc<Mutex<Option<PgConnection>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PgLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLocks").finish_non_exhaustive()
    }
}

fn unavailable(message: impl Into<String>) -> Error {
    Error::Unavailable {
        message: message.into(),
        retryable: true,
    }
}

async fn timed<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match tokio::time::timeout(QUERY_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what} took longer than {QUERY_TIMEOUT:?}"),
        ))),
    }
}

/// Asks Postgres to end the lease's session if it stays idle for twice the TTL: a holder
/// that stopped renewing without dying then loses its lock on the server side too. Best
/// effort: Postgres before 14 has no such setting, and the holder's own watchdog releases
/// at the TTL anyway.
async fn backstop(conn: &mut PgConnection, ttl: Duration) {
    let ms = ttl
        .saturating_mul(2)
        .as_millis()
        .clamp(1000, i32::MAX as u128);
    let set = sqlx::query("SELECT set_config('idle_session_timeout', $1, false)")
        .bind(ms.to_string())
        .execute(conn);
    if let Err(e) = timed("setting idle_session_timeout", set).await {
        tracing::debug!(error = %e, "cannot set idle_session_timeout on the lease session");
    }
}

async fn attempt_lock(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    timed(
        "pg_try_advisory_lock",
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(id)
            .fetch_one(conn),
    )
    .await
}

impl PgLocks {
    pub(crate) fn new(options: PgConnectOptions) -> PgLocks {
        PgLocks {
            options,
            held: Arc::default(),
            spare: Arc::default(),
            clock: Arc::new(SystemClock::default()),
        }
    }

    /// Uses `clock` for lease expiry (tests drive TTLs by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> PgLocks {
        self.clock = clock;
        self
    }

    fn expiry(&self, ttl: Duration) -> DateTime<Utc> {
        let now = self.clock.now();
        chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn held(&self, name: &str) -> Option<Arc<Held>> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn forget(&self, name: &str, token: u64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(name).is_some_and(|h| h.token == token) {
            held.remove(name);
        }
    }

    /// Closes the lease's session, which releases its lock, and forgets it.
    async fn drop_lease(&self, name: &str, held: &Held) {
        if let Some(conn) = held.conn.lock().await.take() {
            let _ = tokio::time::timeout(QUERY_TIMEOUT, conn.close()).await;
        }
        self.forget(name, held.token);
    }

    /// `pg_try_advisory_lock` on the spare connection, or on a new one if there is no
    /// spare or it died (a server restart kills idle sessions too).
    async fn try_lock(&self, id: i64) -> Result<(PgConnection, bool), Error> {
        let spare = self.spare.lock().await.take();
        if let Some(mut conn) = spare {
            if let Ok(got) = attempt_lock(&mut conn, id).await {
                return Ok((conn, got));
            }
        }
        let mut conn = timed("connecting", PgConnection::connect_with(&self.options))
            .await
            .map_err(crate::error::lock)?;
        let got = attempt_lock(&mut conn, id)
            .await
            .map_err(crate::error::lock)?;
        Ok((conn, got))
    }

    /// Whether the `leases` row of `name` says its holder's time is up.
    async fn recorded_lease_expired(&self, conn: &mut PgConnection, name: &str) -> bool {
        let row = sqlx::query("SELECT expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await;
        match row {
            Ok(Some(row)) => row
                .try_get::<DateTime<Utc>, _>("expires_at")
                .is_ok_and(|at| at <= self.clock.now()),
            _ => false,
        }
    }

    fn watch_expiry(&self, name: String, held: Arc<Held>) {
        let locks = self.clone();
        tokio::spawn(async move {
            loop {
                locks.clock.sleep_until(held.deadline()).await;
                if held.conn.lock().await.is_none() {
                    return;
                }
                if locks.clock.now() >= held.deadline() {
                    tracing::warn!(lease = %name, token = held.token, "lease not renewed within its TTL; releasing it");
                    locks.drop_lease(&name, &held).await;
                    return;
                }
            }
        });
    }
}

#[async_trait]
impl LockManager for PgLocks {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        if let Some(held) = self.held(name) {
            let expired = self.clock.now() >= held.deadline();
            if !expired && held.conn.lock().await.is_some() {
                return Ok(None);
            }
            self.drop_lease(name, &held).await;
        }
        let id = lock_id(name);
        let (mut conn, mut got) = self.try_lock(id).await?;
        // A lease past its expiry whose release is still in flight (its holder's expiry
        // watchdog is unlocking right now) counts as free: give the release a moment.
        let mut patience = EXPIRED_RELEASE_RETRIES;
        while !got && patience > 0 && self.recorded_lease_expired(&mut conn, name).await {
            patience -= 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            got = attempt_lock(&mut conn, id)
                .await
                .map_err(crate::error::lock)?;
        }
        if !got {
            *self.spare.lock().await = Some(conn);
            return Ok(None);
        }
        let expires_at = self.expiry(ttl);
        backstop(&mut conn, ttl).await;
        // From here on the lock is ours; any failure closes the connection, releasing it.
        let row = match timed(
            "recording the lease",
            sqlx::query(
                "WITH token AS (SELECT nextval('lease_tokens') AS token)
                 INSERT INTO leases (name, holder, token, lock_id, backend_pid, acquired_at, expires_at)
                 SELECT $1, $2, token, $3, pg_backend_pid(), now(), $4 FROM token
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,
                    token = EXCLUDED.token, lock_id = EXCLUDED.lock_id,
                    backend_pid = EXCLUDED.backend_pid, acquired_at = EXCLUDED.acquired_at,
                    expires_at = EXCLUDED.expires_at
                 RETURNING token",
            )
            .bind(name)
            .bind(holder)
            .bind(id)
            .bind(expires_at)
            .fetch_one(&mut conn),
        )
        .await
        {
            Ok(row) => row,
            Err(e) => {
                let _ = conn.close().await;
                return Err(crate::error::lock(e));
            }
        };
        let token: i64 = row.try_get("token").map_err(crate::error::lock)?;
        let token = u64::try_from(token).map_err(|_| unavailable("negative lease token"))?;
        let held = Arc::new(Held {
            token,
            holder: holder.to_string(),
            lock_id: id,
            conn: Mutex::new(Some(conn)),
            deadline: SyncMutex::new(expires_at),
        });
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), held.clone());
        self.watch_expiry(name.to_string(), held);
        Ok(Some(Lease {
            name: name.to_string(),
            holder: holder.to_string(),
            token: FencingToken(token),
            expires_at,
        }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, Error> {
        let lost = || Error::Lost {
            name: lease.name.clone(),
        };
        let Some(held) = self
            .held(&lease.name)
            .filter(|h| h.token == lease.token.0 && h.holder == lease.holder)
        else {
            return Err(lost());
        };
        let mut guard = held.conn.lock().await;
        let Some(conn) = guard.as_mut() else {
            drop(guard);
            self.forget(&lease.name, held.token);
            return Err(lost());
        };
        let expired = self.clock.now() >= held.deadline();
        let expires_at = self.expiry(ttl);
        // Is the lock still held by this very session? A terminated backend or a dropped
        // connection fails the query: the lock went with the session.
        let still_held = if expired {
            Ok(false)
        } else {
            timed(
                "checking the lease",
                sqlx::query_scalar::<_, bool>(
                    "WITH mine AS (
                        SELECT EXISTS (
                            SELECT 1 FROM pg_locks
                            WHERE locktype = 'advisory' AND granted
                              AND classid::bigint = (($1::bigint >> 32) & 4294967295)
                              AND objid::bigint = ($1::bigint & 4294967295)
                              AND objsubid = 1 AND pid = pg_backend_pid()) AS held
                     ),
                     touched AS (
                        UPDATE leases SET expires_at = $3
                        WHERE name = $2 AND token = $4 AND (SELECT held FROM mine)
                     )
                     SELECT held FROM mine",
                )
                .bind(held.lock_id)
                .bind(&lease.name)
                .bind(expires_at)
                .bind(i64::try_from(held.token).unwrap_or(i64::MAX))
                .fetch_one(&mut *conn),
            )
            .await
        };
        if let Ok(true) = still_held {
            *held.deadline.lock().unwrap_or_else(PoisonError::into_inner) = expires_at;
            backstop(conn, ttl).await;
            return Ok(Lease {
                expires_at,
                ..lease.clone()
            });
        }
        if let Err(e) = &still_held {
            tracing::warn!(lease = %lease.name, error = %e, "lease connection failed; the lease is lost");
        }
        if let Some(conn) = guard.take() {
            let _ = tokio::time::timeout(QUERY_TIMEOUT, conn.close()).await;
        }
        drop(guard);
        self.forget(&lease.name, held.token);
        Err(lost())
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        let Some(held) = self
            .held(&lease.name)
            .filter(|h| h.token == lease.token.0 && h.holder == lease.holder)
        else {
            // Not ours (any more): nothing to release.
            return Ok(());
        };
        let conn = held.conn.lock().await.take();
        self.forget(&lease.name, held.token);
        let Some(mut conn) = conn else {
            return Ok(());
        };
        let unlocked = timed("releasing the lease", async {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND token = $2")
                .bind(&lease.name)
                .bind(i64::try_from(held.token).unwrap_or(i64::MAX))
                .execute(&mut conn)
                .await?;
            sqlx::query_scalar::<_, bool>(
                "SELECT pg_advisory_unlock($1) FROM set_config('idle_session_timeout', '0', false)",
            )
            .bind(held.lock_id)
            .fetch_one(&mut conn)
            .await
        })
        .await;
        match unlocked {
            // The session is clean again: keep it for the next campaign.
            Ok(true) => *self.spare.lock().await = Some(conn),
            // Closing the session releases whatever it still holds.
            _ => {
                let _ = tokio::time::timeout(QUERY_TIMEOUT, conn.close()).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_lease_uses_the_go_lock_id() {
        assert_eq!(lock_id(SCHEDULER_LEASE), 0x004C_656F_466C_6F77);
        assert_ne!(lock_id("other"), lock_id("another"));
        assert_eq!(lock_id("other"), lock_id("other"));
    }
}
