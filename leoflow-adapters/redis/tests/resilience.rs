//! What the conformance kit cannot see: a subscription survives its pub/sub connection
//! being killed (it gets `Resync`, then later changes), two lock managers on separate
//! connections exclude each other with increasing tokens, and bad or unreachable URLs fail
//! with messages that say what to fix.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use leoflow_ports::lock::LockManager;
use leoflow_ports::notify::{Change, Notifier};
use leoflow_ports::testkit::clock::ManualClock;
use leoflow_ports::testkit::fixtures;
use leoflow_redis::testing::TestRedis;
use leoflow_redis::{connect, RedisLocks, RedisNotifier};

fn changed(dag: &str) -> Change {
    Change::DagChanged { dag_id: dag.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_resyncs_and_resubscribes_after_its_connection_is_killed() {
    let server = TestRedis::shared();
    let conn = server.fresh().await;
    let notifier = RedisNotifier::new(&conn);
    let mut changes = notifier.subscribe().await.unwrap();
    notifier.publish(changed("before")).await.unwrap();
    assert_eq!(changes.next().await, Some(changed("before")));

    let admin = server.fresh().await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin.manager())
        .await
        .unwrap();
    assert!(killed >= 1, "no pub/sub client was killed");

    let next = tokio::time::timeout(Duration::from_secs(10), changes.next()).await;
    assert_eq!(next.unwrap(), Some(Change::Resync));
    // Re-subscribed: a change published now arrives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        notifier.publish(changed("after")).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(200), changes.next()).await {
            Ok(Some(c)) if c == changed("after") => break,
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => panic!("the subscription ended"),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "never re-subscribed"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_on_separate_connections_exclude_each_other() {
    let server = TestRedis::shared();
    let conn = server.fresh().await;
    // The same prefix, reached through a second client: what two replicas do.
    let other = connect(server.url(), conn.prefix()).await.unwrap();
    let clock = ManualClock::new(fixtures::at(0));
    let a = RedisLocks::new(&conn, Arc::new(clock.clone()));
    let b = RedisLocks::new(&other, Arc::new(clock.clone()));
    let ttl = Duration::from_secs(10);
    let first = a.try_acquire("scheduler", "a", ttl).await.unwrap().unwrap();
    assert!(b
        .try_acquire("scheduler", "b", ttl)
        .await
        .unwrap()
        .is_none());
    clock.advance(Duration::from_secs(11));
    let second = b.try_acquire("scheduler", "b", ttl).await.unwrap().unwrap();
    assert!(second.token > first.token);
    assert!(
        a.renew(&first, ttl).await.is_err(),
        "the deposed leader renewed"
    );
}

#[tokio::test]
async fn bad_and_unreachable_urls_say_what_to_fix() {
    let err = connect("http://nope", "p").await.err().unwrap().to_string();
    assert!(err.contains("invalid") && err.contains("redis://"), "{err}");
    let err = connect("redis://:hunter2@127.0.0.1:1/0", "p")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cannot reach Redis"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}
