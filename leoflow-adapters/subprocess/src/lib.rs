//! Executor that runs each task attempt as one local OS process (development only, unsandboxed).
//!
//! Skeleton only: nothing is implemented yet; issue #6 (task execution) fills this crate.
