//! The scheduler lease's keeper: a task of its own that renews the lease every third of its
//! TTL, so a scheduler loop busy with a long batch (or a slow datastore) never lets the
//! lease lapse, and that reports when the lease is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::TimeDelta;
use leoflow_ports::clock::Clock;
use leoflow_ports::lock::{Error, Lease, LockManager};

/// A held lease, renewed in the background until it is lost or released.
pub(crate) struct Keeper {
    lease: Arc<Mutex<Lease>>,
    lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Keeper {
    /// Starts renewing `lease` (granted for `ttl`) through `locks`.
    pub fn start(
        lease: Lease,
        ttl: Duration,
        locks: Arc<dyn LockManager>,
        clock: Arc<dyn Clock>,
    ) -> Keeper {
        let shared = Arc::new(Mutex::new(lease));
        let lost = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(renew(shared.clone(), lost.clone(), ttl, locks, clock));
        Keeper {
            lease: shared,
            lost,
            task,
        }
    }

    /// False once a renewal found the lease gone (or it expired while Redis was away).
    pub fn held(&self) -> bool {
        !self.lost.load(Ordering::Acquire)
    }

    pub fn lease(&self) -> Lease {
        self.lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops renewing and returns the lease (to release it).
    pub fn stop(self) -> Lease {
        self.task.abort();
        self.lease()
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn renew(
    shared: Arc<Mutex<Lease>>,
    lost: Arc<AtomicBool>,
    ttl: Duration,
    locks: Arc<dyn LockManager>,
    clock: Arc<dyn Clock>,
) {
    let every = TimeDelta::from_std(ttl / 3).unwrap_or(TimeDelta::seconds(1));
    let mut next = clock.now() + every;
    loop {
        clock.sleep_until(next).await;
        let current = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match locks.renew(&current, ttl).await {
            Ok(renewed) => {
                *shared.lock().unwrap_or_else(PoisonError::into_inner) = renewed;
                next = clock.now() + every;
            }
            Err(Error::Unavailable { message, .. }) if clock.now() < current.expires_at => {
                tracing::warn!(error = %message, "cannot renew the scheduler lease yet; retrying");
                next = clock.now() + TimeDelta::milliseconds(200);
            }
            Err(e) => {
                tracing::warn!(error = %e, "lost the scheduler lease; stepping down");
                lost.store(true, Ordering::Release);
                return;
            }
        }
    }
}
