//! The tiny binary that runs one task attempt and talks to the agent API.
//!
//! Skeleton only: nothing is implemented yet; issue #6 (task execution) fills this crate.
