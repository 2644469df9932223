//! Executor that performs http_api tasks inside the control plane with bounded concurrency.
//!
//! Skeleton only: nothing is implemented yet; issue #6 (task execution) fills this crate.
