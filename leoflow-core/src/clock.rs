//! The real clock: wall time, and tokio timers for waiting. Tests use
//! `leoflow_ports::testkit::clock::ManualClock` instead.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use leoflow_ports::clock::Clock;

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).boxed()
    }
}
