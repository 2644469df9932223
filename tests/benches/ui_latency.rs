//! Latency of the web UI's heaviest reads on a real Postgres: a 50-task DAG (five task
//! groups of ten) with 3,000 finished runs, served over HTTP on 127.0.0.1, each endpoint
//! called as the grid and DAG-list pages call it. Issue #9's target is p95 ≤ 200 ms for
//! every `/ui/grid/*` and `/ui/dags` response (Airflow 3: apache/airflow#49800, #56554).
//!
//! Run with `cargo bench -p leoflow-tests --bench ui_latency` (`BENCH_RUNS=N` runs,
//! default 3000; `BENCH_CALLS=N` calls per endpoint, default 40). Prints a Markdown table.

#![allow(clippy::unwrap_used)] // Benchmark code: a panic is the failure report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use leoflow_core::{Engine, EngineConfig};
use leoflow_http::password::hash_password;
use leoflow_http::{api_router, ApiConfig};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::{MetaStore, RunStore, User};
use leoflow_ports::run::{DagRun, RunKey, RunType, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use leoflow_ports::testkit::fake_executor::FakeExecutor;
use serde_json::{json, Value};

const DAG: &str = "wide";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Five groups of ten tasks, each group a chain after the previous group's last task.
fn spec() -> DagSpec {
    let mut tasks = Vec::new();
    let mut prev: Option<String> = None;
    for g in 0..5 {
        for t in 0..10 {
            let id = format!("g{g}.t{t}");
            let deps: Vec<String> = prev.iter().cloned().collect();
            tasks.push(json!({"task_id": id, "type": "bash", "entrypoint": "true",
                              "depends_on": deps, "task_group": format!("g{g}")}));
            prev = Some(id);
        }
    }
    let v = json!({"schema_version": "1.0", "dag_id": DAG, "dag_version": "bench",
                   "image": "", "tasks": tasks});
    DagSpec::from_json(v.to_string().as_bytes()).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs = env_usize("BENCH_RUNS", 3000);
    let calls = env_usize("BENCH_CALLS", 40);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let pg = leoflow_postgres::testing::fresh_adapters().await;
        let store = Arc::new(pg.store);
        let engine = Engine::builder()
            .datastore(store.clone())
            .executor(Arc::new(FakeExecutor::new()))
            .xcom(Arc::new(pg.xcom))
            .logs(Arc::new(pg.logs))
            .notifier(Arc::new(pg.notifier))
            .config(EngineConfig::default())
            .build()
            .unwrap();
        let spec = spec();
        let task_ids: Vec<String> = spec.tasks.iter().map(|t| t.task_id.clone()).collect();
        engine.register(spec).await.unwrap();
        store
            .put_user(&User {
                username: "bench".into(),
                password_hash: hash_password("bench password").unwrap(),
                role: "viewer".into(),
                tenant: "default".into(),
                is_active: true,
                created_at: Utc::now(),
            })
            .await
            .unwrap();

        let started = Instant::now();
        let base = Utc::now() - TimeDelta::hours(12);
        for i in 0..runs {
            let at = base + TimeDelta::seconds(i as i64 * 10);
            let run = DagRun {
                dag_id: DAG.into(),
                run_id: format!("scheduled__{i:05}"),
                run_type: RunType::Scheduled,
                logical_date: Some(at),
                data_interval_start: Some(at),
                data_interval_end: Some(at),
                run_after: at,
                conf: json!({}),
                note: None,
                state: if i % 50 == 7 {
                    RunState::Failed
                } else {
                    RunState::Success
                },
                version_number: 1,
                queued_at: at,
                started_at: Some(at),
                ended_at: Some(at + TimeDelta::seconds(9)),
                triggered_by: None,
            };
            let key = RunKey::new(DAG, &run.run_id);
            let tis: Vec<TaskInstance> = task_ids
                .iter()
                .enumerate()
                .map(|(n, id)| {
                    let mut ti = TaskInstance::new(TaskKey::new(&key, id, -1), "BashOperator", 0);
                    ti.state = if run.state == RunState::Failed && n == 49 {
                        TaskState::Failed
                    } else {
                        TaskState::Success
                    };
                    ti.try_number = 1;
                    ti.started_at = Some(at);
                    ti.ended_at = Some(at + TimeDelta::milliseconds(150));
                    ti
                })
                .collect();
            store.create_run(&run, &tis, None).await.unwrap();
        }
        eprintln!(
            "inserted {runs} runs x {} tasks in {:.1} s",
            task_ids.len(),
            started.elapsed().as_secs_f64()
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = api_router(
            engine.clone(),
            ApiConfig {
                jwt_secret: b"a benchmark secret, long enough".to_vec(),
                secret_key: [7; 32],
                token_ttl: Duration::from_secs(3600),
                login_rate_limit_per_minute: 100,
                max_body_bytes: 1 << 20,
            },
        );
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });

        tokio::task::spawn_blocking(move || measure(&url, runs, calls))
            .await
            .unwrap();
    });
}

fn measure(url: &str, runs: usize, calls: usize) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .post(&format!("{url}/auth/token"))
        .send_json(json!({"username": "bench", "password": "bench password"}))
        .unwrap();
    let body: Value = res.body_mut().read_json().unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    let newest: Vec<String> = (runs.saturating_sub(10)..runs)
        .rev()
        .map(|i| format!("scheduled__{i:05}"))
        .collect();
    let day_ago = (Utc::now() - TimeDelta::hours(24))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .replace('+', "%2B");
    let endpoints = vec![
        ("DAG list", "/ui/dags?dag_runs_limit=14&limit=50&offset=0&exclude_stale=true&order_by=dag_display_name".to_string()),
        ("grid runs (10)", format!("/ui/grid/runs/{DAG}?limit=10&order_by=-run_after")),
        ("grid structure", format!("/ui/grid/structure/{DAG}?limit=10&order_by=-run_after")),
        ("grid TI summaries (10 runs)", format!("/ui/grid/ti_summaries/{DAG}?run_ids={}", newest.join("&run_ids="))),
        ("graph structure", format!("/ui/structure/structure_data?dag_id={DAG}")),
        ("failed TIs, last 24 h (grid page)", format!("/api/v2/dags/{DAG}/dagRuns/~/taskInstances?run_after_gte={day_ago}&state=failed&order_by=-run_after")),
        ("dashboard stats", "/ui/dashboard/dag_stats".to_string()),
        ("historical metrics, 24 h", format!("/ui/dashboard/historical_metrics_data?start_date={day_ago}")),
    ];
    println!("\n| endpoint ({runs} runs x 50 tasks) | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|");
    for (name, path) in endpoints {
        let mut times = Vec::with_capacity(calls);
        let n = if name.starts_with("historical") {
            3
        } else {
            calls
        };
        for _ in 0..n {
            let t = Instant::now();
            let mut res = agent
                .get(&format!("{url}{path}"))
                .header("Authorization", &format!("Bearer {token}"))
                .call()
                .unwrap();
            let status = res.status();
            let _ = res.body_mut().read_to_vec().unwrap();
            times.push(t.elapsed());
            assert!(status.is_success(), "{path}: {status}");
        }
        times.sort();
        println!(
            "| {name} | {} | {} | {} |",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            ms(*times.last().unwrap())
        );
    }
}
