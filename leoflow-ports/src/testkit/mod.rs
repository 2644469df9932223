//! The conformance kit (feature `testkit`): one behavioural suite per port that every
//! adapter runs to prove it keeps the port's contract, plus the test doubles the engine's
//! own tests use ([`clock::ManualClock`], [`fake_executor::FakeExecutor`]).
//!
//! # Suites
//!
//! Each suite module (`datastore`, `xcom`, `lock`, `log`, `notify`) has one
//! `pub async fn <behaviour>(port, …) -> Result<(), String>` per rule its port documents,
//! and a `run_all(factory)` that runs every behaviour on a fresh port. The `Err` names
//! what went wrong, with expected and actual values.
//!
//! An adapter's test file turns a suite into one `#[tokio::test]` per behaviour with the
//! suite's macro. The tests land in a module named `<suite>_conformance`, so a failure
//! reads `datastore_conformance::create_run_of_an_existing_run_is_a_conflict`:
//!
//! ```text
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use leoflow_ports::testkit::clock::ManualClock;
//! use leoflow_ports::testkit::fixtures;
//!
//! leoflow_ports::datastore_conformance!(async { Arc::new(MemoryStore::new()) });
//! leoflow_ports::log_conformance!(async { Arc::new(MemoryLogs::new()) });
//! leoflow_ports::notify_conformance!(async { Arc::new(MemoryNotifier::new()) });
//! leoflow_ports::lock_conformance!(async {
//!     let clock = ManualClock::new(fixtures::at(0));
//!     (Arc::new(MemoryLocks::new(Arc::new(clock.clone()))), clock)
//! });
//! leoflow_ports::xcom_conformance!(async {
//!     let clock = ManualClock::new(fixtures::at(0));
//!     let xcom = MemoryXCom::new(Arc::new(clock.clone()), 1024, Duration::from_secs(60));
//!     (Arc::new(xcom), clock)
//! });
//! ```
//!
//! # The factory
//!
//! The macro argument is an expression that is evaluated once per behaviour and yields a
//! future; awaiting it gives a fresh, empty port:
//!
//! - `datastore`, `log`, `notify`: an `Arc<T>` where `T` implements the port (an
//!   `Arc<dyn Port>` works too).
//! - `xcom`, `lock`: a tuple `(Arc<T>, ManualClock)`, where the port reads time from that
//!   clock. These ports expire things (values, leases), and the suite moves the clock
//!   instead of sleeping. The clock may start at any time.
//!
//! Behaviours of one port never share state, so a shared backend (one Postgres database)
//! must hand each call a clean slate (a fresh schema, or truncated tables); the tests of
//! a suite may run in parallel.
//!
//! `run_all` takes the same thing as a closure: `Fn() -> impl Future<Output = Arc<dyn
//! Port>>` (or the tuple).
//!
//! The calling crate needs `tokio` (features `macros` and `rt`) as a dev-dependency; the
//! generated tests are `#[::tokio::test]`.
//!
//! Some behaviours wait for something that must happen (a followed log line, a published
//! change); they give up after a few seconds of real time rather than hang the test run.

use std::fmt::Display;
use std::time::Duration;

/// Fails the enclosing behaviour with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!(
                "{} (testkit {}:{})",
                format!($($msg)+),
                file!(),
                line!()
            ));
        }
    };
}

/// Fails the enclosing behaviour unless `actual == expected`, showing both.
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr, $($msg:tt)+) => {
        // A `match` keeps temporaries in `$actual` alive for the comparison, as
        // `assert_eq!` does.
        match (&$actual, &$expected) {
            (actual, expected) => {
                if actual != expected {
                    return Err(format!(
                        "{}\n  expected: {:?}\n  actual:   {:?}\n  (testkit {}:{})",
                        format!($($msg)+),
                        expected,
                        actual,
                        file!(),
                        line!()
                    ));
                }
            }
        }
    };
}

pub mod clock;
pub mod datastore;
pub mod fake_executor;
pub mod fixtures;
pub mod lock;
pub mod log;
pub mod notify;
pub mod xcom;

/// How long a behaviour waits for something that must happen before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Turns a port error into the suite's `String` error, naming the call that failed.
pub(crate) trait Context<T> {
    fn ctx(self, call: &str) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn ctx(self, call: &str) -> Result<T, String> {
        self.map_err(|e| format!("{call} failed: {e}"))
    }
}

/// Waits up to [`PATIENCE`] for `fut`.
pub(crate) async fn within<F: std::future::Future>(
    what: &str,
    fut: F,
) -> Result<F::Output, String> {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .map_err(|_| format!("timed out after {PATIENCE:?} waiting for {what}"))
}

/// Expands to one `#[tokio::test]` per behaviour in a module `$module`. Used by the suite
/// macros; not part of the public surface.
#[doc(hidden)]
#[macro_export]
macro_rules! __leoflow_conformance_tests {
    (plain $suite:ident $module:ident ($port:path) ($factory:expr) behaviours [$($name:ident),* $(,)?]) => {
        #[allow(unused_imports, clippy::wildcard_imports)]
        mod $module {
            use super::*;
            $(
                #[::tokio::test]
                async fn $name() {
                    let port: ::std::sync::Arc<dyn $port> = $factory.await;
                    if let Err(message) = $crate::testkit::$suite::$name(&*port).await {
                        panic!("{}::{} failed: {}", stringify!($suite), stringify!($name), message);
                    }
                }
            )*
        }
    };
    (clocked $suite:ident $module:ident ($port:path) ($factory:expr) behaviours [$($name:ident),* $(,)?]) => {
        #[allow(unused_imports, clippy::wildcard_imports)]
        mod $module {
            use super::*;
            $(
                #[::tokio::test]
                async fn $name() {
                    let (port, clock) = $factory.await;
                    let port: ::std::sync::Arc<dyn $port> = port;
                    let clock: $crate::testkit::clock::ManualClock = clock;
                    if let Err(message) = $crate::testkit::$suite::$name(&*port, &clock).await {
                        panic!("{}::{} failed: {}", stringify!($suite), stringify!($name), message);
                    }
                }
            )*
        }
    };
}

/// Runs every behaviour of a suite on a fresh port, stopping at the first failure. Used
/// by the suites' `run_all`; not part of the public surface.
#[doc(hidden)]
#[macro_export]
macro_rules! __leoflow_run_all {
    (plain $factory:ident behaviours [$($name:ident),* $(,)?]) => {{
        $(
            let port = $factory().await;
            $name(&*port)
                .await
                .map_err(|e| format!("{}: {}", stringify!($name), e))?;
        )*
        Ok(())
    }};
    (clocked $factory:ident behaviours [$($name:ident),* $(,)?]) => {{
        $(
            let (port, clock) = $factory().await;
            $name(&*port, &clock)
                .await
                .map_err(|e| format!("{}: {}", stringify!($name), e))?;
        )*
        Ok(())
    }};
}
