//! The `leoflow_ports::testkit` conformance suites for XCom, locks and notifications
//! against a real `redis-server` (one per test process, a fresh key prefix per behaviour).

use std::sync::Arc;
use std::time::Duration;

use leoflow_ports::testkit::clock::ManualClock;
use leoflow_ports::testkit::fixtures;
use leoflow_redis::testing::TestRedis;
use leoflow_redis::{RedisLocks, RedisNotifier, RedisXCom};

leoflow_ports::xcom_conformance!(async {
    let clock = ManualClock::new(fixtures::at(0));
    let conn = TestRedis::shared().fresh().await;
    let xcom = RedisXCom::new(
        &conn,
        Arc::new(clock.clone()),
        1024,
        Duration::from_secs(60),
    );
    (Arc::new(xcom), clock)
});

leoflow_ports::lock_conformance!(async {
    let clock = ManualClock::new(fixtures::at(0));
    let conn = TestRedis::shared().fresh().await;
    (
        Arc::new(RedisLocks::new(&conn, Arc::new(clock.clone()))),
        clock,
    )
});

leoflow_ports::notify_conformance!(async {
    let conn = TestRedis::shared().fresh().await;
    Arc::new(RedisNotifier::new(&conn))
});
