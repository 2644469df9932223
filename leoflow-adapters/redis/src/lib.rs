//! Redis adapter: XComStore, LockManager and Notifier for the Pro edition.
//!
//! Skeleton only: nothing is implemented yet; issue #11 (Pro edition) fills this crate.
