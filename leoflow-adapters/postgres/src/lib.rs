//! Postgres adapter: durable Datastore, advisory locks, XCom, logs and LISTEN/NOTIFY.
//!
//! Skeleton only: nothing is implemented yet; issue #4 fills this crate.
