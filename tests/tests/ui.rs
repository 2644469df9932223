//! The Airflow 3.2.1 web UI on Leoflow, end to end over real HTTP on 127.0.0.1 with a
//! throwaway Postgres and real bash tasks (the subprocess executor and `leoflow-agent`):
//! the bundle unpacked from the pinned wheel by `leoflow_http::ui_assets` and served with
//! its SPA rules, every `/ui/*` response validated against Airflow's private OpenAPI
//! document (`_private_ui.yaml`), and a walk through the unmodified UI in headless
//! Chromium driven by Playwright (`tests/ui/test_browser.py`).

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::needless_pass_by_value
)] // Test code: a panic is the failure report.

mod agent_harness;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use leoflow_core::engine::Running;
use leoflow_core::{Engine, EngineConfig};
use leoflow_http::password::hash_password;
use leoflow_http::{agent_router, api_router, ui_assets, ui_router, AgentApi, ApiConfig};
use leoflow_ports::datastore::{ImportError, MetaStore, User};
use leoflow_subprocess::{SubprocessConfig, SubprocessExecutor};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use agent_harness::{agent_binary, tokens};

const JWT_SECRET: &[u8] = b"a user-token secret for the UI tests";
const PASSWORD: &str = "correct horse";

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Fails when `.ci/run` is driving (it installs everything), else says loudly what is
/// skipped and returns `None`.
fn missing<T>(msg: &str) -> Option<T> {
    assert!(
        std::env::var_os("LEOFLOW_REQUIRE_AIRFLOW_TOOLS").is_none(),
        "{msg}"
    );
    eprintln!("\n!!!!!!!! SKIPPED {msg} !!!!!!!!\n");
    None
}

/// The UI bundle under `target/airflow-ui`, unpacked (once) from the wheel `.ci/run`
/// downloads into `target/airflow-wheel`.
fn ui_dir() -> Option<PathBuf> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = root().join("target/airflow-ui");
    if ui_assets::is_installed(&dir) {
        return Some(dir);
    }
    let wheel = root()
        .join("target/airflow-wheel")
        .join(ui_assets::WHEEL_FILE);
    if !wheel.is_file() {
        return missing(&format!(
            "the UI tests: {} is missing; `bash .ci/run` downloads it",
            wheel.display()
        ));
    }
    // The wheel is cached, so this is the install `leoflow setup` does, without a download.
    ui_assets::fetch(wheel.parent().unwrap(), &dir).unwrap();
    Some(dir)
}

/// The CI venv's Python (`LEOFLOW_CI_PYTHON` overrides it) when it has `modules`.
fn python_with(modules: &str, what: &str) -> Option<PathBuf> {
    let py = std::env::var_os("LEOFLOW_CI_PYTHON")
        .map_or_else(|| root().join("target/ci-venv/bin/python"), PathBuf::from);
    let ok = Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        missing(&format!(
            "{what}: {} cannot import {modules}; run `bash .ci/run` once to install them",
            py.display()
        ))
    }
}

struct Server {
    url: String,
    store: Arc<leoflow_postgres::PgStore>,
    running: Option<Running>,
    http: tokio::task::JoinHandle<()>,
    _work: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.running.take());
        self.http.abort();
    }
}

/// A control plane on a fresh Postgres database, serving the agent API, the REST API, the
/// `/ui` API and the bundle in `ui` on one listener, as the editions do.
async fn server(ui: PathBuf) -> Server {
    let pg = leoflow_postgres::testing::fresh_adapters().await;
    let store = Arc::new(pg.store);
    let logs = Arc::new(pg.logs);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let agent_tokens = tokens(&url);
    let work = tempfile::tempdir().unwrap();
    let exec = SubprocessExecutor::new(
        SubprocessConfig::new(agent_binary(), work.path()),
        Arc::new(agent_tokens.clone()),
        logs.clone(),
    );
    let engine = Engine::builder()
        .datastore(store.clone())
        .executor(Arc::new(exec))
        .xcom(Arc::new(pg.xcom))
        .logs(logs)
        .notifier(Arc::new(pg.notifier))
        .config(EngineConfig::default())
        .build()
        .unwrap();
    store
        .put_user(&User::admin(
            "admin".into(),
            hash_password(PASSWORD).unwrap(),
            Utc::now(),
        ))
        .await
        .unwrap();
    let router = agent_router(AgentApi::new(engine.clone(), agent_tokens))
        .merge(api_router(
            engine.clone(),
            ApiConfig {
                jwt_secret: JWT_SECRET.to_vec(),
                secret_key: *b"0123456789abcdef0123456789abcdef",
                token_ttl: Duration::from_secs(3600),
                login_rate_limit_per_minute: 20,
                max_body_bytes: 1024 * 1024,
            },
        ))
        .merge(ui_router(ui));
    let http = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let running = Some(engine.start());
    Server {
        url,
        store,
        running,
        http,
        _work: work,
    }
}

/// One HTTP response; `text` is the raw body, `body` it parsed as JSON (or `Null`).
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn send(
    url: &str,
    method: &'static str,
    path: &str,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
) -> Reply {
    let url = format!("{url}{path}");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut res = agent.run(req.body(bytes).unwrap()).unwrap();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let raw = res.body_mut().read_to_vec().unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).into_owned();
        Reply {
            status: res.status().as_u16(),
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    })
    .await
    .unwrap()
}

async fn login(url: &str) -> String {
    let r = send(
        url,
        "POST",
        "/auth/token",
        vec![],
        Some(json!({"username": "admin", "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["access_token"].as_str().unwrap().to_string()
}

fn bash(id: &str, command: &str, deps: &[&str], group: Option<&str>) -> Value {
    json!({"task_id": id, "type": "bash", "operator": "BashOperator", "entrypoint": command,
           "depends_on": deps, "task_group": group})
}

/// The DAGs the tests show: a two-task greeting, a slow printer and an ETL with a task
/// group.
fn sample_dags() -> Vec<Value> {
    let dag = |id: &str, description: &str, tasks: Vec<Value>| {
        json!({"schema_version": "1.0", "dag_id": id, "dag_version": "v1", "image": "",
               "owner": "data", "description": description, "tags": ["example"],
               "params": {"greeting": {"value": "hello"}}, "tasks": tasks})
    };
    vec![
        dag(
            "hello",
            "Says hello, then goodbye",
            vec![
                bash(
                    "say_hello",
                    "echo \"{{ params.greeting }} from Leoflow\"",
                    &[],
                    None,
                ),
                bash("say_goodbye", "echo goodbye", &["say_hello"], None),
            ],
        ),
        dag(
            "ticker",
            "Prints a line a second",
            vec![bash(
                "tick",
                "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 1; done",
                &[],
                None,
            )],
        ),
        dag(
            "etl",
            "Extracts and loads inside a task group",
            vec![
                bash("start", "echo start", &[], None),
                bash(
                    "etl.extract",
                    "echo extracted 3 rows",
                    &["start"],
                    Some("etl"),
                ),
                bash("etl.load", "echo loaded", &["etl.extract"], Some("etl")),
                bash("report", "echo done", &["etl.load"], None),
            ],
        ),
    ]
}

async fn register_samples(url: &str, token: &str) {
    for spec in sample_dags() {
        let id = spec["dag_id"].as_str().unwrap().to_string();
        let r = send(
            url,
            "POST",
            &format!("/api/v2/dags/{id}/versions"),
            vec![("Authorization", format!("Bearer {token}"))],
            Some(spec),
        )
        .await;
        assert!(r.status == 201 || r.status == 200, "{r:?}");
    }
}

async fn trigger_and_wait(url: &str, token: &str, dag_id: &str) -> String {
    let auth = || vec![("Authorization", format!("Bearer {token}"))];
    let r = send(
        url,
        "POST",
        &format!("/api/v2/dags/{dag_id}/dagRuns"),
        auth(),
        Some(json!({"logical_date": null})),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let run_id = r.body["dag_run_id"].as_str().unwrap().to_string();
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let r = send(
            url,
            "GET",
            &format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}"),
            auth(),
            None,
        )
        .await;
        match r.body["state"].as_str() {
            Some("success") => return run_id,
            Some("failed") => panic!("run {run_id} of {dag_id} failed: {r:?}"),
            _ => {}
        }
        assert!(Instant::now() < end, "run {run_id} never finished: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every recorded 2xx response validates against `_private_ui.yaml`.
fn validate(samples: &[Value]) {
    let spec = root().join("target/airflow-openapi/_private_ui.yaml");
    if !spec.is_file() {
        missing::<()>(&format!(
            "schema validation: {} is missing; `bash .ci/run` unpacks it",
            spec.display()
        ));
        return;
    }
    let Some(py) = python_with("jsonschema, yaml", "schema validation") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("samples.json");
    std::fs::write(&file, serde_json::to_vec(samples).unwrap()).unwrap();
    let out = Command::new(py)
        .arg(root().join("tests/python/validate_airflow_schema.py"))
        .arg(&spec)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "/ui responses do not match Airflow 3.2.1's private UI document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ui_endpoint_answers_in_airflows_private_schema() {
    let Some(ui) = ui_dir() else { return };
    let s = server(ui).await;
    let token = login(&s.url).await;
    register_samples(&s.url, &token).await;
    let hello_run = trigger_and_wait(&s.url, &token, "hello").await;
    let etl_run = trigger_and_wait(&s.url, &token, "etl").await;

    // The SPA's credential is the `_token` cookie; /ui/config is public.
    let cookie = || vec![("Cookie", format!("_token={token}"))];
    let mut samples = Vec::new();
    let calls: Vec<(&str, &str, String)> = vec![
        ("get", "/ui/config", "/ui/config".into()),
        ("get", "/ui/auth/menus", "/ui/auth/menus".into()),
        ("get", "/ui/auth/me", "/ui/auth/me".into()),
        ("post", "/ui/auth/token", "/ui/auth/token".into()),
        ("get", "/ui/dags", "/ui/dags?dag_runs_limit=10&limit=50&offset=0&order_by=dag_id&exclude_stale=true".into()),
        ("get", "/ui/dags", "/ui/dags?last_dag_run_state=success&paused=false&tags=example".into()),
        ("get", "/ui/dags/{dag_id}/latest_run", "/ui/dags/hello/latest_run".into()),
        ("get", "/ui/dashboard/dag_stats", "/ui/dashboard/dag_stats".into()),
        ("get", "/ui/dashboard/historical_metrics_data", "/ui/dashboard/historical_metrics_data?start_date=2000-01-01T00:00:00Z".into()),
        ("get", "/ui/grid/runs/{dag_id}", "/ui/grid/runs/etl?limit=10&order_by=-run_after".into()),
        ("get", "/ui/grid/structure/{dag_id}", "/ui/grid/structure/etl?limit=10&order_by=-run_after".into()),
        ("get", "/ui/structure/structure_data", "/ui/structure/structure_data?dag_id=etl".into()),
        ("get", "/ui/structure/structure_data", "/ui/structure/structure_data?dag_id=etl&root=etl.extract&include_upstream=true&include_downstream=false".into()),
        ("get", "/ui/gantt/{dag_id}/{run_id}", format!("/ui/gantt/etl/{etl_run}")),
        ("get", "/ui/calendar/{dag_id}", "/ui/calendar/hello?granularity=daily".into()),
        ("get", "/ui/connections/hook_meta", "/ui/connections/hook_meta".into()),
        ("get", "/ui/dependencies", "/ui/dependencies?node_id=dag:hello".into()),
        ("get", "/ui/backfills", "/ui/backfills?dag_id=hello".into()),
        ("get", "/ui/teams", "/ui/teams".into()),
        ("get", "/ui/next_run_assets/{dag_id}", "/ui/next_run_assets/hello".into()),
        ("get", "/ui/dags/{dag_id}/dagRuns/{dag_run_id}/deadlines", format!("/ui/dags/hello/dagRuns/{hello_run}/deadlines")),
        ("get", "/ui/partitioned_dag_runs", "/ui/partitioned_dag_runs?dag_id=hello".into()),
    ];
    let mut replies = std::collections::HashMap::new();
    for (method, template, path) in calls {
        let m = if method == "get" { "GET" } else { "POST" };
        let r = send(&s.url, m, &path, cookie(), None).await;
        assert_eq!(r.status, 200, "{method} {path}: {r:?}");
        samples
            .push(json!({"method": method, "path": template, "status": r.status, "body": r.body}));
        replies.insert(path, r);
    }
    let r = send(
        &s.url,
        "GET",
        &format!(
            "/ui/grid/ti_summaries/etl?run_ids={}&run_ids=no_such_run",
            etl_run.replace('+', "%2B")
        ),
        cookie(),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "one line per existing run: {}", r.text);
    for line in &lines {
        samples.push(
            json!({"method": "get", "path": "/ui/grid/ti_summaries/{dag_id}",
                            "status": 200, "schema": "GridTISummaries", "body": line}),
        );
    }
    validate(&samples);

    // What the pages show.
    let dags = &replies
        ["/ui/dags?dag_runs_limit=10&limit=50&offset=0&order_by=dag_id&exclude_stale=true"]
        .body;
    assert_eq!(dags["total_entries"], 3);
    assert_eq!(dags["dags"][2]["latest_dag_runs"], json!([]));
    assert_eq!(dags["dags"][1]["dag_id"], "hello");
    assert_eq!(
        dags["dags"][1]["latest_dag_runs"][0]["run_id"],
        hello_run.as_str()
    );
    assert_eq!(dags["dags"][1]["latest_dag_runs"][0]["state"], "success");
    let structure = &replies["/ui/grid/structure/etl?limit=10&order_by=-run_after"].body;
    let ids: Vec<&str> = structure
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["start", "etl", "report"]);
    assert_eq!(structure[1]["children"][0]["label"], "extract");
    let cells = lines[0]["task_instances"].as_array().unwrap();
    let group = cells.iter().find(|c| c["task_id"] == "etl").unwrap();
    assert_eq!(group["state"], "success");
    assert_eq!(group["child_states"], json!({"success": 2}));
    let graph = &replies["/ui/structure/structure_data?dag_id=etl"].body;
    assert_eq!(graph["edges"].as_array().unwrap().len(), 3);
    let narrowed = &replies["/ui/structure/structure_data?dag_id=etl&root=etl.extract&include_upstream=true&include_downstream=false"].body;
    assert_eq!(narrowed["edges"].as_array().unwrap().len(), 1);

    // The same guard as /api/v2: no token, no data; a bad one is a 401 the SPA turns into
    // a trip to the login page.
    let r = send(&s.url, "GET", "/ui/dags", vec![], None).await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = send(
        &s.url,
        "GET",
        "/ui/dags",
        vec![("Cookie", "_token=expired.or.forged".into())],
        None,
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = send(&s.url, "GET", "/ui/dags?bogus=1", cookie(), None).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = send(&s.url, "GET", "/ui/grid/runs/nope", cookie(), None).await;
    assert_eq!(r.status, 404, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_is_served_with_airflows_spa_rules() {
    let Some(ui) = ui_dir() else { return };
    let s = server(ui.clone()).await;
    // Client-side routes get the shell, rendered as Airflow's FastAPI app renders it.
    for path in ["/", "/dags/hello/grid", "/dags/etl/runs/x/tasks/start"] {
        let r = send(&s.url, "GET", path, vec![], None).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert!(r.header("content-security-policy").is_some());
        assert!(r.text.contains(r#"<base href="/" />"#), "{}", r.text);
        assert!(!r.text.contains("\"./assets/"), "{}", r.text);
    }
    // Hashed assets are cached for a year and gzip-compressed on request.
    let index = std::fs::read_to_string(ui.join("index.html")).unwrap();
    let script = index
        .split("src=\"./static/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let r = send(
        &s.url,
        "GET",
        &format!("/static/{script}"),
        vec![("Accept-Encoding", "gzip".into())],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let r = send(
        &s.url,
        "GET",
        &format!("/static/{script}"),
        vec![("Accept-Encoding", "br, gzip".into())],
        None,
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("br"));
    let r = send(
        &s.url,
        "GET",
        "/static/i18n/locales/en/common.json",
        vec![],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Misses under the API prefixes are problems, not pages.
    for path in [
        "/api/v2/nope",
        "/ui/nope",
        "/static/assets/nope.js",
        "/static/../Cargo.toml",
    ] {
        let r = send(&s.url, "GET", path, vec![], None).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    drop(s);

    // Without a bundle the pages say how to get one; the API still works.
    let empty = tempfile::tempdir().unwrap();
    let s = server(empty.path().join("ui")).await;
    let r = send(&s.url, "GET", "/dags", vec![], None).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text.contains("leoflow setup"), "{}", r.text);
    let r = send(&s.url, "GET", "/ui/config", vec![], None).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_airflow_ui_walks_in_headless_chromium() {
    let Some(ui) = ui_dir() else { return };
    let Some(py) = python_with("playwright, pytest", "the browser walk") else {
        return;
    };
    let chromium = PathBuf::from(
        std::env::var_os("LEOFLOW_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    if !chromium.is_file() {
        missing::<()>(&format!(
            "the browser walk: no Chromium at {}; `bash .ci/run` installs Debian's chromium",
            chromium.display()
        ));
        return;
    }
    let s = server(ui).await;
    let token = login(&s.url).await;
    register_samples(&s.url, &token).await;
    trigger_and_wait(&s.url, &token, "etl").await;
    // A DAG file that does not compile, as `leoflow lite` reports one.
    s.store
        .put_import_error(&ImportError {
            filename: "dags/broken.py".into(),
            message: "dags/broken.py:3: SyntaxError: invalid syntax".into(),
            at: Utc::now(),
        })
        .await
        .unwrap();
    let shots = root().join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .args(["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"])
            .arg(root().join("tests/ui/test_browser.py"))
            .env("LEOFLOW_UI_URL", &url)
            .env("LEOFLOW_UI_USER", "admin")
            .env("LEOFLOW_UI_PASSWORD", PASSWORD)
            .env("LEOFLOW_CHROMIUM", &chromium)
            .env("LEOFLOW_UI_SCREENSHOTS", &shots)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the browser walk failed (screenshots in target/ui-screenshots):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        std::fs::read_to_string(root().join("target/ui-screenshots/timings.txt")).unwrap()
    );
}
