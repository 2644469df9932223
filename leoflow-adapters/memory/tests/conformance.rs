//! Every conformance suite of `leoflow_ports::testkit`, run against the memory adapters:
//! one test per behaviour.

use std::sync::Arc;
use std::time::Duration;

use leoflow_memory::{MemoryLocks, MemoryLogs, MemoryNotifier, MemoryStore, MemoryXCom};
use leoflow_ports::testkit::clock::ManualClock;
use leoflow_ports::testkit::fixtures;

/// A small cap, so the size tests build small values.
const MAX_VALUE_BYTES: usize = 4096;

leoflow_ports::datastore_conformance!(async { Arc::new(MemoryStore::new()) });

leoflow_ports::xcom_conformance!(async {
    let clock = ManualClock::new(fixtures::at(0));
    let xcom = MemoryXCom::new(
        Arc::new(clock.clone()),
        MAX_VALUE_BYTES,
        Duration::from_secs(3600),
    );
    (Arc::new(xcom), clock)
});

leoflow_ports::lock_conformance!(async {
    let clock = ManualClock::new(fixtures::at(0));
    (Arc::new(MemoryLocks::new(Arc::new(clock.clone()))), clock)
});

leoflow_ports::log_conformance!(async { Arc::new(MemoryLogs::new()) });

leoflow_ports::notify_conformance!(async { Arc::new(MemoryNotifier::new()) });

/// `run_all` drives the same behaviours as the macros; running it once proves the two
/// lists stay wired (and that `run_all` works for adapters that prefer it).
#[tokio::test]
async fn run_all_passes_for_every_suite() {
    use leoflow_ports::testkit::{datastore, lock, log, notify, xcom};
    datastore::run_all(|| async { Arc::new(MemoryStore::new()) as _ })
        .await
        .unwrap();
    xcom::run_all(|| async {
        let clock = ManualClock::new(fixtures::at(0));
        let xcom = MemoryXCom::new(Arc::new(clock.clone()), 1024, Duration::from_secs(60));
        (Arc::new(xcom) as _, clock)
    })
    .await
    .unwrap();
    lock::run_all(|| async {
        let clock = ManualClock::new(fixtures::at(0));
        (
            Arc::new(MemoryLocks::new(Arc::new(clock.clone()))) as _,
            clock,
        )
    })
    .await
    .unwrap();
    log::run_all(|| async { Arc::new(MemoryLogs::new()) as _ })
        .await
        .unwrap();
    notify::run_all(|| async { Arc::new(MemoryNotifier::new()) as _ })
        .await
        .unwrap();
}
