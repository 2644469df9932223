//! Connecting to Redis: the URL check, the auto-reconnecting connection manager shared by
//! the adapters, and how driver errors become port errors.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, RedisError};

/// Reconnection attempts before a command fails, waiting 1 s, then 2 s… (at most
/// `MAX_RETRY_DELAY_MS`) in between.
const CONNECT_RETRIES: usize = 2;
const MAX_RETRY_DELAY_MS: u64 = 2000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A command unanswered this long fails instead of hanging the caller.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection failures, each saying what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("the Redis URL {url:?} is invalid ({reason}); use redis://host:6379/0, rediss://… or redis+unix:///path/to/redis.sock")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach Redis at {url}: {reason}; check that redis-server runs and LEOFLOW_REDIS_URL is right")]
    Unreachable { url: String, reason: String },
}

/// A client and its shared, auto-reconnecting connection. Cheap to clone.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) client: Client,
    pub(crate) manager: ConnectionManager,
    pub(crate) prefix: String,
}

impl RedisConnection {
    /// The key prefix this connection's adapters use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The shared connection, for commands outside the ports (health checks, admin).
    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Whether Redis answers a PING now (readiness probes).
    pub async fn ping(&self) -> Result<(), Error> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.manager.clone())
            .await
            .map(|_| ())
            .map_err(|e| Error::Unreachable {
                url: redact(&self.client.get_connection_info().addr.to_string()),
                reason: e.to_string(),
            })
    }
}

/// Connects to `url` (checked with a PING) and keeps every key under `prefix`.
pub async fn connect(url: &str, prefix: &str) -> Result<RedisConnection, Error> {
    let client = Client::open(url).map_err(|e| Error::InvalidUrl {
        url: redact(url),
        reason: e.to_string(),
    })?;
    let unreachable = |e: RedisError| Error::Unreachable {
        url: redact(url),
        reason: e.to_string(),
    };
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(CONNECT_RETRIES)
        .set_factor(2)
        .set_max_delay(MAX_RETRY_DELAY_MS)
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT);
    let mut manager = ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(unreachable)?;
    redis::cmd("PING")
        .query_async::<String>(&mut manager)
        .await
        .map_err(unreachable)?;
    Ok(RedisConnection {
        client,
        manager,
        prefix: prefix.to_string(),
    })
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A driver error as a port error's message, and whether retrying may help (connection
/// trouble, not a bad command).
#[allow(clippy::needless_pass_by_value)] // Used as `map_err(…)`, which hands over the error.
pub(crate) fn describe(e: RedisError) -> (String, bool) {
    (e.to_string(), retryable(&e))
}

fn retryable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.kind(), ErrorKind::TryAgain | ErrorKind::BusyLoadingError)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            redact("redis+unix:///tmp/r.sock"),
            "redis+unix:///tmp/r.sock"
        );
    }
}
