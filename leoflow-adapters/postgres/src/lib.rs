//! Postgres adapter: the durable `Datastore`, plus `XComStore`, `LockManager` (advisory
//! locks with fencing tokens), `LogStore` and `Notifier` (LISTEN/NOTIFY) on one database.
//!
//! [`cluster`] runs a Postgres of our own from the system binaries (Lite's managed
//! datastore, and the tests'); [`export`] is a logical backup that needs no `pg_dump`.
//!
//! Start from [`PostgresConfig::build`]: it connects, applies the embedded migrations
//! (refusing a database migrated by a newer leoflow) and returns [`PostgresAdapters`].
//!
//! Architecture invariant: this is the only crate of the workspace that depends on sqlx;
//! it implements the traits of `leoflow_ports` and knows nothing of the engine.

mod clock;
pub mod cluster;
mod config;
mod database;
mod datastore;
mod error;
pub mod export;
mod listen;
mod lock;
mod log;
mod migrate;
mod notify;
mod xcom;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{migrate_database, PgHealthcheck, PostgresAdapters, PostgresConfig};
pub use database::{ensure_database, reset_database};
pub use datastore::PgStore;
pub use error::Error;
pub use lock::{lock_id, PgLocks, SCHEDULER_LEASE, SCHEDULER_LOCK_ID};
pub use log::PgLogs;
pub use migrate::schema_version;
pub use notify::PgNotifier;
pub use xcom::PgXCom;
