//! `MemoryLocks`: named leases in one map, expiring on the injected clock, with one
//! fencing-token counter shared by every name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use leoflow_ports::clock::Clock;
use leoflow_ports::lock::{Error, FencingToken, Lease, LockManager};

/// An in-memory `LockManager`, for a single process (tests, Lite).
pub struct MemoryLocks {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The current lease of each name; an expired one stays until it is taken over.
    leases: HashMap<String, Lease>,
    /// The last token issued. One counter for every name keeps tokens comparable even
    /// across names, which is stricter than the contract asks.
    last_token: u64,
}

impl MemoryLocks {
    pub fn new(clock: Arc<dyn Clock>) -> MemoryLocks {
        MemoryLocks {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expiry(&self, ttl: Duration) -> DateTime<Utc> {
        let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        self.clock
            .now()
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The stored lease is the one the caller holds (same grant, not a later one).
fn is_same_grant(stored: &Lease, lease: &Lease) -> bool {
    stored.token == lease.token && stored.holder == lease.holder
}

fn lost(name: &str) -> Error {
    Error::Lost {
        name: name.to_string(),
    }
}

#[async_trait]
impl LockManager for MemoryLocks {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        let now = self.clock.now();
        let mut state = self.state();
        if state.leases.get(name).is_some_and(|l| l.expires_at > now) {
            return Ok(None);
        }
        state.last_token += 1;
        let lease = Lease {
            name: name.to_string(),
            holder: holder.to_string(),
            token: FencingToken(state.last_token),
            expires_at: self.expiry(ttl),
        };
        state.leases.insert(name.to_string(), lease.clone());
        Ok(Some(lease))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, Error> {
        let expires_at = self.expiry(ttl);
        let mut state = self.state();
        // A lease that expired but was not taken over is still this holder's: nobody else
        // got a token in between, so extending it is safe.
        match state.leases.get_mut(&lease.name) {
            Some(stored) if is_same_grant(stored, lease) => {
                stored.expires_at = expires_at;
                Ok(stored.clone())
            }
            _ => Err(lost(&lease.name)),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        let mut state = self.state();
        if state
            .leases
            .get(&lease.name)
            .is_some_and(|stored| is_same_grant(stored, lease))
        {
            state.leases.remove(&lease.name);
        }
        Ok(())
    }
}
