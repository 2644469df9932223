//! The pure Leoflow engine: DAG validation, the state-transition table, trigger rules,
//! branching, schedules, retries, dynamic mapping, the pure `reconcile` function, the
//! event-driven scheduler loop with two-phase dispatch, and the `Engine` builder that
//! wires it all to the ports.
//!
//! Architecture invariant: this crate does no I/O of its own and knows nothing about
//! Postgres, Redis, Kubernetes or HTTP; it talks to the world only through the traits in
//! `leoflow-ports`, and reads time only through the `Clock` port.

pub mod branch;
pub mod clock;
pub mod commands;
pub mod engine;
pub mod graph;
mod lease;
pub mod mapping;
pub mod plan;
mod recent;
pub mod reconcile;
pub mod retry;
pub mod router;
pub mod schedule;
mod scheduler;
pub mod transitions;
pub mod trigger;
pub mod validate;

#[cfg(test)]
mod testing;

pub use engine::{Dispatch, Engine, EngineBuilder, EngineConfig, LeaseConfig};
pub use router::ExecutorRouter;
