//! Leases on real advisory locks: failover when the holder's connection dies, the Go-
//! compatible scheduler lock id, TTL expiry on the system clock, and the server-side
//! backstop that frees the lock of a holder that hangs without dying.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leoflow_ports::lock::{Error, LockManager};
use leoflow_ports::testkit::clock::ManualClock;
use leoflow_ports::testkit::fixtures;
use leoflow_postgres::testing::{fresh_adapters, TestCluster};
use leoflow_postgres::{PostgresConfig, SCHEDULER_LEASE, SCHEDULER_LOCK_ID};

const TTL: Duration = Duration::from_secs(10);

/// Two lock managers on one database, as two replicas would have.
async fn two_replicas() -> (
    leoflow_postgres::PostgresAdapters,
    leoflow_postgres::PostgresAdapters,
) {
    let url = TestCluster::shared()
        .fresh_database()
        .await
        .expect("a fresh database");
    let a = PostgresConfig::new(url.clone())
        .build()
        .await
        .expect("replica a starts");
    let b = PostgresConfig::new(url)
        .build()
        .await
        .expect("replica b starts");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_fails_over_when_the_holders_connection_dies() {
    let (a, b) = two_replicas().await;
    let lease = a
        .locks
        .try_acquire(SCHEDULER_LEASE, "a", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(b
        .locks
        .try_acquire(SCHEDULER_LEASE, "b", TTL)
        .await
        .unwrap()
        .is_none());

    // Kill the holder's session from outside, as a crashed node or a DBA would.
    let killed: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend(backend_pid) FROM leases WHERE name = $1")
            .bind(SCHEDULER_LEASE)
            .fetch_one(b.pool())
            .await
            .unwrap();
    assert!(killed);

    let started = Instant::now();
    let taken = loop {
        if let Some(l) = b
            .locks
            .try_acquire(SCHEDULER_LEASE, "b", TTL)
            .await
            .unwrap()
        {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the lock was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "failover after the holder's backend was terminated: {:?}",
        started.elapsed()
    );
    assert!(taken.token > lease.token, "{taken:?} after {lease:?}");
    let renewed = a.locks.renew(&lease, TTL).await;
    assert!(
        matches!(&renewed, Err(Error::Lost { name }) if name == SCHEDULER_LEASE),
        "{renewed:?}"
    );
    // The deposed holder cannot take it back, and the new holder keeps renewing.
    assert!(a
        .locks
        .try_acquire(SCHEDULER_LEASE, "a", TTL)
        .await
        .unwrap()
        .is_none());
    b.locks.renew(&taken, TTL).await.unwrap();
}

#[tokio::test]
async fn the_scheduler_lease_is_the_go_advisory_lock() {
    let a = fresh_adapters().await;
    let lease = a
        .locks
        .try_acquire(SCHEDULER_LEASE, "a", TTL)
        .await
        .unwrap()
        .unwrap();
    let (classid, objid): (i64, i64) = sqlx::query_as(
        "SELECT classid::bigint, objid::bigint FROM pg_locks
         WHERE locktype = 'advisory' AND objsubid = 1 AND granted
           AND pid = (SELECT backend_pid FROM leases WHERE name = 'scheduler')",
    )
    .fetch_one(a.pool())
    .await
    .unwrap();
    assert_eq!((classid << 32) | objid, SCHEDULER_LOCK_ID);
    assert_eq!(
        SCHEDULER_LOCK_ID, 0x004C_656F_466C_6F77,
        "\"LeoFlow\" in ASCII"
    );
    // A Go scheduler asking for the same id is refused while we hold it.
    let go_would_get: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SCHEDULER_LOCK_ID)
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert!(!go_would_get);
    a.locks.release(&lease).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrenewed_lease_expires_on_the_system_clock() {
    let (a, b) = two_replicas().await;
    let ttl = Duration::from_millis(300);
    let lease = a
        .locks
        .try_acquire("reaper", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let taken = loop {
        if let Some(l) = b.locks.try_acquire("reaper", "b", TTL).await.unwrap() {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "taken before its TTL"
    );
    assert!(taken.token > lease.token);
    assert!(matches!(
        a.locks.renew(&lease, ttl).await,
        Err(Error::Lost { .. })
    ));
}

/// A holder whose clock never moves never releases by itself (its watchdog sleeps
/// forever, like a hung process); Postgres ends its idle session after twice the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_frees_the_lock_of_a_holder_that_stopped_renewing() {
    let (a, b) = two_replicas().await;
    let frozen = ManualClock::new(fixtures::at(0));
    let hung = a.locks.clone().with_clock(Arc::new(frozen));
    let ttl = Duration::from_millis(500);
    let lease = hung.try_acquire("hung", "a", ttl).await.unwrap().unwrap();
    let started = Instant::now();
    let taken = loop {
        if let Some(l) = b.locks.try_acquire("hung", "b", TTL).await.unwrap() {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the session was never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "server-side release of a hung holder after {:?}",
        started.elapsed()
    );
    assert!(taken.token > lease.token);
    assert!(matches!(
        hung.renew(&lease, ttl).await,
        Err(Error::Lost { .. })
    ));
}
