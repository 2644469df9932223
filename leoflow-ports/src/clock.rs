//! Time as a port: the engine asks a `Clock` for the current time and to wait until a
//! deadline, so tests drive time by hand and never sleep. Implementations (system and
//! manual) live in `leoflow_core::clock`.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// The source of "now" and of timed wake-ups.
///
/// Contract: `now()` MUST never go backwards between two calls on one clock;
/// `sleep_until(t)` MUST resolve once `now() >= t` (immediately if it already is).
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;
}
