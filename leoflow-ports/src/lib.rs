//! The Leoflow contract: the domain records every crate shares, the port traits adapters
//! implement, their error kinds, and (behind the `testkit` feature) the conformance suites
//! an adapter author runs to prove an adapter keeps the contract.
//!
//! Architecture invariant: this crate does no I/O and depends on no driver (no sqlx,
//! redis, kube, axum, hyper or reqwest). It says *what* must hold, never *how*.

pub mod clock;
pub mod dag;
pub mod datastore;
pub mod executor;
pub mod http_call;
pub mod lock;
pub mod log;
pub mod notify;
pub mod run;
pub mod state;
pub mod version;
pub mod xcom;

#[cfg(feature = "testkit")]
pub mod testkit;
