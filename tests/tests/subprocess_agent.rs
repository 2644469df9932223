//! Task execution end to end with real processes: the engine on memory adapters, the
//! agent API on 127.0.0.1, the subprocess executor starting the real `leoflow-agent`, which
//! runs bash tasks and python tasks (on a stand-in runtime for the file contract, and on the
//! real shim runtime). Covers success chains, templating, exit codes and retries, timeouts,
//! cancellation, a killed agent and TaskFlow XCom passing, each checked on what a user would
//! see (run and task states, log lines, no stray processes).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod agent_harness;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use leoflow_core::engine::TriggerRequest;
use leoflow_memory::MemoryLogs;
use leoflow_ports::dag::RETURN_VALUE;
use leoflow_ports::datastore::TaskStore;
use leoflow_ports::executor::Executor;
use leoflow_ports::run::TaskKey;
use leoflow_ports::state::{RunState, TaskState};
use leoflow_subprocess::{SubprocessConfig, SubprocessExecutor};
use serde_json::{json, Value};

use agent_harness::{
    agent_binary, bind, compile_dag, dag, shim_dir, tokens, until_file, until_gone, Stack,
};

struct Env {
    stack: Stack,
    exec: SubprocessExecutor,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    env_with(|_, _| {}).await
}

/// An environment whose executor config `adjust` may change (it gets the temp dir too).
async fn env_with(adjust: impl FnOnce(&mut SubprocessConfig, &std::path::Path)) -> Env {
    let agent = agent_binary();
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    let tokens = tokens(&url);
    let logs = Arc::new(MemoryLogs::new());
    let mut config = SubprocessConfig::new(agent, dir.path());
    config.kill_grace = Duration::from_secs(5);
    adjust(&mut config, dir.path());
    let exec = SubprocessExecutor::new(config, Arc::new(tokens.clone()), logs.clone());
    let stack = Stack::start(listener, url, tokens, Arc::new(exec.clone()), logs);
    Env { stack, exec, dir }
}

impl Env {
    /// Waits until every agent process has exited (their closing log lines are written
    /// after they report, so after the run may already have ended).
    async fn idle(&self) {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while !self.exec.live().await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < end, "agents still running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A shell snippet writing the shell's process group id to `name` atomically.
    fn write_pgid(&self, name: &str) -> String {
        let p = self.path(name);
        format!("echo $$ > {p}.tmp && mv {p}.tmp {p}")
    }
}

fn bash(id: &str, command: &str, deps: &[&str]) -> Value {
    json!({"task_id": id, "type": "bash", "operator": "BashOperator", "entrypoint": command, "depends_on": deps})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_20_bash_tasks_runs_to_success() {
    let e = env().await;
    let tasks: Vec<Value> = (0..20)
        .map(|i| {
            let prev = (i > 0).then(|| format!("bash_{:02}", i - 1));
            bash(
                &format!("bash_{i:02}"),
                "true",
                &prev.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        })
        .collect();
    e.stack.register(dag("bash_chain_20", tasks)).await;
    let key = e
        .stack
        .trigger("bash_chain_20", TriggerRequest::default())
        .await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);
    e.idle().await;
    let tis = e.stack.store.task_instances(&key).await.unwrap();
    assert_eq!(tis.len(), 20);
    for ti in &tis {
        assert_eq!((ti.state, ti.try_number), (TaskState::Success, 1), "{ti:?}");
        agent_harness::assert_framed_as_success(&e.stack.log(&ti.attempt()).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_commands_are_templated_and_their_last_line_is_the_return_value() {
    let e = env().await;
    let mut spec = dag(
        "templated",
        vec![
            bash(
                "echo",
                "echo {{ ds }} {{ params.x }} {{ params.y }} {{ ti.try_number }} {{ macros.ds_add(ds, 1) }} $AIRFLOW_CTX_DAG_ID/$AIRFLOW_CTX_TASK_ID $GREETING",
                &[],
            ),
            bash("unknown", "echo {{ var.value.secret }}", &[]),
        ],
    );
    spec["params"] = json!({"x": {"value": "hello"}, "y": {"value": "default"}});
    spec["tasks"][0]["env"] = json!({"GREETING": "hi"});
    spec["tasks"][1]["retries"] = json!(3);
    e.stack.register(spec).await;
    let key = e
        .stack
        .trigger(
            "templated",
            TriggerRequest {
                logical_date: Some(Utc.with_ymd_and_hms(2024, 1, 10, 0, 0, 0).unwrap()),
                conf: Some(json!({"y": "from-conf"})),
                ..TriggerRequest::default()
            },
        )
        .await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);

    let echo = e.stack.ti(&key, "echo").await;
    assert_eq!(echo.state, TaskState::Success);
    let expected = "2024-01-10 hello from-conf 1 2024-01-11 templated/echo hi";
    let log = e.stack.log(&echo.attempt()).await;
    assert!(log.iter().any(|l| l == expected), "{log:?}");
    let xcom = e
        .stack
        .engine
        .xcom()
        .get(&TaskKey::new(&key, "echo", -1), RETURN_VALUE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(xcom.value, json!(expected));

    // An expression the agent cannot render fails the task at once, naming it, without
    // burning retries on a mistake that cannot go away.
    let unknown = e.stack.ti(&key, "unknown").await;
    assert_eq!((unknown.state, unknown.try_number), (TaskState::Failed, 1));
    let msg = unknown.error_message.unwrap();
    assert!(msg.contains("`{{ var.value.secret }}`"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_exit_code_is_recorded_and_the_retry_succeeds() {
    let e = env().await;
    let marker = e.path("marker");
    let mut flaky = bash(
        "flaky",
        &format!(
            "if [ -f {marker} ]; then echo second; else touch {marker}; echo first >&2; exit 3; fi"
        ),
        &[],
    );
    flaky["retries"] = json!(1);
    flaky["retry_delay_seconds"] = json!(0);
    e.stack.register(dag("flaky", vec![flaky])).await;
    let key = e.stack.trigger("flaky", TriggerRequest::default()).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);
    e.idle().await;

    let ti = e.stack.ti(&key, "flaky").await;
    assert_eq!((ti.state, ti.try_number), (TaskState::Success, 2));
    let tries = e.stack.store.tries(&ti.key).await.unwrap();
    let first = &tries[0];
    assert_eq!(first.try_number, 1);
    assert_eq!(first.exit_code, Some(3));
    assert_eq!(
        first.error_message.as_deref(),
        Some("the bash command exited with code 3: first")
    );
    let log = e.stack.log(&first.attempt()).await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("✗ task failed (exit 3) in ")
                && l.ends_with(": the bash command exited with code 3: first")),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_process_tree() {
    let e = env().await;
    let mut slow = bash(
        "slow",
        &format!("sleep 300 & sleep 300 & {}; wait", e.write_pgid("pgid")),
        &[],
    );
    slow["execution_timeout_seconds"] = json!(2);
    e.stack.register(dag("slow", vec![slow])).await;
    let key = e.stack.trigger("slow", TriggerRequest::default()).await;
    let pgid: i32 = until_file(&e.dir.path().join("pgid"))
        .await
        .parse()
        .unwrap();
    assert!(agent_harness::group_members(pgid).len() >= 3);

    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    let ti = e.stack.ti(&key, "slow").await;
    assert_eq!(ti.state, TaskState::Failed);
    let msg = ti.error_message.unwrap();
    assert!(msg.contains("timed out"), "{msg}");
    until_gone(pgid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_attempt_kills_its_tree_and_fails_it() {
    let e = env().await;
    let task = bash(
        "long",
        &format!("sleep 300 & sleep 300 & {}; wait", e.write_pgid("pgid")),
        &[],
    );
    e.stack.register(dag("long", vec![task])).await;
    let key = e.stack.trigger("long", TriggerRequest::default()).await;
    let pgid: i32 = until_file(&e.dir.path().join("pgid"))
        .await
        .parse()
        .unwrap();
    assert!(agent_harness::group_members(pgid).len() >= 3);
    let ti = e.stack.reach(&key, "long", TaskState::Running).await;

    e.exec.cancel(&ti.attempt()).await.unwrap();
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    let ti = e.stack.ti(&key, "long").await;
    assert_eq!(ti.state, TaskState::Failed);
    let msg = ti.error_message.unwrap();
    assert!(msg.contains("cancel"), "{msg}");
    until_gone(pgid).await;
    e.idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_with_sigkill_fails_the_attempt_which_is_retried() {
    let e = env().await;
    let marker = e.path("marker");
    let mut task = bash(
        "victim",
        &format!(
            "if [ -f {marker} ]; then exit 0; fi; touch {marker}; {}; sleep 300",
            e.write_pgid("pgid")
        ),
        &[],
    );
    task["retries"] = json!(1);
    task["retry_delay_seconds"] = json!(0);
    e.stack.register(dag("victim", vec![task])).await;
    let key = e.stack.trigger("victim", TriggerRequest::default()).await;
    let pgid: i32 = until_file(&e.dir.path().join("pgid"))
        .await
        .parse()
        .unwrap();
    let ti = e.stack.reach(&key, "victim", TaskState::Running).await;
    let agent: i32 = ti.executor_ref.clone().unwrap().parse().unwrap();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);
    let ti = e.stack.ti(&key, "victim").await;
    assert_eq!((ti.state, ti.try_number), (TaskState::Success, 2));
    let first = &e.stack.store.tries(&ti.key).await.unwrap()[0];
    let msg = first.error_message.clone().unwrap();
    assert!(
        msg.contains("without reporting a result") && msg.contains("killed by signal 9"),
        "{msg}"
    );
    // The orphaned task of the killed agent did not survive it.
    until_gone(pgid).await;
}

/// A stand-in for the shim's python runtime (`python -m leoflow_shim run <workdir>`), which
/// is written elsewhere: it keeps the file contract the agent relies on — `context.json`
/// in, `result.json` and `xcom.jsonl` out — so the agent's side of it is tested here.
const FAKE_RUNTIME: &str = r#"#!/usr/bin/env python3
import json, os, sys
assert sys.argv[1:4] == ["-m", "leoflow_shim", "run"], sys.argv
work = sys.argv[4]
ctx = json.load(open(os.path.join(work, "context.json")))
task = ctx["task"]["task_id"]
def result(**r):
    json.dump(r, open(os.path.join(work, "result.json"), "w"))
print("cwd=" + os.getcwd())
print("pythonpath=" + os.environ.get("PYTHONPATH", ""))
print("token=" + ("yes" if os.environ.get("LEOFLOW_AGENT_TOKEN") else "no"))
if task == "up":
    with open(os.path.join(work, "xcom.jsonl"), "a") as f:
        f.write(json.dumps({"key": "extra", "value": 42}) + "\n")
    result(status="success", return_value={"n": 7})
elif task == "down":
    result(status="success", return_value=ctx["inputs"]["v"]["n"] + 1)
elif task == "skip":
    result(status="skipped", message="nothing to do")
elif task == "fail_hard":
    result(status="failed", error="AirflowFailException: no", retryable=False)
    sys.exit(1)
elif task == "big":
    result(status="success", return_value="x" * 300 * 1024)
"#;

fn python(id: &str, deps: &[&str]) -> Value {
    json!({"task_id": id, "type": "python", "entrypoint": format!("dag.py:{id}"), "depends_on": deps, "retries": 2, "retry_delay_seconds": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_tasks_keep_the_runtime_file_contract() {
    let e = env_with(|config, dir| {
        let runtime = dir.join("fake-python");
        std::fs::write(&runtime, FAKE_RUNTIME).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&runtime)
            .status()
            .unwrap();
        config.python = runtime.display().to_string();
        config.shim_path = Some(dir.join("shim"));
        config.warm_runtime = false;
    })
    .await;
    let mut down = python("down", &["up"]);
    down["xcom_input"] = json!({"v": "up"});
    let mut big = python("big", &[]);
    big["retries"] = json!(0);
    e.stack
        .register(dag(
            "py",
            vec![
                python("up", &[]),
                down,
                python("skip", &[]),
                python("fail_hard", &[]),
                big,
            ],
        ))
        .await;
    let key = e.stack.trigger("py", TriggerRequest::default()).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    e.idle().await;
    let xcom = |task: &'static str, k: &'static str| {
        let key = TaskKey::new(&key, task, -1);
        let store = e.stack.engine.xcom().clone();
        async move { store.get(&key, k).await.unwrap().map(|x| x.value) }
    };

    let up = e.stack.ti(&key, "up").await;
    assert_eq!(up.state, TaskState::Success);
    assert_eq!(xcom("up", RETURN_VALUE).await, Some(json!({"n": 7})));
    assert_eq!(
        xcom("up", "extra").await,
        Some(json!(42)),
        "xcom.jsonl pushes"
    );
    let log = e.stack.log(&up.attempt()).await;
    let project = e.dir.path().display().to_string();
    assert!(log.contains(&format!("cwd={project}")), "{log:?}");
    assert!(
        log.contains(&format!("pythonpath={project}/shim:{project}")),
        "{log:?}"
    );
    assert!(log.contains(&"token=yes".to_string()), "{log:?}");

    assert_eq!(e.stack.ti(&key, "down").await.state, TaskState::Success);
    assert_eq!(
        xcom("down", RETURN_VALUE).await,
        Some(json!(8)),
        "inputs arrive through context.json"
    );

    let skip = e.stack.ti(&key, "skip").await;
    assert_eq!(
        (skip.state, skip.error_message.as_deref()),
        (TaskState::Skipped, Some("nothing to do"))
    );

    let hard = e.stack.ti(&key, "fail_hard").await;
    assert_eq!(
        (hard.state, hard.try_number, hard.error_message.as_deref()),
        (TaskState::Failed, 1, Some("AirflowFailException: no")),
        "a non-retryable failure uses none of its retries"
    );

    let big = e.stack.ti(&key, "big").await;
    assert_eq!(big.state, TaskState::Failed);
    let msg = big.error_message.clone().unwrap();
    assert!(
        msg.contains("the return value was refused")
            && msg.contains("exceeds the 262144-byte limit"),
        "{msg}"
    );
    let log = e.stack.log(&big.attempt()).await;
    assert!(
        log.last()
            .is_some_and(|l| l.starts_with("✗ task failed") && l.contains("262144")),
        "{log:?}"
    );
}

/// A TaskFlow DAG for the real python runtime (`leoflow-shim/python`).
const TASKFLOW_DAG: &str = r#"
from datetime import datetime

from airflow.exceptions import AirflowFailException
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def taskflow():
    @task
    def extract():
        print("extracting")
        return {"n": 7}

    @task
    def double(v):
        return v["n"] * 2

    @task(multiple_outputs=True)
    def split():
        return {"a": 1, "b": 2}

    @task
    def total(values):
        return sum(values)

    @task
    def add(x):
        return x + 1

    @task
    def hard():
        raise AirflowFailException("no")

    @task
    def not_json():
        return object()

    double(extract())
    parts = split()
    total([parts["a"], parts["b"]])
    total.override(task_id="reduce")(add.expand(x=[1, 2, 3]))
    hard()
    not_json()


taskflow()
"#;

impl Env {
    /// Compiles `source` as the project's dag.py with the real shim and registers it.
    async fn register_python(&self, source: &str) {
        let project = self.dir.path();
        std::fs::write(project.join("dag.py"), source).unwrap();
        let mut spec = compile_dag(project, "dag.py");
        // Retries are available, so a single try proves a failure was not retryable.
        spec["default_args"] = json!({"retries": 2, "retry_delay_seconds": 0});
        self.stack.register(spec).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskflow_dags_run_on_the_real_python_runtime() {
    let e = env_with(|config, _| config.shim_path = Some(shim_dir())).await;
    e.register_python(TASKFLOW_DAG).await;

    let key = e.stack.trigger("taskflow", TriggerRequest::default()).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    e.idle().await;
    let value = |task: &'static str, map_index: i32, k: &'static str| {
        let key = TaskKey::new(&key, task, map_index);
        let store = e.stack.engine.xcom().clone();
        async move { store.get(&key, k).await.unwrap().map(|x| x.value) }
    };
    for task in ["extract", "double", "split", "total", "reduce"] {
        let ti = e.stack.ti(&key, task).await;
        assert_eq!(ti.state, TaskState::Success, "{task}: {ti:?}");
    }
    assert_eq!(value("double", -1, RETURN_VALUE).await, Some(json!(14)));
    assert_eq!(value("split", -1, "b").await, Some(json!(2)));
    assert_eq!(
        value("total", -1, RETURN_VALUE).await,
        Some(json!(3)),
        "list fan-in of keyed outputs"
    );
    assert_eq!(value("add", 2, RETURN_VALUE).await, Some(json!(4)));
    assert_eq!(
        value("reduce", -1, RETURN_VALUE).await,
        Some(json!(9)),
        "a reduce over the mapped task"
    );
    let extract = e.stack.ti(&key, "extract").await;
    assert!(e
        .stack
        .log(&extract.attempt())
        .await
        .contains(&"extracting".to_string()));

    let hard = e.stack.ti(&key, "hard").await;
    assert_eq!((hard.state, hard.try_number), (TaskState::Failed, 1));
    assert!(hard.error_message.unwrap().contains("no"));
    let not_json = e.stack.ti(&key, "not_json").await;
    assert_eq!(
        (not_json.state, not_json.try_number),
        (TaskState::Failed, 1)
    );
    let msg = not_json.error_message.unwrap();
    assert!(msg.to_lowercase().contains("json"), "{msg}");
}

/// A DAG whose one task reports the command line of the process that started it.
const PARENT_DAG: &str = r#"
from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def parent():
    @task
    def who_started_me():
        import os

        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()

    who_started_me()


parent()
"#;

/// Runs PARENT_DAG and answers the parent command line its task saw.
async fn parent_of_a_python_attempt(e: &Env) -> String {
    e.register_python(PARENT_DAG).await;
    let key = e.stack.trigger("parent", TriggerRequest::default()).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);
    let task = TaskKey::new(&key, "who_started_me", -1);
    let value = e
        .stack
        .engine
        .xcom()
        .get(&task, RETURN_VALUE)
        .await
        .unwrap();
    value.unwrap().value.as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_attempts_are_forked_from_the_warm_runtime_when_it_is_up() {
    let e = env_with(|config, _| config.shim_path = Some(shim_dir())).await;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !e.exec.warm_runtime_ready() {
        assert!(
            std::time::Instant::now() < end,
            "the warm runtime never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let parent = parent_of_a_python_attempt(&e).await;
    assert!(parent.contains("leoflow_shim serve"), "{parent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_warm_runtime_python_attempts_start_cold_under_the_agent() {
    let e = env_with(|config, _| {
        config.shim_path = Some(shim_dir());
        config.warm_runtime = false;
    })
    .await;
    assert!(!e.exec.warm_runtime_ready());
    let parent = parent_of_a_python_attempt(&e).await;
    assert!(parent.contains("leoflow-agent"), "{parent}");
}
