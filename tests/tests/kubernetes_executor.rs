//! The Kubernetes executor end to end against a fake API server speaking the real wire
//! protocol: the engine on memory adapters, the agent API on 127.0.0.1, the executor using
//! the ordinary kube client through a kubeconfig, and the fake kubelet running the real
//! `leoflow-agent` in each pod. Covers one pod per attempt, retries, timeouts and deadlines,
//! OOM/image-pull/unschedulable failures, cancellation, a control-plane restart, watch
//! disconnects and 410 Gone, and resource validation — each checked on what a user sees.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod agent_harness;
mod fake_kube;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt;
use leoflow_core::engine::TriggerRequest;
use leoflow_http::token::AgentTokens;
use leoflow_kubernetes::{pod_name, ClusterAccess, KubernetesConfig, KubernetesExecutor};
use leoflow_memory::MemoryLogs;
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::TaskStore;
use leoflow_ports::executor::{Attempt, AttemptCredentials, Event, Executor};
use leoflow_ports::run::{AttemptId, RunKey, RunType, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use serde_json::{json, Value};

use agent_harness::{agent_binary, bind, compile_dag, dag, shim_dir, tokens, Stack};
use fake_kube::{FakeKube, Fault, AGENT_IN_IMAGE};

struct Env {
    stack: Stack,
    kube: FakeKube,
    exec: KubernetesExecutor,
    dir: tempfile::TempDir,
}

fn config(kube: &FakeKube, project: &Path) -> KubernetesConfig {
    let mut c = KubernetesConfig::new(
        ClusterAccess::Kubeconfig(kube.kubeconfig()),
        "leoflow/agent:test",
        "leoflow/task:test",
    );
    c.agent_path_in_image = AGENT_IN_IMAGE.into();
    c.project_dir = project.display().to_string();
    c.cancel_grace = Duration::from_secs(5);
    c
}

async fn env() -> Env {
    env_with(|_| {}).await
}

async fn env_with(adjust: impl FnOnce(&mut KubernetesConfig)) -> Env {
    let kube = FakeKube::start(agent_binary()).await;
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    let tokens = tokens(&url);
    let logs = Arc::new(MemoryLogs::new());
    let mut config = config(&kube, dir.path());
    adjust(&mut config);
    let exec = KubernetesExecutor::connect(config, Arc::new(tokens.clone()), logs.clone())
        .await
        .unwrap();
    let stack = Stack::start(listener, url, tokens, Arc::new(exec.clone()), logs);
    Env {
        stack,
        kube,
        exec,
        dir,
    }
}

impl Env {
    /// Waits (bounded) until every pod and secret is gone.
    async fn collected(&self) {
        let end = Instant::now() + Duration::from_secs(30);
        while !self.kube.pods().is_empty() || !self.kube.secrets().is_empty() {
            assert!(
                Instant::now() < end,
                "pods or secrets left: {:?} {:?}",
                self.kube
                    .pods()
                    .iter()
                    .map(|p| &p["metadata"]["name"])
                    .collect::<Vec<_>>(),
                self.kube.secrets().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn run(&self, spec: Value) -> RunKey {
        let dag_id = spec["dag_id"].as_str().unwrap().to_string();
        self.stack.register(spec).await;
        self.stack.trigger(&dag_id, TriggerRequest::default()).await
    }

    /// Waits until the attempt's log says `needle` (its closing lines may land after the
    /// run ended).
    async fn log_with(&self, attempt: &AttemptId, needle: &str) -> Vec<String> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.stack.log(attempt).await;
            if log.iter().any(|l| l.contains(needle)) {
                return log;
            }
            assert!(Instant::now() < end, "no {needle:?} in {log:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn bash(id: &str, command: &str, deps: &[&str]) -> Value {
    json!({"task_id": id, "type": "bash", "operator": "BashOperator", "entrypoint": command, "depends_on": deps})
}

fn pod_names(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_of_bash_tasks_runs_with_one_pod_per_attempt_and_leaves_nothing_behind() {
    let e = env().await;
    let mut tasks = vec![bash("start", "echo start", &[])];
    for i in 0..20 {
        tasks.push(bash(&format!("work_{i:02}"), "echo working", &["start"]));
    }
    let works: Vec<String> = (0..20).map(|i| format!("work_{i:02}")).collect();
    tasks.push(bash(
        "join",
        "echo joined",
        &works.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let key = e.run(dag("fanout_22", tasks)).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);

    let tis = e.stack.store.task_instances(&key).await.unwrap();
    assert_eq!(tis.len(), 22);
    let expected: HashSet<String> = tis.iter().map(|ti| pod_name(&ti.attempt())).collect();
    let created = pod_names(&e.kube.created_pods());
    assert_eq!(created.len(), 22, "{created:?}");
    assert_eq!(created.iter().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(e.kube.created_secrets().len(), 22);
    for ti in &tis {
        assert_eq!((ti.state, ti.try_number), (TaskState::Success, 1), "{ti:?}");
        e.log_with(&ti.attempt(), "✓ task succeeded in ").await;
    }
    e.collected().await;
    assert!(e.exec.live().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_has_the_documented_shape_and_the_token_only_in_its_secret() {
    let e = env().await;
    let mut spec = dag(
        "shaped",
        vec![bash(
            "t",
            "test -z \"$LEOFLOW_AGENT_TOKEN\" && echo $GREETING",
            &[],
        )],
    );
    spec["tasks"][0]["env"] = json!({"GREETING": "hi", "LEOFLOW_AGENT_URL": "http://evil"});
    spec["tasks"][0]["execution_timeout_seconds"] = json!(60);
    spec["tasks"][0]["resources"] =
        json!({"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}});
    spec["tasks"][0]["execution"] = json!({
        "node_selector": {"pool": "batch"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "leoflow", "effect": "NoSchedule"}],
        "service_account": "etl-runner", "image_pull_policy": "Always"});
    let key = e.run(spec).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);
    let ti = e.stack.ti(&key, "t").await;
    e.log_with(&ti.attempt(), "hi").await;

    let pod = &e.kube.created_pods()[0];
    let name = pod_name(&ti.attempt());
    assert_eq!(pod["metadata"]["name"], json!(name));
    assert_eq!(pod["metadata"]["namespace"], "leoflow");
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "leoflow");
    assert_eq!(labels["leoflow.io/dag-id"], "shaped");
    assert_eq!(labels["leoflow.io/task-id"], "t");
    assert_eq!(labels["leoflow.io/try-number"], "1");
    assert_eq!(labels["leoflow.io/map-index"], "-1");
    assert_eq!(
        pod["metadata"]["annotations"]["leoflow.io/run-id"],
        json!(key.run_id)
    );
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(
        spec["activeDeadlineSeconds"], 90,
        "timeout + the 30 s grace"
    );
    assert_eq!(spec["serviceAccountName"], "etl-runner");
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["nodeSelector"], json!({"pool": "batch"}));
    assert_eq!(spec["tolerations"][0]["key"], "dedicated");
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    let init = &spec["initContainers"][0];
    assert_eq!(init["image"], "leoflow/agent:test");
    assert_eq!(
        init["command"],
        json!(["cp", AGENT_IN_IMAGE, "/leoflow/bin/leoflow-agent"])
    );
    let task = &spec["containers"][0];
    assert_eq!(task["name"], "task");
    assert_eq!(task["image"], "leoflow/task:test");
    assert_eq!(task["imagePullPolicy"], "Always");
    assert_eq!(task["command"], json!(["/leoflow/bin/leoflow-agent"]));
    assert_eq!(
        task["resources"],
        json!({"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}})
    );
    let sc = &task["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let env = task["env"].as_array().unwrap();
    let var = |n: &str| env.iter().find(|v| v["name"] == n).cloned().unwrap();
    assert_eq!(var("GREETING")["value"], "hi");
    assert_eq!(
        var("LEOFLOW_AGENT_URL")["value"],
        json!(e.stack.url),
        "a task's env cannot redirect the agent"
    );
    assert_eq!(
        var("LEOFLOW_AGENT_TOKEN")["valueFrom"]["secretKeyRef"],
        json!({"name": name, "key": "token", "optional": false})
    );
    let secret = &e.kube.created_secrets()[0];
    let token = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["token"].as_str().unwrap())
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    let claims = e.stack.tokens.verify(&token).unwrap();
    assert_eq!(claims.attempt(), ti.attempt());
    assert!(
        !pod.to_string().contains(&token),
        "the token is in the pod spec"
    );
    assert_eq!(secret["metadata"]["name"], json!(name));
    let owner = &secret["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["name"]),
        (&json!("Pod"), &json!(name))
    );
    assert_eq!(owner["uid"], e.kube.created_pods()[0]["metadata"]["uid"]);
    e.collected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_create_a_new_pod_per_try_and_failed_pods_logs_are_kept() {
    let e = env().await;
    let mut spec = dag("flaky", vec![bash("t", "echo oops >&2; exit 3", &[])]);
    spec["tasks"][0]["retries"] = json!(2);
    spec["tasks"][0]["retry_delay_seconds"] = json!(0);
    let key = e.run(spec).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    let ti = e.stack.ti(&key, "t").await;
    assert_eq!((ti.state, ti.try_number), (TaskState::Failed, 3));
    let created = pod_names(&e.kube.created_pods());
    let expected: Vec<String> = (1..=3)
        .map(|try_number| {
            pod_name(&AttemptId {
                task: ti.key.clone(),
                try_number,
            })
        })
        .collect();
    assert_eq!(created, expected);
    let log = e.log_with(&ti.attempt(), "✗ task failed").await;
    assert!(log.iter().any(|l| l == "oops"), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("code 3")), "{log:#?}");
    e.collected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pods_are_kept_when_configured() {
    let e = env_with(|c| c.keep_on_failure = true).await;
    let key = e
        .run(dag(
            "kept",
            vec![bash("bad", "exit 4", &[]), bash("good", "true", &[])],
        ))
        .await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    let bad = pod_name(&e.stack.ti(&key, "bad").await.attempt());
    let end = Instant::now() + Duration::from_secs(30);
    while pod_names(&e.kube.pods()) != vec![bad.clone()]
        || e.kube.pods()[0]["status"]["phase"] != "Failed"
    {
        assert!(Instant::now() < end, "{:?}", pod_names(&e.kube.pods()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(e.kube.pods()[0]["status"]["phase"], "Failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_the_task_and_its_pod_is_deleted() {
    let e = env().await;
    let mut spec = dag("slow", vec![bash("t", "sleep 30", &[])]);
    spec["tasks"][0]["execution_timeout_seconds"] = json!(1);
    let began = Instant::now();
    let key = e.run(spec).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    let ti = e.stack.ti(&key, "t").await;
    assert_eq!(ti.state, TaskState::Failed);
    e.log_with(&ti.attempt(), "timed out").await;
    e.collected().await;
}

/// Credentials whose agent URL reaches nothing: the agent keeps retrying its start.
struct Unreachable(AgentTokens);

impl AttemptCredentials for Unreachable {
    fn token_for(&self, attempt: &Attempt) -> String {
        self.0.token_for(attempt)
    }

    fn agent_url(&self) -> String {
        "http://127.0.0.1:9".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_past_its_deadline_is_stopped_by_kubernetes_with_a_clear_message() {
    let kube = FakeKube::start(agent_binary()).await;
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    let tokens = tokens(&url);
    let logs = Arc::new(MemoryLogs::new());
    let mut config = config(&kube, dir.path());
    config.deadline_grace = Duration::ZERO;
    let exec =
        KubernetesExecutor::connect(config, Arc::new(Unreachable(tokens.clone())), logs.clone())
            .await
            .unwrap();
    let stack = Stack::start(listener, url, tokens, Arc::new(exec), logs);
    let mut spec = dag("hung", vec![bash("t", "true", &[])]);
    spec["tasks"][0]["execution_timeout_seconds"] = json!(1);
    stack.register(spec).await;
    let key = stack.trigger("hung", TriggerRequest::default()).await;
    assert_eq!(stack.finish(&key).await.state, RunState::Failed);
    let ti = stack.ti(&key, "t").await;
    // The engine's own timeout may fail the attempt first; the pod's line still lands.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let log = stack.log(&ti.attempt()).await;
        if log.iter().any(|l| {
            l.contains("DeadlineExceeded")
                && l.contains("activeDeadlineSeconds")
                && l.contains("execution_timeout")
        }) {
            break;
        }
        assert!(Instant::now() < end, "{log:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Credentials whose token the agent API refuses: the agent can only say so on stderr.
struct Forged(AgentTokens);

impl AttemptCredentials for Forged {
    fn token_for(&self, _: &Attempt) -> String {
        "forged".into()
    }

    fn agent_url(&self) -> String {
        self.0.agent_url()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_fails_before_its_agent_reports_leaves_its_own_log_in_the_attempt_log() {
    let kube = FakeKube::start(agent_binary()).await;
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    let tokens = tokens(&url);
    let logs = Arc::new(MemoryLogs::new());
    let exec = KubernetesExecutor::connect(
        config(&kube, dir.path()),
        Arc::new(Forged(tokens.clone())),
        logs.clone(),
    )
    .await
    .unwrap();
    let stack = Stack::start(listener, url, tokens, Arc::new(exec), logs);
    stack
        .register(dag("forged", vec![bash("t", "true", &[])]))
        .await;
    let key = stack.trigger("forged", TriggerRequest::default()).await;
    assert_eq!(stack.finish(&key).await.state, RunState::Failed);
    let ti = stack.ti(&key, "t").await;
    let log = stack.log(&ti.attempt()).await;
    let header = log
        .iter()
        .position(|l| l.ends_with("log (last 200 lines):"))
        .unwrap_or_else(|| panic!("the pod's log was not copied: {log:#?}"));
    assert!(
        log[header..]
            .iter()
            .any(|l| l.contains("start failed") && l.contains("401")),
        "{log:#?}"
    );
    assert!(
        log.iter().all(|l| !l.starts_with("child_pgid=")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("exited with code 1 without reporting a result")),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kills_image_pull_errors_and_unschedulable_pods_are_clear_failures() {
    let e = env_with(|c| {
        c.image_pull_timeout = Duration::from_millis(500);
        c.unschedulable_timeout = Duration::from_millis(500);
    })
    .await;
    e.kube.inject("oom:1", Fault::OomKill);
    e.kube.inject("missing:1", Fault::ImagePull);
    e.kube.inject("huge:1", Fault::Unschedulable);
    let mut keys = Vec::new();
    for (dag_id, image) in [("oom", "oom:1"), ("pull", "missing:1"), ("sched", "huge:1")] {
        let mut spec = dag(dag_id, vec![bash("t", "sleep 5", &[])]);
        spec["image"] = json!(image);
        spec["tasks"][0]["resources"] = json!({"limits": {"memory": "64Mi"}});
        keys.push(e.run(spec).await);
    }
    let expect = [
        vec!["OOMKilled", "64Mi", "resources.limits.memory"],
        vec![
            "missing:1",
            "cannot be pulled",
            "ImagePullBackOff",
            "gave up after",
        ],
        vec!["cannot be scheduled", "node_selector", "gave up after"],
    ];
    for (key, needles) in keys.iter().zip(expect) {
        assert_eq!(e.stack.finish(key).await.state, RunState::Failed);
        let ti = e.stack.ti(key, "t").await;
        assert_eq!(ti.state, TaskState::Failed);
        let log = e.log_with(&ti.attempt(), needles[0]).await;
        let line = log.iter().find(|l| l.contains(needles[0])).unwrap();
        for n in &needles {
            assert!(line.contains(n), "{n:?} not in {line:?}");
        }
    }
    e.collected().await;
}

fn attempt_of(dag_id: &str, task: &str, try_number: u32) -> Attempt {
    let spec = dag(dag_id, vec![bash(task, "sleep 30", &[])]);
    let spec = DagSpec::from_json(spec.to_string().as_bytes()).unwrap();
    Attempt {
        id: AttemptId {
            task: TaskKey::new(&RunKey::new(dag_id, "manual__1"), task, -1),
            try_number,
        },
        dag: Arc::new(spec),
        version_number: 1,
        run_type: RunType::Manual,
        timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_is_idempotent_even_across_executors_and_cancel_deletes_the_pod() {
    let kube = FakeKube::start(agent_binary()).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = Arc::new(MemoryLogs::new());
    let creds = Arc::new(Unreachable(tokens("http://127.0.0.1:9")));
    let config = config(&kube, dir.path());
    let exec = KubernetesExecutor::connect(config.clone(), creds.clone(), logs.clone())
        .await
        .unwrap();
    let mut events = exec.subscribe();
    let a = attempt_of("idem", "t", 1);
    let (r1, r2) = tokio::join!(exec.launch(a.clone()), exec.launch(a.clone()));
    r1.unwrap();
    r2.unwrap();
    let other = KubernetesExecutor::connect(config, creds, logs)
        .await
        .unwrap();
    other.launch(a.clone()).await.unwrap();
    assert_eq!(kube.created_pods().len(), 1);
    assert_eq!(kube.secrets().len(), 1);
    assert_eq!(other.live().await.unwrap(), vec![a.id.clone()]);

    let started = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&started, Event::Started { attempt, executor_ref: Some(r), hostname: Some(h) }
            if *attempt == a.id && *r == pod_name(&a.id) && h == "fake-node"),
        "{started:?}"
    );
    exec.cancel(&attempt_of("idem", "unknown", 1).id)
        .await
        .unwrap();
    exec.cancel(&a.id).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&ended, Event::Exited { attempt, .. } if *attempt == a.id),
        "{ended:?}"
    );
    let end = Instant::now() + Duration::from_secs(30);
    while !kube.pods().is_empty() || !kube.secrets().is_empty() {
        assert!(
            Instant::now() < end,
            "the cancelled pod or its secret is left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(exec.live().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_the_api_server_refuses_is_a_rejected_launch_that_says_what_to_fix() {
    let kube = FakeKube::start(agent_binary()).await;
    let dir = tempfile::tempdir().unwrap();
    let exec = KubernetesExecutor::connect(
        config(&kube, dir.path()),
        Arc::new(tokens("http://127.0.0.1:9")),
        Arc::new(MemoryLogs::new()),
    )
    .await
    .unwrap();
    // A spec that skipped registration's validation: the API server is the last check.
    let mut a = attempt_of("refused", "t", 1);
    let mut dag = (*a.dag).clone();
    dag.tasks[0].resources = Some(leoflow_ports::dag::Resources {
        requests: Some(leoflow_ports::dag::ResourceList {
            cpu: Some("lots".into()),
            memory: None,
        }),
        limits: None,
    });
    a.dag = Arc::new(dag);
    for _ in 0..2 {
        let err = exec.launch(a.clone()).await.unwrap_err();
        let leoflow_ports::executor::Error::Rejected { message } = &err else {
            panic!("{err:?}")
        };
        for needle in [
            pod_name(&a.id).as_str(),
            "resources",
            "\"lots\"",
            "fix the task's spec",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
    }
    assert!(kube.pods().is_empty() && kube.secrets().is_empty());
    assert!(exec.live().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_control_plane_reattaches_to_its_running_pod() {
    let e = env().await;
    let key = e
        .run(dag(
            "restart",
            vec![bash("t", "sleep 2; echo finished", &[])],
        ))
        .await;
    e.stack.reach(&key, "t", TaskState::Running).await;
    let Env {
        stack,
        kube,
        exec,
        dir,
    } = e;
    drop(exec);
    let config = config(&kube, dir.path());
    let exec2 =
        KubernetesExecutor::connect(config, Arc::new(stack.tokens.clone()), stack.logs.clone())
            .await
            .unwrap();
    let stack = stack.restart(Arc::new(exec2.clone())).await;
    assert_eq!(stack.finish(&key).await.state, RunState::Success);
    let ti = stack.ti(&key, "t").await;
    assert_eq!((ti.state, ti.try_number), (TaskState::Success, 1));
    assert_eq!(kube.created_pods().len(), 1, "no duplicate pod");
    let log = stack.log(&ti.attempt()).await;
    assert!(log.iter().any(|l| l == "finished"), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_disconnects_and_410_gone_are_survived_and_pods_deleted_meanwhile_are_lost() {
    let e = env().await;
    let key = e
        .run(dag(
            "resync",
            vec![
                bash("ok", "sleep 1; echo ok", &[]),
                bash("victim", "sleep 30", &[]),
            ],
        ))
        .await;
    e.stack.reach(&key, "victim", TaskState::Running).await;
    e.stack.reach(&key, "ok", TaskState::Running).await;
    let lists = e.kube.lists();
    e.kube.compact();
    e.kube.drop_watches();
    let victim = e.stack.ti(&key, "victim").await.attempt();
    e.kube.delete_pod_now("leoflow", &pod_name(&victim));
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);
    assert!(
        e.kube.lists() > lists,
        "the watcher did not list again after 410 Gone"
    );
    assert_eq!(e.stack.ti(&key, "ok").await.state, TaskState::Success);
    let ti = e.stack.ti(&key, "victim").await;
    assert_eq!(ti.state, TaskState::Failed);
    e.log_with(&victim, "was deleted before it finished").await;
    e.collected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_resource_quantities_are_rejected_when_the_dag_is_registered() {
    let e = env().await;
    let mut spec = dag("greedy", vec![bash("t", "true", &[])]);
    spec["tasks"][0]["resources"] =
        json!({"requests": {"cpu": "lots"}, "limits": {"memory": "1 GB"}});
    let spec = DagSpec::from_json(spec.to_string().as_bytes()).unwrap();
    let err = e.stack.engine.register(spec).await.unwrap_err().to_string();
    for needle in [
        "resources.requests.cpu",
        "\"lots\"",
        "resources.limits.memory",
        "not a Kubernetes quantity",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(e.kube.created_pods().is_empty());
}

/// Runs only when `KUBECONFIG` names a reachable cluster: lists Leoflow's pods there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_cluster_is_reachable_when_kubeconfig_says_so() {
    let Some(path) = std::env::var_os("KUBECONFIG").filter(|p| Path::new(p).exists()) else {
        println!("skipped: KUBECONFIG does not name a kubeconfig file; no real-cluster test");
        return;
    };
    let mut config = KubernetesConfig::new(
        ClusterAccess::Kubeconfig(path.into()),
        "leoflow/agent:latest",
        "leoflow/task:latest",
    );
    config.namespace = std::env::var("LEOFLOW_TEST_NAMESPACE").unwrap_or_else(|_| "leoflow".into());
    let logs = Arc::new(MemoryLogs::new());
    let creds = Arc::new(tokens("http://127.0.0.1:9"));
    let exec = match KubernetesExecutor::connect(config, creds, logs).await {
        Ok(exec) => exec,
        Err(e) => {
            println!("skipped: the cluster of KUBECONFIG is not reachable ({e})");
            return;
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), exec.live()).await {
        Ok(Ok(live)) => println!("real cluster: {} live Leoflow attempts", live.len()),
        Ok(Err(e)) => println!("skipped: the cluster of KUBECONFIG is not reachable ({e})"),
        Err(_) => println!("skipped: the cluster of KUBECONFIG did not answer within 10 s"),
    }
}

/// A TaskFlow DAG for the real python runtime, with XCom passing and a mapped task.
const TASKFLOW_DAG: &str = r#"
from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def taskflow_k8s():
    @task
    def extract():
        print("extracting")
        return {"n": 7}

    @task
    def double(v):
        return v["n"] * 2

    @task
    def add(x):
        return x + 1

    double(extract())
    add.expand(x=[1, 2, 3])


taskflow_k8s()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_airflow_benchmark_dags_run_with_one_pod_per_attempt() {
    let dags = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/airflow/dags");
    if !dags.join("bench_40.py").exists() {
        println!(
            "skipped: {} is not there (shared/ beside the repository)",
            dags.display()
        );
        return;
    }
    let e = env_with(|c| c.shim_path = Some(shim_dir().display().to_string())).await;
    for (file, tasks) in [("bench_40.py", 40), ("fanout_100.py", 102)] {
        std::fs::copy(dags.join(file), e.dir.path().join(file)).unwrap();
        let before = e.kube.created_pods().len();
        let key = e.run(compile_dag(e.dir.path(), file)).await;
        assert_eq!(
            e.stack.finish(&key).await.state,
            RunState::Success,
            "{file}"
        );
        let tis = e.stack.store.task_instances(&key).await.unwrap();
        assert_eq!(tis.len(), tasks, "{file}");
        assert!(tis
            .iter()
            .all(|ti| ti.state == TaskState::Success && ti.try_number == 1));
        let created = pod_names(&e.kube.created_pods()[before..]);
        let expected: HashSet<String> = tis.iter().map(|ti| pod_name(&ti.attempt())).collect();
        assert_eq!(created.len(), tasks, "{file}: one pod per attempt");
        assert_eq!(
            created.into_iter().collect::<HashSet<_>>(),
            expected,
            "{file}"
        );
    }
    e.collected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_taskflow_tasks_run_in_pods_on_the_real_shim_runtime() {
    let e = env_with(|c| c.shim_path = Some(shim_dir().display().to_string())).await;
    std::fs::write(e.dir.path().join("dag.py"), TASKFLOW_DAG).unwrap();
    let key = e.run(compile_dag(e.dir.path(), "dag.py")).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);
    let xcom = e.stack.engine.xcom().clone();
    let double = xcom
        .get(&TaskKey::new(&key, "double", -1), "return_value")
        .await
        .unwrap()
        .map(|x| x.value);
    assert_eq!(double, Some(json!(14)));
    let added = xcom
        .get(&TaskKey::new(&key, "add", 2), "return_value")
        .await
        .unwrap()
        .map(|x| x.value);
    assert_eq!(added, Some(json!(4)));
    let map_indexes: HashSet<String> = e
        .kube
        .created_pods()
        .iter()
        .filter(|p| p["metadata"]["labels"]["leoflow.io/task-id"] == "add")
        .map(|p| {
            p["metadata"]["labels"]["leoflow.io/map-index"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        map_indexes,
        HashSet::from(["0".into(), "1".into(), "2".into()])
    );
    assert_eq!(e.kube.created_pods().len(), 5);
    e.collected().await;
}
