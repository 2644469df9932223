//! Postgres-specific datastore behaviour on a real server: bulk run creation, compare-and-set
//! under two racing schedulers, fencing, try archiving, and index use on 100,000 task
//! instances.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use leoflow_ports::dag::{DagSpec, TaskKind, TaskSpec};
use leoflow_ports::datastore::{
    DagStore, Error, RunFilter, RunStore, TaskFilter, TaskStore, Transition,
};
use leoflow_ports::lock::FencingToken;
use leoflow_ports::run::{DagRun, RunKey, RunType, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use leoflow_ports::version::content_hash;
use leoflow_postgres::testing::{self, explain, hot_queries, plan_nodes};
use leoflow_postgres::PgStore;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn run(dag_id: &str, run_id: &str, state: RunState) -> DagRun {
    DagRun {
        dag_id: dag_id.into(),
        run_id: run_id.into(),
        run_type: RunType::Manual,
        logical_date: Some(t0()),
        data_interval_start: None,
        data_interval_end: None,
        run_after: t0(),
        conf: serde_json::json!({"k": [1, 2.5, null, "\u{0}"]}),
        note: None,
        state,
        version_number: 1,
        queued_at: t0(),
        started_at: None,
        ended_at: None,
        triggered_by: Some("test".into()),
    }
}

fn tasks(run: &DagRun, n: usize) -> Vec<TaskInstance> {
    (0..n)
        .map(|i| {
            TaskInstance::new(
                TaskKey::new(&run.key(), format!("t{i:05}"), -1),
                "EmptyOperator",
                2,
            )
        })
        .collect()
}

fn to(ti: &TaskInstance, state: TaskState, try_number: u32) -> Transition {
    let mut new = ti.clone();
    new.state = state;
    new.try_number = try_number;
    Transition {
        expected_state: ti.state,
        expected_try: ti.try_number,
        new,
    }
}

async fn store() -> PgStore {
    testing::fresh_adapters().await.store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_run_stores_ten_thousand_task_instances_at_once() {
    let s = store().await;
    let r = run("fan", "r1", RunState::Queued);
    let tis = tasks(&r, 10_000);
    let started = Instant::now();
    s.create_run(&r, &tis, None).await.unwrap();
    println!(
        "create_run with 10,000 task instances: {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let stored = s.task_instances(&r.key()).await.unwrap();
    println!("reading them back: {:?}", started.elapsed());
    assert_eq!(stored, tis);
    assert_eq!(s.get_run(&r.key()).await.unwrap(), Some(r));
}

#[tokio::test]
async fn create_run_is_all_or_nothing() {
    let s = store().await;
    let r = run("d", "r1", RunState::Queued);
    s.create_run(&r, &tasks(&r, 3), None).await.unwrap();
    let err = s.create_run(&r, &tasks(&r, 5), None).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(s.task_instances(&r.key()).await.unwrap().len(), 3);

    // A duplicate task instance fails the whole run.
    let r2 = run("d", "r2", RunState::Queued);
    let mut dup = tasks(&r2, 2);
    dup.push(dup[0].clone());
    let err = s.create_run(&r2, &dup, None).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    assert_eq!(s.get_run(&r2.key()).await.unwrap(), None);

    // Task instances of another run are refused.
    let r3 = run("d", "r3", RunState::Queued);
    let err = s.create_run(&r3, &tasks(&r, 1), None).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

/// Two schedulers (two pools, as two processes would have) race to dispatch the same task
/// instances, batch after batch: every instance is dispatched by exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedulers_never_both_win() {
    let adapters = testing::fresh_adapters().await;
    let b = PgStore::new(second_pool(&adapters).await);
    let a = adapters.store.clone();
    let r = run("race", "r1", RunState::Running);
    let tis = tasks(&r, 400);
    a.create_run(&r, &tis, None).await.unwrap();

    let mut wins: HashMap<TaskKey, usize> = HashMap::new();
    for batch in tis.chunks(50) {
        let ts: Vec<Transition> = batch.iter().map(|t| to(t, TaskState::Queued, 1)).collect();
        // One scheduler dispatches the batch in one statement, the other one instance at
        // a time: batched and single compare-and-sets race on the same rows.
        let (ra, rb) = tokio::join!(a.transition_many(&ts, None), async {
            let mut out = Vec::new();
            for t in &ts {
                out.push(b.transition(t, None).await.unwrap());
            }
            out
        });
        let ra = ra.unwrap();
        for (i, t) in ts.iter().enumerate() {
            let n = usize::from(ra[i]) + usize::from(rb[i]);
            *wins.entry(t.new.key.clone()).or_default() += n;
        }
    }
    assert_eq!(wins.len(), 400);
    assert!(
        wins.values().all(|&n| n == 1),
        "some instance was dispatched twice or never"
    );
    let stored = a.task_instances(&r.key()).await.unwrap();
    assert!(stored
        .iter()
        .all(|t| t.state == TaskState::Queued && t.try_number == 1));
}

/// A second pool on the same database: a stand-in for another scheduler process.
async fn second_pool(a: &leoflow_postgres::PostgresAdapters) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with((*a.pool().connect_options()).clone())
        .await
        .expect("a second pool connects")
}

#[tokio::test]
async fn transition_many_applies_repeated_keys_in_order() {
    let s = store().await;
    let r = run("d", "r1", RunState::Running);
    let tis = tasks(&r, 2);
    s.create_run(&r, &tis, None).await.unwrap();
    let first = to(&tis[0], TaskState::Scheduled, 0);
    let second = to(&first.new, TaskState::Queued, 1);
    let stale = to(&tis[0], TaskState::Skipped, 0);
    let other = to(&tis[1], TaskState::Scheduled, 0);
    let out = s
        .transition_many(&[first, second, stale, other], None)
        .await
        .unwrap();
    assert_eq!(out, [true, true, false, true]);
    let t = s.get_task_instance(&tis[0].key).await.unwrap().unwrap();
    assert_eq!((t.state, t.try_number), (TaskState::Queued, 1));
}

#[tokio::test]
async fn a_new_try_archives_the_previous_one_and_clears_the_heartbeat() {
    let s = store().await;
    let r = run("d", "r1", RunState::Running);
    let tis = tasks(&r, 1);
    s.create_run(&r, &tis, None).await.unwrap();
    let key = tis[0].key.clone();

    let queued = to(&tis[0], TaskState::Queued, 1);
    assert!(s.transition(&queued, None).await.unwrap());
    assert!(s.heartbeat(&key, 1, t0()).await.unwrap());
    let mut failed = to(&queued.new, TaskState::UpForRetry, 1);
    failed.new.error_message = Some("boom".into());
    failed.new.exit_code = Some(3);
    assert!(s.transition(&failed, None).await.unwrap());
    let t = s.get_task_instance(&key).await.unwrap().unwrap();
    assert_eq!(
        t.last_heartbeat_at,
        Some(t0()),
        "same try keeps its heartbeat"
    );

    let mut retry = to(&failed.new, TaskState::Queued, 2);
    retry.new.error_message = None;
    retry.new.exit_code = None;
    assert!(s.transition(&retry, None).await.unwrap());
    let t = s.get_task_instance(&key).await.unwrap().unwrap();
    assert_eq!(t.last_heartbeat_at, None, "a new try clears the heartbeat");
    assert!(
        !s.heartbeat(&key, 1, t0()).await.unwrap(),
        "the old try is no longer current"
    );

    let tries = s.tries(&key).await.unwrap();
    assert_eq!(tries.len(), 2);
    assert_eq!(
        (tries[0].try_number, tries[0].state),
        (1, TaskState::UpForRetry)
    );
    assert_eq!(tries[0].error_message.as_deref(), Some("boom"));
    assert_eq!(tries[0].last_heartbeat_at, Some(t0()));
    assert_eq!(
        (tries[1].try_number, tries[1].state),
        (2, TaskState::Queued)
    );
}

#[tokio::test]
async fn writes_with_an_old_fencing_token_change_nothing() {
    let s = store().await;
    let r = run("d", "r1", RunState::Queued);
    let tis = tasks(&r, 2);
    s.create_run(&r, &tis, Some(FencingToken(1))).await.unwrap();
    s.raise_fence(FencingToken(5)).await.unwrap();
    s.raise_fence(FencingToken(3)).await.unwrap(); // lower: no-op

    let t = to(&tis[0], TaskState::Scheduled, 0);
    let err = s.transition(&t, Some(FencingToken(4))).await.unwrap_err();
    assert_eq!(
        err,
        Error::Fenced {
            token: 4,
            current: 5
        }
    );
    // A batch is refused whole, as the single statement it is.
    let batch = [t.clone(), to(&tis[1], TaskState::Scheduled, 0)];
    let err = s
        .transition_many(&batch, Some(FencingToken(4)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Fenced {
            token: 4,
            current: 5
        }
    );
    let mut running = r.clone();
    running.state = RunState::Running;
    let err = s
        .update_run(RunState::Queued, &running, Some(FencingToken(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }));
    let r2 = run("d", "r2", RunState::Queued);
    let err = s
        .create_run(&r2, &tasks(&r2, 2), Some(FencingToken(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }));
    assert_eq!(s.get_run(&r2.key()).await.unwrap(), None);
    let err = s
        .add_task_instances(&r.key(), &tasks(&r, 3), Some(FencingToken(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }));
    assert_eq!(
        s.task_instances(&r.key()).await.unwrap(),
        tis,
        "nothing changed"
    );

    assert_eq!(
        s.transition_many(&batch, Some(FencingToken(5)))
            .await
            .unwrap(),
        [true, true]
    );
    assert!(s
        .update_run(RunState::Queued, &running, Some(FencingToken(6)))
        .await
        .unwrap());
    // Unfenced writes (API, agents) are not subject to the fence.
    let t2 = to(&t.new, TaskState::Queued, 1);
    assert!(s.transition(&t2, None).await.unwrap());
}

#[tokio::test]
async fn add_task_instances_keeps_existing_ones_and_needs_the_run() {
    let s = store().await;
    let r = run("d", "r1", RunState::Running);
    let tis = tasks(&r, 2);
    s.create_run(&r, &tis, None).await.unwrap();
    assert!(s
        .transition(&to(&tis[0], TaskState::Scheduled, 0), None)
        .await
        .unwrap());
    let mut more = tasks(&r, 2);
    more.push(TaskInstance::new(
        TaskKey::new(&r.key(), "mapped", 0),
        "X",
        0,
    ));
    more.push(TaskInstance::new(
        TaskKey::new(&r.key(), "mapped", 1),
        "X",
        0,
    ));
    s.add_task_instances(&r.key(), &more, None).await.unwrap();
    let stored = s.task_instances(&r.key()).await.unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0].key.task_id, "mapped");
    assert_eq!(
        stored[2].state,
        TaskState::Scheduled,
        "existing instance untouched"
    );
    let missing = RunKey::new("d", "nope");
    let err = s.add_task_instances(&missing, &[], None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

fn spec(dag_id: &str, label: &str, retries: u32) -> Arc<DagSpec> {
    let mut task = TaskSpec::new("a", TaskKind::Empty);
    task.retries = Some(retries);
    let json = serde_json::json!({
        "schema_version": "1.0", "dag_id": dag_id, "dag_version": label, "image": "",
        "tasks": [task], "params": {"p": {"value": 0.1, "description": null, "schema": {}}},
    });
    Arc::new(serde_json::from_value(json).expect("a valid spec"))
}

#[tokio::test]
async fn versions_are_deduplicated_by_content_hash() {
    let s = store().await;
    let v1 = spec("d", "one", 0);
    let (a, created) = s
        .register_version(v1.clone(), &content_hash(&v1), t0())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(a.version_number, 1);
    let relabelled = spec("d", "two", 0);
    let (b, created) = s
        .register_version(relabelled.clone(), &content_hash(&relabelled), t0())
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(b.version_number, 1);
    assert_eq!(b.label, "one");
    assert_eq!(b.spec, v1, "the stored spec comes back intact");
    let v2 = spec("d", "three", 1);
    let (c, created) = s
        .register_version(v2.clone(), &content_hash(&v2), t0())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(c.version_number, 2);
    assert_eq!(s.get_dag("d").await.unwrap().unwrap().latest_version, 2);
    // Registering the first content again makes it current again (a rollback).
    s.register_version(v1.clone(), &content_hash(&v1), t0())
        .await
        .unwrap();
    assert_eq!(s.get_dag("d").await.unwrap().unwrap().latest_version, 1);
    let versions = s.list_versions("d").await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version_number)
            .collect::<Vec<_>>(),
        [2, 1]
    );
}

/// 100,000 task instances in 1,000 runs; the scheduler's and the API's queries must reach
/// their rows through an index, never by scanning `task_instances` (or `dag_runs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_queries_use_indexes_on_100k_task_instances() {
    let a = testing::fresh_adapters().await;
    let s = &a.store;
    let started = Instant::now();
    let mut live = None;
    for i in 0..1000 {
        let finished = i % 500 != 7;
        let mut r = run(
            &format!("dag{}", i % 10),
            &format!("run{i:03}"),
            RunState::Success,
        );
        r.run_after = t0() + chrono::Duration::minutes(i);
        if !finished {
            r.state = RunState::Running;
        }
        let mut tis = tasks(&r, 100);
        for (j, t) in tis.iter_mut().enumerate() {
            t.state = if finished {
                TaskState::Success
            } else {
                match j % 5 {
                    0 => TaskState::Queued,
                    1 => TaskState::Running,
                    2 => TaskState::Scheduled,
                    _ => TaskState::None,
                }
            };
        }
        s.create_run(&r, &tis, None).await.unwrap();
        if !finished {
            live = Some(r.key());
        }
    }
    println!("created 100,000 task instances in {:?}", started.elapsed());
    sqlx::query("ANALYZE").execute(a.pool()).await.unwrap();
    let live = live.unwrap();
    let (_, total) = s.list_task_instances(&TaskFilter::default()).await.unwrap();
    assert_eq!(total, 100_000);

    for q in hot_queries(&live) {
        let plan = explain(a.pool(), &q).await.unwrap();
        let nodes = plan_nodes(&plan);
        println!("{}: {nodes:?}", q.name);
        let scans = nodes.iter().any(|(kind, _)| kind == "Seq Scan");
        assert!(!scans, "{} scans a table: {plan:#}", q.name);
        let uses_index = nodes.iter().any(|(kind, _)| kind.contains("Index"));
        assert!(uses_index, "{} uses no index: {plan:#}", q.name);
    }

    // And they return what the port promises.
    assert_eq!(s.in_flight().await.unwrap().len(), 2 * 40);
    assert_eq!(s.active_runs().await.unwrap().len(), 2);
    let (running, n) = s
        .list_runs(&RunFilter {
            states: vec![RunState::Running],
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!((running.len(), n), (2, 2));
    assert!(running[0].run_after > running[1].run_after, "newest first");
}
