//! The system clock, used where a port needs "now" and the caller injected no clock.
//! (The engine's own clocks live in `leoflow_core::clock`; adapters do not depend on it.)

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use leoflow_ports::clock::Clock;

/// Wall-clock time that never goes backwards between two calls.
#[derive(Debug, Default)]
pub(crate) struct SystemClock {
    last: Mutex<Option<DateTime<Utc>>>,
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = match *last {
            Some(prev) if prev > now => prev,
            _ => now,
        };
        *last = Some(now);
        now
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (deadline - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}
