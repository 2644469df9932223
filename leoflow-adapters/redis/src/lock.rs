//! `RedisLocks`: a lease is a hash (holder, token, expiry in ms on the injected clock) and
//! its fencing tokens come from a per-name counter that never expires. Acquire, renew and
//! release are Lua scripts, so each is one atomic compare-and-set on the server. Redis's
//! own key TTL (the lease's TTL) only cleans up after a holder that vanished.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use leoflow_ports::clock::Clock;
use leoflow_ports::lock::{Error, FencingToken, Lease, LockManager};
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};

use crate::connection::{describe, RedisConnection};
use crate::keys;

/// Grants the lease when it is absent or expired. KEYS: lease, token counter; ARGV: holder,
/// now (ms), expiry (ms), key TTL (ms). Answers the new token, or nil when held.
///
/// A token is never below the current time in milliseconds: a Redis without persistence
/// that restarts forgets the counter, and tokens starting again from 1 would be refused by
/// the datastore's fence forever. With the clock as a floor, a new grant still outranks
/// every earlier one (as long as replicas' clocks agree to within the time a failover
/// takes).
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local expires = redis.call('HGET', KEYS[1], 'expires')
        if expires and tonumber(expires) > tonumber(ARGV[2]) then
            return false
        end
        local token = redis.call('INCR', KEYS[2])
        if token < tonumber(ARGV[2]) then
            token = tonumber(ARGV[2])
            redis.call('SET', KEYS[2], ARGV[2])
        end
        redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token, 'expires', ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        return token
        ",
    )
});

/// Extends the lease if it is still this grant (same holder and token). KEYS: lease;
/// ARGV: holder, token, expiry (ms), key TTL (ms). Answers 1, or 0 when lost.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local held = redis.call('HMGET', KEYS[1], 'holder', 'token')
        if held[1] == ARGV[1] and held[2] == ARGV[2] then
            redis.call('HSET', KEYS[1], 'expires', ARGV[3])
            redis.call('PEXPIRE', KEYS[1], ARGV[4])
            return 1
        end
        return 0
        ",
    )
});

/// Deletes the lease if it is still this grant. KEYS: lease; ARGV: holder, token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local held = redis.call('HMGET', KEYS[1], 'holder', 'token')
        if held[1] == ARGV[1] and held[2] == ARGV[2] then
            redis.call('DEL', KEYS[1])
            return 1
        end
        return 0
        ",
    )
});

/// A `LockManager` on Redis.
pub struct RedisLocks {
    conn: ConnectionManager,
    prefix: String,
    clock: Arc<dyn Clock>,
}

impl RedisLocks {
    /// Leases expiring as `clock` tells time.
    pub fn new(conn: &RedisConnection, clock: Arc<dyn Clock>) -> RedisLocks {
        RedisLocks {
            conn: conn.manager.clone(),
            prefix: conn.prefix.clone(),
            clock,
        }
    }

    /// The deadline of a lease granted or renewed now.
    fn expiry(&self, ttl: Duration) -> DateTime<Utc> {
        let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        self.clock
            .now()
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Redis's TTL for the lease key: the lease's, at least one second.
fn key_ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1000)
}

fn unavailable(e: RedisError) -> Error {
    let (message, retryable) = describe(e);
    Error::Unavailable { message, retryable }
}

#[async_trait]
impl LockManager for RedisLocks {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        let expires_at = self.expiry(ttl);
        let token: Option<u64> = ACQUIRE
            .key(keys::lease(&self.prefix, name))
            .key(keys::lease_tokens(&self.prefix, name))
            .arg(holder)
            .arg(self.clock.now().timestamp_millis())
            .arg(expires_at.timestamp_millis())
            .arg(key_ttl_ms(ttl))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(token.map(|token| Lease {
            name: name.to_string(),
            holder: holder.to_string(),
            token: FencingToken(token),
            expires_at,
        }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, Error> {
        let expires_at = self.expiry(ttl);
        let renewed: i64 = RENEW
            .key(keys::lease(&self.prefix, &lease.name))
            .arg(&lease.holder)
            .arg(lease.token.0)
            .arg(expires_at.timestamp_millis())
            .arg(key_ttl_ms(ttl))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if renewed == 1 {
            Ok(Lease {
                expires_at,
                ..lease.clone()
            })
        } else {
            Err(Error::Lost {
                name: lease.name.clone(),
            })
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        RELEASE
            .key(keys::lease(&self.prefix, &lease.name))
            .arg(&lease.holder)
            .arg(lease.token.0)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
