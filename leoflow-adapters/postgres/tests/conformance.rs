//! The whole `leoflow_ports::testkit` conformance kit against real Postgres: every behaviour
//! gets a fresh, migrated database on the shared test cluster.

use std::sync::Arc;
use std::time::Duration;

use leoflow_ports::testkit::clock::ManualClock;
use leoflow_ports::testkit::fixtures;
use leoflow_postgres::testing::{fresh_adapters, fresh_adapters_with};

leoflow_ports::datastore_conformance!(async { Arc::new(fresh_adapters().await.store) });

leoflow_ports::xcom_conformance!(async {
    let clock = ManualClock::new(fixtures::at(0));
    let adapters = fresh_adapters_with(|mut c| {
        c.xcom_max_value_bytes = 1024;
        c.xcom_ttl = Duration::from_secs(60);
        c
    })
    .await;
    (
        Arc::new(adapters.xcom.with_clock(Arc::new(clock.clone()))),
        clock,
    )
});

leoflow_ports::lock_conformance!(async {
    let clock = ManualClock::new(fixtures::at(0));
    let adapters = fresh_adapters().await;
    (
        Arc::new(adapters.locks.with_clock(Arc::new(clock.clone()))),
        clock,
    )
});

leoflow_ports::log_conformance!(async {
    // A short poll keeps a follower quick even if a NOTIFY were missed.
    let adapters = fresh_adapters_with(|mut c| {
        c.log_poll_interval = Duration::from_millis(200);
        c
    })
    .await;
    Arc::new(adapters.logs)
});

leoflow_ports::notify_conformance!(async { Arc::new(fresh_adapters().await.notifier) });
