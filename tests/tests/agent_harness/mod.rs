//! What the agent end-to-end tests share: an engine on memory adapters with the agent API
//! served on a random 127.0.0.1 port, the `leoflow-agent` binary (built on first use),
//! a blocking HTTP helper, DAG files compiled with the real shim, and process-group
//! inspection through `/proc`.

#![allow(dead_code, clippy::unwrap_used)] // Shared by several test crates; test code panics to report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use leoflow_core::clock::SystemClock;
use leoflow_core::engine::{Running, TriggerRequest};
use leoflow_core::{Engine, EngineConfig};
use leoflow_http::token::AgentTokens;
use leoflow_http::{agent_router, AgentApi};
use leoflow_memory::{MemoryLogs, MemoryNotifier, MemoryStore, MemoryXCom};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::TaskStore;
use leoflow_ports::executor::Executor;
use leoflow_ports::log::LogStore;
use leoflow_ports::run::{AttemptId, DagRun, RunKey, TaskInstance, TaskKey};
use leoflow_ports::state::TaskState;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const SECRET: &[u8] = b"a test secret that is long enough";
pub const XCOM_CAP: usize = 256 * 1024;

/// A listener on a free port and the URL agents use to reach it.
pub async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A running engine with the agent API served on `listener`.
pub struct Stack {
    pub engine: Engine,
    pub store: Arc<MemoryStore>,
    pub logs: Arc<MemoryLogs>,
    pub tokens: AgentTokens,
    pub url: String,
    running: Option<Running>,
    server: tokio::task::JoinHandle<()>,
}

impl Stack {
    /// Must be called inside a tokio runtime.
    pub fn start(
        listener: TcpListener,
        url: String,
        tokens: AgentTokens,
        executor: Arc<dyn Executor>,
        logs: Arc<MemoryLogs>,
    ) -> Stack {
        Stack::start_on(
            Arc::new(MemoryStore::new()),
            listener,
            url,
            tokens,
            executor,
            logs,
        )
    }

    /// A control-plane restart: this engine and its agent API stop, and a new engine on the
    /// same store, logs and address starts with `executor`.
    pub async fn restart(mut self, executor: Arc<dyn Executor>) -> Stack {
        drop(self.running.take());
        self.server.abort();
        let _ = (&mut self.server).await;
        let addr = self.url.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind(&addr).await.unwrap();
        Stack::start_on(
            self.store.clone(),
            listener,
            self.url.clone(),
            self.tokens.clone(),
            executor,
            self.logs.clone(),
        )
    }

    /// Like `start`, on an existing store.
    pub fn start_on(
        store: Arc<MemoryStore>,
        listener: TcpListener,
        url: String,
        tokens: AgentTokens,
        executor: Arc<dyn Executor>,
        logs: Arc<MemoryLogs>,
    ) -> Stack {
        let engine = Engine::builder()
            .datastore(store.clone())
            .executor(executor)
            .xcom(Arc::new(MemoryXCom::new(
                Arc::new(SystemClock),
                XCOM_CAP,
                Duration::from_secs(86400),
            )))
            .logs(logs.clone())
            .notifier(Arc::new(MemoryNotifier::new()))
            .config(EngineConfig::default())
            .build()
            .unwrap();
        let router = agent_router(AgentApi::new(engine.clone(), tokens.clone()));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let running = Some(engine.start());
        Stack {
            engine,
            store,
            logs,
            tokens,
            url,
            running,
            server,
        }
    }

    pub async fn register(&self, spec: Value) {
        let spec = DagSpec::from_json(spec.to_string().as_bytes()).unwrap();
        self.engine.register(spec).await.unwrap();
    }

    pub async fn trigger(&self, dag_id: &str, req: TriggerRequest) -> RunKey {
        self.engine.trigger(dag_id, req).await.unwrap().key()
    }

    /// Waits for the run to end (bounded, so a hang fails instead of blocking CI).
    pub async fn finish(&self, key: &RunKey) -> DagRun {
        tokio::time::timeout(Duration::from_secs(180), self.engine.wait_for_run(key))
            .await
            .expect("the run did not finish within 180 s")
            .unwrap()
    }

    pub async fn ti(&self, key: &RunKey, task: &str) -> TaskInstance {
        self.store
            .get_task_instance(&TaskKey::new(key, task, -1))
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits until the task instance reaches `state`.
    pub async fn reach(&self, key: &RunKey, task: &str, state: TaskState) -> TaskInstance {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let ti = self.ti(key, task).await;
            if ti.state == state {
                return ti;
            }
            assert!(Instant::now() < end, "{task} never reached {state}: {ti:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every message of an attempt's log.
    pub async fn log(&self, attempt: &AttemptId) -> Vec<String> {
        let chunk = self.logs.read(attempt, 0, 100_000).await.unwrap();
        chunk.lines.into_iter().map(|l| l.message).collect()
    }
}

/// Asserts that an attempt's log opens with the agent's start line and closes with the
/// server's success line.
pub fn assert_framed_as_success(log: &[String]) {
    assert!(
        log.first().is_some_and(|l| l.starts_with("▸ task started")),
        "{log:?}"
    );
    assert!(
        log.last()
            .is_some_and(|l| l.starts_with("✓ task succeeded in ")),
        "{log:?}"
    );
}

impl Drop for Stack {
    fn drop(&mut self) {
        drop(self.running.take());
        self.server.abort();
    }
}

pub fn tokens(url: &str) -> AgentTokens {
    AgentTokens::new(SECRET, url).unwrap()
}

pub fn dag(dag_id: &str, tasks: Vec<Value>) -> Value {
    let mut spec = serde_json::json!({
        "schema_version": "1.0", "dag_id": dag_id, "dag_version": "v1", "image": "",
        "owner": "airflow",
    });
    spec["tasks"] = Value::Array(tasks);
    spec
}

/// The `leoflow-agent` binary next to this test's own build. Cargo does not build other
/// packages' binaries for a test, so it is built here once per test process unless it is
/// newer than every agent source (`cargo test --workspace` has built it already).
pub fn agent_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let bin = profile_dir().join("leoflow-agent");
        let sources = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("leoflow-agent");
        if modified(&bin).is_some_and(|built| newest(&sources).is_some_and(|src| built > src)) {
            return bin;
        }
        cargo_build("leoflow-agent", "leoflow-agent")
    })
    .clone()
}

/// `<target>/<profile>`, where this test binary was built (`<target>/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Builds binary `bin` of `package` into this test's target directory and profile (a no-op
/// when it is up to date) and returns its path.
pub fn cargo_build(package: &str, bin: &str) -> PathBuf {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().unwrap().to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building {bin} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir.join(bin);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut latest = modified(dir);
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest(&path)
        } else {
            modified(&path)
        };
        latest = latest.max(t);
    }
    latest
}

/// Live (non-zombie) processes in a process group.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded) until nothing of the group is left.
pub async fn until_gone(pgid: i32) {
    let end = Instant::now() + Duration::from_secs(30);
    while !group_members(pgid).is_empty() {
        assert!(
            Instant::now() < end,
            "process group {pgid} still has {:?}",
            group_members(pgid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) for a file written with write-then-rename and returns its content.
pub async fn until_file(path: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s.trim().to_string();
        }
        assert!(Instant::now() < end, "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A response of the agent API.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

/// One blocking HTTP call (run off the async runtime).
pub async fn call(
    url: &str,
    method: &'static str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let url = format!("{url}{path}");
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let result = if method == "GET" {
            let mut req = agent.get(&url);
            if let Some(t) = &token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            req.call()
        } else {
            let mut req = agent.post(&url).header("Content-Type", "application/json");
            if let Some(t) = &token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            req.send(body.unwrap_or_default())
        };
        let mut res = result.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = res.body_mut().read_to_vec().unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            content_type,
            body,
        }
    })
    .await
    .unwrap()
}

/// The Python shim's source directory (`leoflow_shim` and the `airflow` stand-in).
pub fn shim_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("leoflow-shim/python")
}

/// Compiles `file` of the `project` directory with the real shim: its one DAG's spec, as
/// version `v1` with no image.
pub fn compile_dag(project: &Path, file: &str) -> Value {
    let out = Command::new("python3")
        .args(["-m", "leoflow_shim", "compile", "--root"])
        .arg(project)
        .arg(project.join(file))
        .env("PYTHONPATH", shim_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compiled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(compiled["errors"], json!([]), "{compiled}");
    let mut spec = compiled["dags"][0].clone();
    spec["dag_version"] = json!("v1");
    spec["image"] = json!("");
    spec
}
