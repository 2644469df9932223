//! A Postgres restart in the middle of use, on a cluster of its own: the pool reconnects,
//! the notifier re-subscribes and tells its subscribers to resync, a lease held through the
//! restart is reported lost and can be taken again, and a log follower carries on. While
//! the server is down, calls fail as retryable `Unavailable`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use leoflow_ports::datastore::{Error, RunStore, TaskStore};
use leoflow_ports::lock::{self, LockManager};
use leoflow_ports::log::{LogLine, LogStore, LogStream};
use leoflow_ports::notify::{Change, Notifier};
use leoflow_ports::run::{AttemptId, RunKey, TaskKey};
use leoflow_ports::testkit::fixtures;
use leoflow_postgres::testing::TestCluster;
use leoflow_postgres::{PostgresConfig, SCHEDULER_LEASE};

const PATIENCE: Duration = Duration::from_secs(15);

async fn next(stream: &mut futures::stream::BoxStream<'static, Change>) -> Change {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("no change arrived")
        .expect("the subscription ended")
}

fn line(message: &str) -> LogLine {
    LogLine {
        at: fixtures::at(0),
        stream: LogStream::Stdout,
        message: message.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_survived() {
    let cluster = Arc::new(TestCluster::start().unwrap());
    let url = cluster.fresh_database().await.unwrap();
    let mut config = PostgresConfig::new(url);
    config.acquire_timeout = Duration::from_secs(2);
    config.log_poll_interval = Duration::from_secs(30);
    let a = config.build().await.unwrap();
    let b = config.build().await.unwrap();

    let run = fixtures::run("d", "r1", fixtures::at(0));
    let tis = fixtures::tasks(&run.key(), &["a", "b"]);
    a.store.create_run(&run, &tis, None).await.unwrap();
    let mut changes = a.notifier.subscribe().await.unwrap();
    let before = Change::RunCreated { run: run.key() };
    b.notifier.publish(before.clone()).await.unwrap();
    assert_eq!(next(&mut changes).await, before);
    let lease = a
        .locks
        .try_acquire(SCHEDULER_LEASE, "a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let attempt = AttemptId {
        task: TaskKey::new(&RunKey::new("d", "r1"), "a", -1),
        try_number: 1,
    };
    a.logs.append(&attempt, &[line("before")]).await.unwrap();
    let mut follow = a.logs.follow(&attempt, 0).await.unwrap();
    assert_eq!(follow.next().await.unwrap().message, "before");

    let restarting = cluster.clone();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || restarting.restart())
        .await
        .unwrap()
        .unwrap();
    println!("pg_ctl restart took {:?}", started.elapsed());

    // The pool replaces its dead connections on its own.
    let started = Instant::now();
    let stored = a.store.task_instances(&run.key()).await.unwrap();
    assert_eq!(stored, tis);
    println!(
        "first query after the restart answered in {:?}",
        started.elapsed()
    );

    // The notifier re-subscribed and said that changes may have been missed...
    let started = Instant::now();
    assert_eq!(next(&mut changes).await, Change::Resync);
    println!("Resync delivered {:?} after the restart", started.elapsed());
    // ...and delivers what is published from then on.
    let after = Change::RunChanged { run: run.key() };
    b.notifier.publish(after.clone()).await.unwrap();
    loop {
        match next(&mut changes).await {
            Change::Resync => {}
            got => {
                assert_eq!(got, after);
                break;
            }
        }
    }

    // The restart ended the lease's session: the holder learns it lost the lease, and the
    // lease can be campaigned for again.
    assert!(matches!(
        a.locks.renew(&lease, Duration::from_secs(60)).await,
        Err(lock::Error::Lost { .. })
    ));
    let again = b
        .locks
        .try_acquire(SCHEDULER_LEASE, "b", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the lease was not free after the restart");
    assert!(again.token > lease.token);

    // The log follower carries on (woken by NOTIFY on the new LISTEN connection, or the
    // Resync it caused).
    b.logs.append(&attempt, &[line("after")]).await.unwrap();
    let got = tokio::time::timeout(PATIENCE, follow.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.message, "after");

    // While the server is down, calls fail as retryable; once it is back they work.
    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap()
        .unwrap();
    let err = a.store.get_run(&run.key()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                retryable: true,
                ..
            }
        ),
        "{err:?}"
    );
    println!("while down: {err}");
    let resuming = cluster.clone();
    tokio::task::spawn_blocking(move || resuming.resume())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.store.get_run(&run.key()).await.unwrap(), Some(run));
}
