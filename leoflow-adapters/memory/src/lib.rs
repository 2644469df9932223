//! Every Leoflow port in memory: the datastore, XComs, leases, logs and change
//! notifications, for tests, embedding and benchmarks. Nothing survives the process.
//!
//! Each adapter is a plain value to wrap in an `Arc` and hand to the engine; all of them
//! keep their state behind a `std::sync::Mutex` that is never held across an `.await`.
//! Adapters that expire things (XComs, leases) read time from an injected `Clock`, so a
//! test drives them with a manual clock.

mod datastore;
mod lock;
mod log;
mod notify;
mod xcom;

pub use datastore::MemoryStore;
pub use lock::MemoryLocks;
pub use log::MemoryLogs;
pub use notify::MemoryNotifier;
pub use xcom::MemoryXCom;
