//! The Pro edition's high availability, end to end: two real `leoflow-server` processes on
//! one real Postgres and one real `redis-server`, launching pods on the in-process fake
//! Kubernetes API server (whose kubelet runs the real agent), with the agents reaching the
//! replicas through a TCP "Service" on 127.0.0.1 that forwards to whichever replica is up.
//! Covers a `kill -9` of the leader mid-run, a Redis restart mid-run, SIGTERM handing the
//! lease over, a bad configuration, and the probe and metrics endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is the failure report.

mod agent_harness;
mod fake_kube;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use leoflow_redis::testing::TestRedis;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use agent_harness::{agent_binary, compile_dag, shim_dir};
use fake_kube::{FakeKube, AGENT_IN_IMAGE};

const PASSWORD: &str = "ha-test-password";
/// The SPEC's failover bound, used as a generous deadline.
const FAILOVER: Duration = Duration::from_secs(10);

/// The heavy scenarios run one at a time: each starts two servers and ~100 pods.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `leoflow-server`, built in this test's target directory (cargo builds only the test
/// crate's own dependencies for a test; the build is a no-op when up to date).
fn server_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| agent_harness::cargo_build("leoflow-pro", "leoflow-server"))
        .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP forwarder standing in for the Kubernetes Service in front of the replicas: each
/// connection goes to the first backend that accepts it.
struct Service {
    url: String,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    async fn start() -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let list = backends.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let candidates = list.lock().unwrap().clone();
                tokio::spawn(async move {
                    for addr in candidates {
                        if let Ok(mut outbound) = TcpStream::connect(addr).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Service {
            url,
            backends,
            task,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `leoflow-server` process.
struct Server {
    name: String,
    child: Child,
    http: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Postgres, Redis, the fake cluster, the Service and the replicas of one scenario.
struct Cluster {
    kube: FakeKube,
    redis: TestRedis,
    database_url: String,
    prefix: String,
    service: Service,
    dir: tempfile::TempDir,
    servers: Vec<Server>,
    lease_ttl_seconds: u64,
}

impl Cluster {
    async fn start(lease_ttl_seconds: u64) -> Cluster {
        let kube = FakeKube::start(agent_binary()).await;
        let redis = TestRedis::start().unwrap();
        let database_url = leoflow_postgres::testing::TestCluster::shared()
            .fresh_database()
            .await
            .unwrap();
        Cluster {
            kube,
            redis,
            database_url,
            prefix: format!("ha-{}", std::process::id()),
            service: Service::start().await,
            dir: tempfile::tempdir().unwrap(),
            servers: Vec::new(),
            lease_ttl_seconds,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LEOFLOW_DATABASE_URL", self.database_url.clone()),
            ("LEOFLOW_DATABASE_MIGRATE_ON_START", "true".into()),
            ("LEOFLOW_REDIS_URL", self.redis.url().to_string()),
            ("LEOFLOW_REDIS_PREFIX", self.prefix.clone()),
            (
                "LEOFLOW_AUTH_JWT_SECRET",
                "a-test-secret-that-is-long-enough-for-hs256".into(),
            ),
            (
                "LEOFLOW_SECRET_KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
            ),
            ("LEOFLOW_BOOTSTRAP_PASSWORD", PASSWORD.into()),
            (
                "LEOFLOW_SCHEDULER_LEASE_TTL_SECONDS",
                self.lease_ttl_seconds.to_string(),
            ),
            ("LEOFLOW_SCHEDULER_MAX_ACTIVE_TASKS_PER_RUN", "0".into()),
            (
                "LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR",
                self.service.url.clone(),
            ),
            ("LEOFLOW_EXECUTOR_AGENT_IMAGE", "leoflow/agent:test".into()),
            ("LEOFLOW_EXECUTOR_AGENT_PATH", AGENT_IN_IMAGE.into()),
            ("LEOFLOW_EXECUTOR_DEFAULT_IMAGE", "leoflow/task:test".into()),
            (
                "LEOFLOW_EXECUTOR_PROJECT_DIR",
                self.dir.path().display().to_string(),
            ),
            (
                "LEOFLOW_EXECUTOR_SHIM_PATH",
                shim_dir().display().to_string(),
            ),
            ("KUBECONFIG", self.kube.kubeconfig().display().to_string()),
        ]
    }

    /// Starts replica `name` and waits until it is ready.
    async fn add_server(&mut self, name: &str) {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = self.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(server_binary())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env())
            .env("LEOFLOW_REPLICA_ID", name)
            .env("LEOFLOW_SERVER_HTTP_ADDR", http.to_string())
            .env("LEOFLOW_SERVER_METRICS_ADDR", metrics.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let server = Server {
            name: name.into(),
            child,
            http,
            metrics,
            log,
        };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = get(&format!("http://{http}/readyz")).await {
                break;
            }
            assert!(
                Instant::now() < end,
                "{name} never became ready:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.service.backends.lock().unwrap().push(http);
        self.servers.push(server);
    }

    fn server(&self, name: &str) -> &Server {
        self.servers.iter().find(|s| s.name == name).unwrap()
    }

    /// The replica that says it leads, if exactly one does.
    async fn leader(&self) -> Option<String> {
        let mut leaders = Vec::new();
        for s in &self.servers {
            if s.child_alive() && leads(s).await {
                leaders.push(s.name.clone());
            }
        }
        (leaders.len() == 1).then(|| leaders.remove(0))
    }

    async fn wait_for_leader(&self, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        loop {
            if let Some(l) = self.leader().await {
                return l;
            }
            assert!(
                Instant::now() < end,
                "no leader within {deadline:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| {
                let text = std::fs::read_to_string(&s.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!(
                    "--- {} (last lines, newest first)\n{}",
                    s.name,
                    tail.join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A bearer token from the Service.
    async fn token(&self) -> String {
        let (status, body) = call(
            "POST",
            &format!("{}/auth/token", self.service.url),
            None,
            Some(json!({"username": "admin", "password": PASSWORD})),
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Registers the compiled fanout_100 DAG and triggers a run; its run id.
    async fn trigger_fanout(&self, token: &str) -> String {
        let spec = compile_fanout(self.dir.path());
        let base = &self.service.url;
        let (status, body) = call(
            "POST",
            &format!("{base}/api/v2/dags/fanout_100/versions"),
            Some(token),
            Some(spec),
        )
        .await
        .unwrap();
        assert!(status == 200 || status == 201, "{status} {body}");
        let (status, body) = call(
            "POST",
            &format!("{base}/api/v2/dags/fanout_100/dagRuns"),
            Some(token),
            Some(json!({"logical_date": null})),
        )
        .await
        .unwrap();
        assert!(status == 200 || status == 201, "{status} {body}");
        body["dag_run_id"].as_str().unwrap().to_string()
    }

    /// Waits (bounded, generously) for the run to finish; its final state.
    async fn finish(&self, token: &str, run_id: &str) -> String {
        let end = Instant::now() + Duration::from_secs(240);
        loop {
            let url = format!(
                "{}/api/v2/dags/fanout_100/dagRuns/{run_id}",
                self.service.url
            );
            if let Ok((200, body)) = call("GET", &url, Some(token), None).await {
                let state = body["state"].as_str().unwrap_or_default().to_string();
                if state == "success" || state == "failed" {
                    return state;
                }
            }
            assert!(
                Instant::now() < end,
                "the run did not finish\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every task instance of the run, page by page.
    async fn task_instances(&self, token: &str, run_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let url = format!(
                "{}/api/v2/dags/fanout_100/dagRuns/{run_id}/taskInstances?limit=100&offset={}",
                self.service.url,
                all.len()
            );
            let (status, body) = call("GET", &url, Some(token), None).await.unwrap();
            assert_eq!(status, 200, "{body}");
            let page = body["task_instances"].as_array().unwrap().clone();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// The run's unsuccessful task instances, for failure messages.
    async fn failures(&self, token: &str, run_id: &str) -> String {
        let tis = self.task_instances(token, run_id).await;
        let bad: Vec<String> = tis
            .iter()
            .filter(|t| t["state"] != "success")
            .map(|t| format!("{} {} try {}", t["task_id"], t["state"], t["try_number"]))
            .collect();
        let mut first_log = String::new();
        if let Some(t) = tis.iter().find(|t| t["state"] == "failed") {
            let url = format!(
                "{}/api/v2/dags/fanout_100/dagRuns/{run_id}/taskInstances/{}/logs/1",
                self.service.url,
                t["task_id"].as_str().unwrap_or_default()
            );
            if let Ok((_, log)) = call("GET", &url, Some(token), None).await {
                first_log = log.to_string();
            }
        }
        format!(
            "{} task instances, not successful: {bad:?}\nthe first failure's log: {first_log}\n{}",
            tis.len(),
            self.logs()
        )
    }

    /// Pods created per pod name (one name per attempt).
    fn creations(&self) -> HashMap<String, usize> {
        let mut by_name = HashMap::new();
        for p in self.kube.created_pods() {
            *by_name
                .entry(p["metadata"]["name"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        by_name
    }

    /// Every task ran exactly once, in one pod, and succeeded on its first try.
    async fn assert_each_task_ran_once(&self, token: &str, run_id: &str) {
        let tis = self.task_instances(token, run_id).await;
        assert_eq!(tis.len(), 102, "no task lost");
        for ti in &tis {
            assert_eq!(ti["state"], "success", "{ti}");
            assert_eq!(ti["try_number"], 1, "{ti}");
        }
        let creations = self.creations();
        let twice: Vec<_> = creations.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "attempts launched twice: {twice:?}");
        assert_eq!(creations.len(), 102, "one pod per task");
    }
}

impl Server {
    fn child_alive(&self) -> bool {
        kill(Pid::from_raw(self.child.id() as i32), None).is_ok()
    }
}

async fn leads(s: &Server) -> bool {
    match get(&format!("http://{}/metrics", s.metrics)).await {
        Ok((200, text)) => text
            .lines()
            .any(|l| l.starts_with("leoflow_scheduler_leader{") && l.ends_with(" 1")),
        _ => false,
    }
}

fn compile_fanout(project: &Path) -> Value {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/airflow/dags/fanout_100.py");
    std::fs::copy(&source, project.join("fanout_100.py"))
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    compile_dag(project, "fanout_100.py")
}

/// A blocking HTTP call on a worker thread: status and body (JSON when it parses).
async fn call(
    method: &'static str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let url = url.to_string();
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET", _) => {
                let mut r = agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("authorization", a);
                }
                r.send_json(body.unwrap_or(Value::Null))
            }
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    })
    .await
    .unwrap()
}

async fn get(url: &str) -> Result<(u16, String), String> {
    call("GET", url, None, None)
        .await
        .map(|(s, v)| (s, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
}

/// Waits until `pods` pods have been created.
async fn until_pods(c: &Cluster, pods: usize) {
    let end = Instant::now() + Duration::from_secs(120);
    while c.kube.created_pods().len() < pods {
        assert!(
            Instant::now() < end,
            "only {} pods\n{}",
            c.kube.created_pods().len(),
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_run_hands_over_within_10_s_and_every_task_runs_once() {
    let _heavy = HEAVY.lock().await;
    let mut c = Cluster::start(5).await;
    c.add_server("a").await;
    c.add_server("b").await;
    let leader = c.wait_for_leader(FAILOVER).await;
    let token = c.token().await;
    let run_id = c.trigger_fanout(&token).await;
    until_pods(&c, 20).await;

    let killed = Instant::now();
    let pid = c.server(&leader).child.id();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let next = c.wait_for_leader(FAILOVER).await;
    let took = killed.elapsed();
    assert_ne!(next, leader);
    assert!(took < FAILOVER, "failover took {took:?}");
    println!("failover after kill -9 of the leader: {took:?}");

    let state = c.finish(&token, &run_id).await;
    assert_eq!(state, "success", "{}", c.failures(&token, &run_id).await);
    c.assert_each_task_ran_once(&token, &run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run_is_survived_and_readiness_reports_it() {
    let _heavy = HEAVY.lock().await;
    let mut c = Cluster::start(5).await;
    c.add_server("a").await;
    c.add_server("b").await;
    c.wait_for_leader(FAILOVER).await;
    let token = c.token().await;
    let run_id = c.trigger_fanout(&token).await;
    until_pods(&c, 20).await;

    c.redis.stop();
    let a = c.server("a").http;
    let (status, body) = get(&format!("http://{a}/readyz")).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("redis"), "{body}");
    let (status, _) = get(&format!("http://{a}/healthz")).await.unwrap();
    assert_eq!(status, 200, "liveness does not depend on Redis");
    c.redis.resume().unwrap();

    let state = c.finish(&token, &run_id).await;
    assert_eq!(state, "success", "{}", c.failures(&token, &run_id).await);
    c.assert_each_task_ran_once(&token, &run_id).await;
    let end = Instant::now() + Duration::from_secs(30);
    while get(&format!("http://{a}/readyz")).await.map(|r| r.0) != Ok(200) {
        assert!(
            Instant::now() < end,
            "not ready again after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let leader = c.wait_for_leader(FAILOVER).await;
    let (_, metrics) = get(&format!("http://{}/metrics", c.server(&leader).metrics))
        .await
        .unwrap();
    for needle in [
        "# TYPE leoflow_scheduler_leader gauge",
        &format!("leoflow_scheduler_leader{{replica_id=\"{leader}\"}} 1"),
        "leoflow_pods_created_total{dag_id=\"fanout_100\",result=\"success\"}",
        "leoflow_dispatch_latency_seconds_bucket{le=\"+Inf\"}",
        "leoflow_dispatch_latency_seconds_count",
    ] {
        assert!(metrics.contains(needle), "no {needle:?} in\n{metrics}");
    }
    let (_, api_metrics) = get(&format!("http://{}/metrics", c.server("a").metrics))
        .await
        .unwrap();
    assert!(
        api_metrics.contains(
            "leoflow_http_requests_total{method=\"GET\",path=\"/readyz\",status=\"503\"}"
        ),
        "{api_metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lease_so_the_other_replica_leads_at_once() {
    let _heavy = HEAVY.lock().await;
    // A lease far longer than the failover bound: only a release explains a quick takeover.
    let mut c = Cluster::start(30).await;
    c.add_server("a").await;
    c.add_server("b").await;
    let leader = c.wait_for_leader(FAILOVER).await;
    let pid = c.server(&leader).child.id();
    let stopped = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    let next = c.wait_for_leader(FAILOVER).await;
    assert_ne!(next, leader);
    println!("hand-over after SIGTERM: {:?}", stopped.elapsed());
    let index = c.servers.iter().position(|s| s.name == leader).unwrap();
    let status = c.servers[index].child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "a graceful stop exits 0\n{}",
        c.logs()
    );
    let log = std::fs::read_to_string(&c.servers[index].log).unwrap();
    let released = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|l| l["message"] == "released the scheduler lease" && l["level"] == "INFO");
    assert!(released, "the JSON log says the lease was released:\n{log}");
}

#[test]
fn a_bad_configuration_exits_non_zero_with_one_line_per_bad_value() {
    let out = Command::new(server_binary())
        .env_clear()
        .env("LEOFLOW_DATABASE_URL", "mysql://db/leoflow")
        .env("LEOFLOW_REDIS_URL", "redis://127.0.0.1:1/0")
        .env("LEOFLOW_AUTH_JWT_SECRET", "short")
        .env(
            "LEOFLOW_SECRET_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .env("LEOFLOW_SCHEDULER_DISPATCH_WORKERS", "0")
        .env("LEOFLOW_SERVER_HTTP_ADDR", "127.0.0.1:8080")
        .env("LEOFLOW_OBSERVABILITY_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    let named: Vec<&str> = errors
        .iter()
        .map(|l| l["error: ".len()..].split(['=', ' ']).next().unwrap())
        .collect();
    assert_eq!(
        named,
        [
            "LEOFLOW_DATABASE_URL",
            "LEOFLOW_AUTH_JWT_SECRET",
            "LEOFLOW_SCHEDULER_DISPATCH_WORKERS",
            "LEOFLOW_OBSERVABILITY_LOG_FORMAT"
        ],
        "{stderr}"
    );
    assert!(
        !stderr.contains("short"),
        "secrets are not echoed: {stderr}"
    );
    assert!(stderr.contains("4 configuration problems"), "{stderr}");

    let check = Command::new(server_binary())
        .arg("check-config")
        .env_clear()
        .env("LEOFLOW_DATABASE_URL", "postgres://leo:s3cret@db/leoflow")
        .env("LEOFLOW_REDIS_URL", "redis://127.0.0.1:6379/0")
        .env(
            "LEOFLOW_AUTH_JWT_SECRET",
            "a-test-secret-that-is-long-enough-for-hs256",
        )
        .env(
            "LEOFLOW_SECRET_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .env(
            "LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR",
            "http://leoflow.svc:8080",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains("LEOFLOW_DATABASE_URL=***  # env"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");
}
