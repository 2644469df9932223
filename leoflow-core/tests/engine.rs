//! The engine end to end, in memory: memory adapters, the scriptable fake executor and a
//! manual clock (retry delays and timeouts are crossed by moving the clock, never by
//! sleeping). Each test drives real runs through the scheduler loop.

#![allow(
    clippy::unwrap_used,
    clippy::unused_async,
    clippy::needless_pass_by_value
)] // Test code: a panic is the failure report; helpers favour call-site brevity.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use leoflow_core::commands::{ClearRequest, Selection};
use leoflow_core::engine::{Running, TriggerRequest};
use leoflow_core::{Engine, EngineConfig};
use leoflow_memory::{MemoryLogs, MemoryNotifier, MemoryStore, MemoryXCom};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::{DagStore, RunFilter, RunStore, TaskStore};
use leoflow_ports::log::LogStore;
use leoflow_ports::run::{DagRun, RunKey, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use leoflow_ports::testkit::clock::ManualClock;
use leoflow_ports::testkit::fake_executor::{Behavior, FakeExecutor};
use serde_json::{json, Value};

struct Harness {
    engine: Engine,
    exec: FakeExecutor,
    clock: ManualClock,
    store: Arc<MemoryStore>,
    logs: Arc<MemoryLogs>,
    running: Option<Running>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()
}

async fn harness() -> Harness {
    harness_at(t0()).await
}

async fn harness_at(start: DateTime<Utc>) -> Harness {
    let clock = ManualClock::new(start);
    let store = Arc::new(MemoryStore::new());
    let logs = Arc::new(MemoryLogs::new());
    let exec = FakeExecutor::new();
    let engine = Engine::builder()
        .datastore(store.clone())
        .executor(Arc::new(exec.clone()))
        .xcom(Arc::new(MemoryXCom::new(
            Arc::new(clock.clone()),
            256 * 1024,
            Duration::from_secs(86400),
        )))
        .logs(logs.clone())
        .notifier(Arc::new(MemoryNotifier::new()))
        .clock(Arc::new(clock.clone()))
        .config(EngineConfig::default())
        .build()
        .unwrap();
    let running = Some(engine.start());
    Harness {
        engine,
        exec,
        clock,
        store,
        logs,
        running,
    }
}

impl Harness {
    async fn register(&self, spec: Value) -> DagSpec {
        let spec = DagSpec::from_json(spec.to_string().as_bytes()).unwrap();
        self.engine.register(spec.clone()).await.unwrap();
        spec
    }

    async fn trigger(&self, dag_id: &str) -> RunKey {
        self.engine
            .trigger(dag_id, TriggerRequest::default())
            .await
            .unwrap()
            .key()
    }

    async fn finish(&self, key: &RunKey) -> DagRun {
        tokio::time::timeout(Duration::from_secs(20), self.engine.wait_for_run(key))
            .await
            .expect("the run did not finish")
            .unwrap()
    }

    async fn tis(&self, key: &RunKey) -> Vec<TaskInstance> {
        self.store.task_instances(key).await.unwrap()
    }

    async fn ti(&self, key: &RunKey, task: &str) -> TaskInstance {
        self.store
            .get_task_instance(&TaskKey::new(key, task, -1))
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits (real time, bounded) until the engine has brought `task` to `state`.
    async fn reach(&self, key: &RunKey, task: &str, state: TaskState) -> TaskInstance {
        for _ in 0..5000 {
            let ti = self.ti(key, task).await;
            if ti.state == state {
                return ti;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!(
            "{task} never reached {state}: {:?}",
            self.ti(key, task).await
        );
    }

    fn every_attempt_launched_once(&self) {
        for a in self.exec.launches() {
            assert_eq!(self.exec.launch_count(&a), 1, "{a} launched twice");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            drop(r);
        }
    }
}

fn python(id: &str, deps: &[&str]) -> Value {
    json!({"task_id": id, "type": "python", "entrypoint": format!("dag.py:{id}"), "depends_on": deps})
}

fn dag(dag_id: &str, tasks: Vec<Value>) -> Value {
    json!({"schema_version": "1.0", "dag_id": dag_id, "dag_version": "v1", "image": "", "tasks": tasks})
}

fn chain(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let id = format!("task_{i:02}");
            let prev = (i > 0).then(|| format!("task_{:02}", i - 1));
            python(&id, &prev.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect()
}

#[tokio::test]
async fn a_chain_of_40_runs_in_order_each_task_once() {
    let h = harness().await;
    h.register(dag("bench_40", chain(40))).await;
    let key = h.trigger("bench_40").await;
    let run = h.finish(&key).await;
    assert_eq!(run.state, RunState::Success);
    let tis = h.tis(&key).await;
    assert_eq!(tis.len(), 40);
    assert!(tis
        .iter()
        .all(|t| t.state == TaskState::Success && t.try_number == 1));
    let order: Vec<String> = h
        .exec
        .launches()
        .iter()
        .map(|a| a.task.task_id.clone())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("task_{i:02}")).collect();
    assert_eq!(order, expected);
    h.every_attempt_launched_once();
}

#[tokio::test]
async fn fan_out_of_100_then_fan_in() {
    let h = harness().await;
    let mut tasks = vec![python("start", &[])];
    let ids: Vec<String> = (0..100).map(|i| format!("task_{i:03}")).collect();
    tasks.extend(ids.iter().map(|id| python(id, &["start"])));
    tasks.push(python(
        "join",
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    h.register(dag("fanout_100", tasks)).await;
    let key = h.trigger("fanout_100").await;
    assert_eq!(h.finish(&key).await.state, RunState::Success);
    let launches = h.exec.launches();
    assert_eq!(launches.len(), 102);
    assert_eq!(launches.first().unwrap().task.task_id, "start");
    assert_eq!(launches.last().unwrap().task.task_id, "join");
    h.every_attempt_launched_once();
}

#[tokio::test]
async fn a_failed_attempt_is_retried_after_its_delay() {
    let h = harness().await;
    let mut flaky = python("flaky", &[]);
    flaky["retries"] = json!(2);
    flaky["retry_delay_seconds"] = json!(60);
    h.register(dag("retrying", vec![flaky, python("after", &["flaky"])]))
        .await;
    h.exec.script_try(
        "flaky",
        1,
        Behavior::Fail {
            message: "boom".into(),
            exit_code: Some(1),
        },
    );
    let key = h.trigger("retrying").await;

    let waiting = h.reach(&key, "flaky", TaskState::UpForRetry).await;
    assert_eq!(
        waiting.next_retry_at,
        Some(t0() + chrono::TimeDelta::seconds(60))
    );
    assert_eq!(waiting.error_message.as_deref(), Some("boom"));
    // Nothing happens before the delay has passed.
    h.clock.advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.ti(&key, "flaky").await.state, TaskState::UpForRetry);
    h.clock.advance(Duration::from_secs(1));

    assert_eq!(h.finish(&key).await.state, RunState::Success);
    let flaky = h.ti(&key, "flaky").await;
    assert_eq!((flaky.state, flaky.try_number), (TaskState::Success, 2));
    let tries = h.store.tries(&flaky.key).await.unwrap();
    assert_eq!(
        tries.iter().map(|t| t.state).collect::<Vec<_>>(),
        [TaskState::UpForRetry, TaskState::Success]
    );
    h.every_attempt_launched_once();
}

#[tokio::test]
async fn a_task_past_its_timeout_is_cancelled_and_failed() {
    let h = harness().await;
    let mut slow = python("slow", &[]);
    slow["execution_timeout_seconds"] = json!(30);
    h.register(dag("timeouts", vec![slow, python("after", &["slow"])]))
        .await;
    h.exec.script("slow", Behavior::Hang);
    let key = h.trigger("timeouts").await;
    let running = h.reach(&key, "slow", TaskState::Running).await;
    h.clock.advance(Duration::from_secs(31));
    let run = h.finish(&key).await;
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(h.exec.cancels(), [running.attempt()]);
    let slow = h.ti(&key, "slow").await;
    assert_eq!(slow.state, TaskState::Failed);
    assert!(slow.error_message.unwrap().contains("timed out"));
    assert_eq!(h.ti(&key, "after").await.state, TaskState::UpstreamFailed);
    let log = h.logs.read(&running.attempt(), 0, 100).await.unwrap();
    assert!(
        log.lines
            .iter()
            .any(|l| l.message.contains("execution_timeout")),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_failed_upstream_propagates_upstream_failed() {
    let h = harness().await;
    let mut cleanup = python("cleanup", &["load"]);
    cleanup["trigger_rule"] = json!("all_done");
    h.register(dag(
        "etl",
        vec![
            python("extract", &[]),
            python("transform", &["extract"]),
            python("load", &["transform"]),
            cleanup,
            python("report", &["load"]),
        ],
    ))
    .await;
    h.exec.script(
        "extract",
        Behavior::Fail {
            message: "source down".into(),
            exit_code: Some(2),
        },
    );
    let key = h.trigger("etl").await;
    let run = h.finish(&key).await;
    assert_eq!(h.ti(&key, "extract").await.state, TaskState::Failed);
    assert_eq!(
        h.ti(&key, "transform").await.state,
        TaskState::UpstreamFailed
    );
    assert_eq!(h.ti(&key, "load").await.state, TaskState::UpstreamFailed);
    assert_eq!(h.ti(&key, "report").await.state, TaskState::UpstreamFailed);
    assert_eq!(
        h.ti(&key, "cleanup").await.state,
        TaskState::Success,
        "all_done runs after failures"
    );
    assert_eq!(
        run.state,
        RunState::Failed,
        "a leaf (report) is upstream_failed"
    );
    assert_eq!(h.ti(&key, "extract").await.exit_code, Some(2));
}

#[tokio::test]
async fn branching_follows_the_returned_task_and_skips_the_other() {
    let h = harness().await;
    let mut pick = python("pick", &[]);
    pick["branch"] = json!("branch");
    pick["operator"] = json!("@task.branch");
    let mut join = python("join", &["left", "right"]);
    join["trigger_rule"] = json!("none_failed_min_one_success");
    h.register(dag(
        "branchy",
        vec![
            pick,
            python("left", &["pick"]),
            python("right", &["pick"]),
            python("right_more", &["right"]),
            join,
        ],
    ))
    .await;
    h.exec
        .script("pick", Behavior::Succeed(Some(json!("left"))));
    let key = h.trigger("branchy").await;
    assert_eq!(h.finish(&key).await.state, RunState::Success);
    assert_eq!(h.ti(&key, "left").await.state, TaskState::Success);
    assert_eq!(h.ti(&key, "right").await.state, TaskState::Skipped);
    assert_eq!(h.ti(&key, "right_more").await.state, TaskState::Skipped);
    assert_eq!(h.ti(&key, "join").await.state, TaskState::Success);
    let launched: Vec<String> = h
        .exec
        .launches()
        .iter()
        .map(|a| a.task.task_id.clone())
        .collect();
    assert!(!launched.contains(&"right".to_string()));
}

#[tokio::test]
async fn a_falsy_short_circuit_skips_everything_downstream() {
    let h = harness().await;
    let mut check = python("check", &[]);
    check["branch"] = json!("short_circuit");
    let mut always = python("notify", &["step"]);
    always["trigger_rule"] = json!("all_done");
    h.register(dag("gate", vec![check, python("step", &["check"]), always]))
        .await;
    h.exec
        .script("check", Behavior::Succeed(Some(json!(false))));
    let key = h.trigger("gate").await;
    assert_eq!(h.finish(&key).await.state, RunState::Success);
    assert_eq!(h.ti(&key, "step").await.state, TaskState::Skipped);
    assert_eq!(
        h.ti(&key, "notify").await.state,
        TaskState::Skipped,
        "ignore_downstream_trigger_rules defaults to true"
    );
}

#[tokio::test]
async fn mapping_over_1000_elements_then_reducing() {
    let h = harness().await;
    let mut square = python("square", &["numbers"]);
    square["map"] = json!({"expand": {"x": "numbers"}});
    let mut total = python("total", &["square"]);
    total["xcom_input"] = json!({"values": "square"});
    h.register(dag("mapped", vec![python("numbers", &[]), square, total]))
        .await;
    let numbers: Vec<u32> = (0..1000).collect();
    h.exec
        .script("numbers", Behavior::Succeed(Some(json!(numbers))));
    let key = h.trigger("mapped").await;
    assert_eq!(h.finish(&key).await.state, RunState::Success);
    let tis = h.tis(&key).await;
    let mapped: Vec<&TaskInstance> = tis.iter().filter(|t| t.key.task_id == "square").collect();
    assert_eq!(mapped.len(), 1000);
    let mut idx: Vec<i32> = mapped.iter().map(|t| t.key.map_index).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..1000).collect::<Vec<_>>());
    assert!(mapped.iter().all(|t| t.state == TaskState::Success));
    assert_eq!(h.ti(&key, "total").await.state, TaskState::Success);
    assert_eq!(h.exec.launches().len(), 1002);
    h.every_attempt_launched_once();
}

#[tokio::test]
async fn mapping_over_an_empty_list_skips_the_mapped_task() {
    let h = harness().await;
    let mut each = python("each", &["source"]);
    each["map"] = json!({"expand": {"x": "source"}});
    h.register(dag(
        "empty_map",
        vec![python("source", &[]), each, python("after", &["each"])],
    ))
    .await;
    h.exec.script("source", Behavior::Succeed(Some(json!([]))));
    let key = h.trigger("empty_map").await;
    assert_eq!(h.finish(&key).await.state, RunState::Success);
    assert_eq!(h.ti(&key, "each").await.state, TaskState::Skipped);
    assert_eq!(h.ti(&key, "after").await.state, TaskState::Skipped);
}

#[tokio::test]
async fn daily_catchup_over_ten_days_creates_the_right_logical_dates() {
    let h = harness_at(Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()).await;
    let mut spec = dag("daily", vec![python("work", &[])]);
    spec["schedule"] = json!("@daily");
    spec["start_date"] = json!("2024-01-01T00:00:00Z");
    spec["catchup"] = json!(true);
    h.register(spec).await;
    let mut runs = Vec::new();
    for _ in 0..5000 {
        let (r, total) = h
            .store
            .list_runs(&RunFilter {
                dag_id: Some("daily".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if total == 10 && r.iter().all(|r| r.state == RunState::Success) {
            runs = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut dates: Vec<String> = runs
        .iter()
        .map(|r| r.logical_date.unwrap().format("%Y-%m-%d %H:%M").to_string())
        .collect();
    dates.sort();
    let expected: Vec<String> = (1..=10).map(|d| format!("2024-01-{d:02} 00:00")).collect();
    assert_eq!(dates, expected);
    assert!(runs
        .iter()
        .all(|r| r.run_id.starts_with("scheduled__2024-01-")));
    // The next day's run appears when the clock reaches it.
    h.clock
        .set(Utc.with_ymd_and_hms(2024, 1, 11, 0, 0, 1).unwrap());
    for _ in 0..5000 {
        let (_, total) = h
            .store
            .list_runs(&RunFilter {
                dag_id: Some("daily".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if total == 11 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the 2024-01-11 run was not created");
}

#[tokio::test]
async fn an_attempt_that_exits_without_reporting_fails_with_its_exit_code() {
    let h = harness().await;
    h.register(dag("crashy", vec![python("crash", &[])])).await;
    h.exec.script("crash", Behavior::Exit(137));
    let key = h.trigger("crashy").await;
    assert_eq!(h.finish(&key).await.state, RunState::Failed);
    let ti = h.ti(&key, "crash").await;
    assert_eq!(ti.exit_code, Some(137));
    assert!(ti
        .error_message
        .clone()
        .unwrap()
        .contains("exited with code 137"));
    // The process is gone, so its log is closed: a reader sees the end of it.
    for _ in 0..2500 {
        let page = h.logs.read(&ti.attempt(), 0, 100).await.unwrap();
        if page.complete {
            assert!(page
                .lines
                .iter()
                .any(|l| l.message.contains("exited with code 137")));
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the log of an exited attempt was never closed");
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried() {
    let h = harness().await;
    let mut t = python("strict", &[]);
    t["retries"] = json!(3);
    h.register(dag("strict", vec![t])).await;
    h.exec.script(
        "strict",
        Behavior::FailPermanently("AirflowFailException: bad input".into()),
    );
    let key = h.trigger("strict").await;
    assert_eq!(h.finish(&key).await.state, RunState::Failed);
    assert_eq!(h.ti(&key, "strict").await.try_number, 1);
}

#[tokio::test]
async fn a_return_value_over_the_cap_fails_the_task_with_a_clear_error() {
    let h = harness().await;
    h.register(dag("big", vec![python("huge", &[])])).await;
    h.exec.script(
        "huge",
        Behavior::Succeed(Some(json!("x".repeat(300 * 1024)))),
    );
    let key = h.trigger("big").await;
    assert_eq!(h.finish(&key).await.state, RunState::Failed);
    let msg = h.ti(&key, "huge").await.error_message.unwrap();
    assert!(msg.contains("exceeds the 262144-byte limit"), "{msg}");
}

#[tokio::test]
async fn empty_tasks_succeed_without_being_launched() {
    let h = harness().await;
    h.register(dag(
        "empties",
        vec![
            json!({"task_id": "begin", "type": "empty"}),
            python("work", &["begin"]),
            json!({"task_id": "end", "type": "empty", "depends_on": ["work"]}),
        ],
    ))
    .await;
    let key = h.trigger("empties").await;
    assert_eq!(h.finish(&key).await.state, RunState::Success);
    let launched: Vec<String> = h
        .exec
        .launches()
        .iter()
        .map(|a| a.task.task_id.clone())
        .collect();
    assert_eq!(launched, ["work"]);
}

#[tokio::test]
async fn an_invalid_dag_reports_every_problem_and_stores_nothing() {
    let h = harness().await;
    let bad = json!({"schema_version": "1.0", "dag_id": "broken", "dag_version": "v1", "image": "", "tasks": [
        {"task_id": "a", "type": "python", "entrypoint": "dag.py:a", "depends_on": ["c"]},
        {"task_id": "b", "type": "python", "entrypoint": "dag.py:b", "depends_on": ["a", "ghost"]},
        {"task_id": "c", "type": "python", "entrypoint": "dag.py:c", "depends_on": ["b"]},
        {"task_id": "b", "type": "bash", "entrypoint": "true"}
    ]});
    let spec = DagSpec::from_json(bad.to_string().as_bytes()).unwrap();
    let err = h.engine.register(spec).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("duplicate task id"), "{text}");
    assert!(text.contains("unknown upstream task \"ghost\""), "{text}");
    assert!(h.store.get_dag("broken").await.unwrap().is_none());
}

#[tokio::test]
async fn registering_the_same_spec_twice_keeps_one_version() {
    let h = harness().await;
    let spec = DagSpec::from_json(dag("same", chain(3)).to_string().as_bytes()).unwrap();
    let first = h.engine.register(spec.clone()).await.unwrap();
    let mut relabelled = spec.clone();
    relabelled.dag_version = "v2".into();
    let second = h.engine.register(relabelled).await.unwrap();
    assert!(first.created && !second.created);
    assert_eq!(second.version.version_number, 1);
}

#[tokio::test]
async fn many_runs_of_a_chain_all_complete() {
    let h = harness().await;
    h.register(dag("chain10", chain(10))).await;
    let mut keys = Vec::new();
    for i in 0..50 {
        let req = TriggerRequest {
            run_id: Some(format!("run_{i}")),
            ..Default::default()
        };
        keys.push(h.engine.trigger("chain10", req).await.unwrap().key());
    }
    for k in &keys {
        assert_eq!(h.finish(k).await.state, RunState::Success);
    }
    assert_eq!(h.exec.launches().len(), 500);
    h.every_attempt_launched_once();
}

#[tokio::test]
async fn max_active_runs_holds_and_queued_runs_start_oldest_first() {
    let h = harness().await;
    let mut spec = dag("one_at_a_time", chain(3));
    spec["max_active_runs"] = json!(1);
    h.register(spec).await;
    let mut keys = Vec::new();
    for i in 0..5 {
        let req = TriggerRequest {
            run_id: Some(format!("run_{i}")),
            ..Default::default()
        };
        keys.push(h.engine.trigger("one_at_a_time", req).await.unwrap().key());
    }
    for k in &keys {
        assert_eq!(h.finish(k).await.state, RunState::Success);
    }
    // With one run at a time, each run's three tasks launch back to back, in trigger order.
    let runs: Vec<String> = h
        .exec
        .launches()
        .iter()
        .map(|a| a.task.run_id.clone())
        .collect();
    let expected: Vec<String> = (0..5)
        .flat_map(|i| std::iter::repeat_n(format!("run_{i}"), 3))
        .collect();
    assert_eq!(runs, expected);
}

#[tokio::test]
async fn clearing_a_failed_task_with_downstream_reruns_them_with_a_new_try() {
    let h = harness().await;
    h.register(dag(
        "clear_me",
        vec![python("a", &[]), python("b", &["a"]), python("c", &["b"])],
    ))
    .await;
    h.exec
        .script_try("b", 1, Behavior::FailPermanently("bad input".into()));
    let key = h.trigger("clear_me").await;
    assert_eq!(h.finish(&key).await.state, RunState::Failed);
    assert_eq!(h.ti(&key, "c").await.state, TaskState::UpstreamFailed);

    let req = ClearRequest {
        selection: Selection {
            task_ids: vec!["b".into()],
            include_downstream: true,
            ..Selection::default()
        },
        dry_run: true,
        ..ClearRequest::default()
    };
    let preview = h.engine.clear_task_instances(&key, &req).await.unwrap();
    let ids: Vec<&str> = preview.iter().map(|t| t.key.task_id.as_str()).collect();
    assert_eq!(ids, ["b", "c"], "a dry run names b and its downstream c");
    assert_eq!(
        h.ti(&key, "b").await.state,
        TaskState::Failed,
        "dry run changes nothing"
    );

    let req = ClearRequest {
        dry_run: false,
        ..req
    };
    let cleared = h.engine.clear_task_instances(&key, &req).await.unwrap();
    assert_eq!(cleared.len(), 2);
    let run = h.finish(&key).await;
    assert_eq!(
        run.state,
        RunState::Success,
        "the run is re-queued and finishes"
    );
    let b = h.ti(&key, "b").await;
    assert_eq!((b.state, b.try_number), (TaskState::Success, 2));
    assert_eq!(h.ti(&key, "a").await.try_number, 1, "a was not cleared");
    assert_eq!(h.ti(&key, "c").await.state, TaskState::Success);
}

#[tokio::test]
async fn marking_a_running_task_success_cancels_it_and_the_run_goes_on() {
    let h = harness().await;
    h.register(dag(
        "mark_ti",
        vec![python("slow", &[]), python("after", &["slow"])],
    ))
    .await;
    h.exec.script("slow", Behavior::Hang);
    let key = h.trigger("mark_ti").await;
    let running = h.reach(&key, "slow", TaskState::Running).await;
    let sel = Selection {
        task_ids: vec!["slow".into()],
        ..Selection::default()
    };
    let err = h
        .engine
        .set_task_instance_state(&key, &sel, TaskState::Queued, false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("success, failed or skipped"),
        "{err}"
    );
    let changed = h
        .engine
        .set_task_instance_state(&key, &sel, TaskState::Success, false)
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(h.exec.cancels(), [running.attempt()]);
    assert_eq!(h.finish(&key).await.state, RunState::Success);
    assert_eq!(h.ti(&key, "after").await.state, TaskState::Success);
}

#[tokio::test]
async fn marking_a_run_failed_fails_running_tasks_and_skips_the_rest() {
    let h = harness().await;
    h.register(dag(
        "mark_run",
        vec![python("slow", &[]), python("after", &["slow"])],
    ))
    .await;
    h.exec.script("slow", Behavior::Hang);
    let key = h.trigger("mark_run").await;
    let running = h.reach(&key, "slow", TaskState::Running).await;
    let run = h
        .engine
        .set_run_state(&key, RunState::Failed)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Failed);
    assert!(run.ended_at.is_some());
    assert_eq!(h.finish(&key).await.state, RunState::Failed);
    assert_eq!(h.ti(&key, "slow").await.state, TaskState::Failed);
    assert_eq!(h.ti(&key, "after").await.state, TaskState::Skipped);
    assert_eq!(h.exec.cancels(), [running.attempt()]);

    let again = h
        .engine
        .set_run_state(&key, RunState::Failed)
        .await
        .unwrap();
    assert_eq!(
        again.ended_at, run.ended_at,
        "the same state changes nothing"
    );
    let missing = h
        .engine
        .set_run_state(&RunKey::new("mark_run", "nope"), RunState::Success)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
}

#[tokio::test]
async fn without_max_active_tasks_a_run_keeps_the_default_16_tasks_active() {
    let h = harness().await;
    let tasks: Vec<Value> = (0..40).map(|i| python(&format!("t{i:02}"), &[])).collect();
    h.register(dag("wide", tasks)).await;
    h.exec.set_default(Behavior::Hang);
    let key = h.trigger("wide").await;
    let until = |n: usize| {
        let exec = h.exec.clone();
        async move {
            for _ in 0..2500 {
                if exec.launches().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            panic!("only {} launches, expected {n}", exec.launches().len());
        }
    };
    until(16).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        h.exec.launches().len(),
        16,
        "more than 16 tasks became active"
    );
    // A finished task frees a slot for the next one.
    let first = h.exec.launches()[0].clone();
    assert!(h.exec.finish(&first, Behavior::Succeed(None)));
    until(17).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.exec.launches().len(), 17);
    assert_eq!(
        h.ti(&key, &first.task.task_id).await.state,
        TaskState::Success
    );
}
