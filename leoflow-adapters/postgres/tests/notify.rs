//! LISTEN/NOTIFY on a real server: wake-up latency between two replicas (measured and
//! printed, with only a generous sanity bound), and a log follower woken by NOTIFY.

use std::time::{Duration, Instant};

use futures::StreamExt;
use leoflow_ports::log::{LogLine, LogStore, LogStream};
use leoflow_ports::notify::{Change, Notifier};
use leoflow_ports::run::{AttemptId, RunKey, TaskKey};
use leoflow_postgres::testing::TestCluster;
use leoflow_postgres::PostgresConfig;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_another_replica_quickly() {
    let url = TestCluster::shared().fresh_database().await.unwrap();
    let publisher = PostgresConfig::new(url.clone()).build().await.unwrap();
    let subscriber = PostgresConfig::new(url).build().await.unwrap();
    let mut changes = subscriber.notifier.subscribe().await.unwrap();

    let mut samples = Vec::new();
    for i in 0..200u32 {
        let change = Change::DagVersionRegistered {
            dag_id: "d".into(),
            version_number: i,
        };
        let sent = Instant::now();
        publisher.notifier.publish(change.clone()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a published change never arrived")
            .expect("the subscription ended");
        samples.push(sent.elapsed());
        assert_eq!(got, change);
    }
    samples.sort();
    let (p50, p99, max) = (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
    );
    println!("NOTIFY publish -> delivery to another replica over 200 changes: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    assert!(
        p99 < Duration::from_secs(2),
        "NOTIFY latency is absurd: p99 {p99:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_follower_is_woken_by_notify_not_by_polling() {
    let url = TestCluster::shared().fresh_database().await.unwrap();
    let mut config = PostgresConfig::new(url);
    // A poll so slow that only a NOTIFY can explain a quick delivery.
    config.log_poll_interval = Duration::from_secs(30);
    let writer = config.build().await.unwrap();
    let reader = config.build().await.unwrap();
    let attempt = AttemptId {
        task: TaskKey::new(&RunKey::new("d", "r"), "t", -1),
        try_number: 1,
    };
    let mut follow = reader.logs.follow(&attempt, 0).await.unwrap();
    let mut samples = Vec::new();
    for i in 0..50 {
        let line = LogLine {
            at: chrono::Utc::now(),
            stream: LogStream::Stdout,
            message: format!("line {i}"),
        };
        let sent = Instant::now();
        writer
            .logs
            .append(&attempt, std::slice::from_ref(&line))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), follow.next())
            .await
            .expect("the follower was not woken")
            .expect("the follow ended early");
        samples.push(sent.elapsed());
        assert_eq!(got.message, line.message);
    }
    writer.logs.close(&attempt).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), follow.collect::<Vec<_>>())
        .await
        .expect("the follow did not end after close");
    assert!(rest.is_empty());
    samples.sort();
    println!(
        "log append -> follower on another replica: p50 {:?}, max {:?}",
        percentile(&samples, 0.5),
        samples[samples.len() - 1]
    );
}
