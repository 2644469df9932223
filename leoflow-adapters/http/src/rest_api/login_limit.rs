//! The login rate limit: failed logins per client IP in a fixed one-minute window. Only
//! failures spend budget; a caller at the limit is refused before its credentials are
//! checked. Keys on the TCP peer address, never on `X-Forwarded-For` (a client could
//! claim any address there).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Failed-login counters per client.
#[derive(Debug)]
pub struct LoginLimiter {
    limit: u32,
    windows: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl LoginLimiter {
    /// `limit` failures per minute (0 is taken as 1).
    pub fn new(limit: u32) -> LoginLimiter {
        LoginLimiter {
            limit: limit.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` has failures left in its current window.
    pub fn allows(&self, client: Option<IpAddr>) -> bool {
        let mut windows = self.windows.lock().expect("login limiter lock poisoned");
        let now = Instant::now();
        windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        windows
            .get(&client)
            .is_none_or(|(_, failures)| *failures < self.limit)
    }

    /// Spends one failure of `client`'s budget.
    pub fn failed(&self, client: Option<IpAddr>) {
        let mut windows = self.windows.lock().expect("login limiter lock poisoned");
        let now = Instant::now();
        let entry = windows.entry(client).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_in_a_minute_is_refused_per_client() {
        let l = LoginLimiter::new(5);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..5 {
            assert!(l.allows(a));
            l.failed(a);
        }
        assert!(!l.allows(a));
        assert!(l.allows(Some(IpAddr::from([10, 0, 0, 2]))));
    }
}
