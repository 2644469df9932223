//! Redis adapter for the Pro edition: `XComStore` (values with a TTL, a per-run index so
//! the API can list them), `LockManager` (leases with fencing tokens, compare-and-set in
//! Lua scripts) and `Notifier` (pub/sub that re-subscribes after a dropped connection and
//! tells its subscribers to resync). Every key lives under a configurable prefix, so
//! several installations can share one Redis.
//!
//! Expiry follows the injected `Clock` (a stored deadline checked on read) as well as
//! Redis's own TTLs (which only clean up), so tests drive time by hand.

mod connection;
mod keys;
mod lock;
mod notify;
mod xcom;

#[cfg(feature = "testing")]
pub mod testing;

pub use connection::{connect, Error, RedisConnection};
pub use lock::RedisLocks;
pub use notify::RedisNotifier;
pub use xcom::RedisXCom;
