//! The inline HTTP executor (leoflow-inline-http) against a real HTTP server on 127.0.0.1: a JSON answer becomes
//! the return value, a status outside the success codes fails with the body quoted, a slow
//! server hits the timeout, an oversized body is refused, connections resolve relative
//! URLs, cancel aborts, and every call leaves one summary line in the attempt's log.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)] // Test code: a panic is the failure report.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use leoflow_inline_http::{InlineHttpConfig, InlineHttpExecutor};
use leoflow_memory::{MemoryLogs, MemoryStore};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::{Connection, MetaStore};
use leoflow_ports::executor::{Attempt, Event, EventStream, Executor, Outcome};
use leoflow_ports::log::LogStore;
use leoflow_ports::run::{AttemptId, RunType, TaskKey};
use serde_json::{json, Value};

async fn server() -> String {
    let app = Router::new()
        .route(
            "/ok",
            get(|| async { axum::Json(json!({"items": [1, 2]})) }),
        )
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/down",
            get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { "x".repeat(2 * 1024 * 1024) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn attempt(task: Value) -> Attempt {
    let task_id = task["task_id"].as_str().unwrap().to_string();
    let spec: DagSpec = serde_json::from_value(json!({
        "schema_version": "1.0", "dag_id": "http", "dag_version": "v1", "image": "",
        "tasks": [task],
    }))
    .unwrap();
    Attempt {
        id: AttemptId {
            task: TaskKey {
                dag_id: "http".into(),
                run_id: "r1".into(),
                task_id,
                map_index: -1,
            },
            try_number: 1,
        },
        dag: Arc::new(spec),
        version_number: 1,
        run_type: RunType::Manual,
        timeout: None,
    }
}

fn call(id: &str, request: Value) -> Value {
    json!({"task_id": id, "type": "http_api", "http_request": request})
}

struct Setup {
    exec: InlineHttpExecutor,
    logs: Arc<MemoryLogs>,
    store: Arc<MemoryStore>,
    events: EventStream,
}

fn setup(config: InlineHttpConfig) -> Setup {
    let logs = Arc::new(MemoryLogs::new());
    let store = Arc::new(MemoryStore::new());
    let exec = InlineHttpExecutor::new(config, Some(store.clone()), logs.clone());
    let events = exec.subscribe();
    Setup {
        exec,
        logs,
        store,
        events,
    }
}

impl Setup {
    /// Launches the attempt and answers its terminal event.
    async fn run(&mut self, a: Attempt) -> Event {
        self.exec.launch(a).await.unwrap();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), self.events.next())
                .await
                .unwrap()
                .unwrap();
            if !matches!(event, Event::Started { .. }) {
                return event;
            }
        }
    }

    async fn log(&self, id: &AttemptId) -> Vec<String> {
        let page = self.logs.read(id, 0, 100).await.unwrap();
        page.lines.into_iter().map(|l| l.message).collect()
    }
}

fn outcome(event: Event) -> Outcome {
    match event {
        Event::Finished { outcome, .. } => outcome,
        other => panic!("expected Finished, got {other:?}"),
    }
}

fn failure(event: Event) -> String {
    match outcome(event) {
        Outcome::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answer_becomes_the_return_value_and_the_call_is_logged() {
    let base = server().await;
    let mut s = setup(InlineHttpConfig::default());
    let a = attempt(call(
        "get",
        json!({"method": "GET", "url": format!("{base}/ok")}),
    ));
    let id = a.id.clone();
    assert_eq!(
        outcome(s.run(a).await),
        Outcome::Success {
            return_value: Some(json!({"items": [1, 2]}))
        }
    );
    let log = s.log(&id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with(&format!("GET {base}/ok → HTTP 200 in ")),
        "{log:?}"
    );
    assert!(s.exec.live().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_sent_and_urls_resolve_against_the_connection() {
    let base = server().await;
    let mut s = setup(InlineHttpConfig::default());
    let (host, port) = base.trim_start_matches("http://").split_once(':').unwrap();
    s.store
        .put_connection(&Connection {
            conn_id: "svc".into(),
            conn_type: "http".into(),
            description: None,
            host: Some(host.into()),
            login: None,
            schema: None,
            port: Some(port.parse().unwrap()),
            password_ciphertext: None,
            extra_ciphertext: None,
        })
        .await
        .unwrap();
    let a = attempt(call(
        "post",
        json!({"method": "POST", "url": "/echo", "http_conn_id": "svc", "body": {"n": 1}}),
    ));
    assert_eq!(
        outcome(s.run(a).await),
        Outcome::Success {
            return_value: Some(json!({"n": 1}))
        }
    );
    let missing = attempt(call(
        "missing",
        json!({"method": "GET", "url": "/echo", "http_conn_id": "nope"}),
    ));
    let message = failure(s.run(missing).await);
    assert!(
        message.contains("connection \"nope\" does not exist"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_outside_the_success_codes_fails_with_the_body_quoted() {
    let base = server().await;
    let mut s = setup(InlineHttpConfig::default());
    let a = attempt(call(
        "down",
        json!({"method": "GET", "url": format!("{base}/down")}),
    ));
    let message = failure(s.run(a).await);
    assert!(
        message.contains("answered HTTP 503") && message.ends_with("maintenance"),
        "{message}"
    );
    let accepting = attempt(call(
        "down_ok",
        json!({"method": "GET", "url": format!("{base}/down"), "success_status_codes": [503]}),
    ));
    assert!(matches!(
        outcome(s.run(accepting).await),
        Outcome::Success { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_hits_the_timeout_and_the_cap_bounds_any_timeout() {
    let base = server().await;
    let mut s = setup(InlineHttpConfig::default());
    let a = attempt(call(
        "slow",
        json!({"method": "GET", "url": format!("{base}/slow"), "timeout_seconds": 0.3}),
    ));
    let message = failure(s.run(a).await);
    assert!(message.contains("timed out after 0.3s"), "{message}");

    let mut capped = setup(InlineHttpConfig {
        max_duration: Duration::from_millis(200),
        ..InlineHttpConfig::default()
    });
    let a = attempt(call(
        "slow",
        json!({"method": "GET", "url": format!("{base}/slow"), "timeout_seconds": 100}),
    ));
    let message = failure(capped.run(a).await);
    assert!(message.contains("timed out after 0.2s"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_is_refused() {
    let base = server().await;
    let mut s = setup(InlineHttpConfig::default());
    let a = attempt(call(
        "big",
        json!({"method": "GET", "url": format!("{base}/big")}),
    ));
    let message = failure(s.run(a).await);
    assert!(
        message.contains("exceeds the 1048576-byte limit"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_aborts_the_call_with_one_terminal_event_and_launch_is_idempotent() {
    let base = server().await;
    let mut s = setup(InlineHttpConfig::default());
    let a = attempt(call(
        "slow",
        json!({"method": "GET", "url": format!("{base}/slow")}),
    ));
    let id = a.id.clone();
    s.exec.launch(a.clone()).await.unwrap();
    s.exec.launch(a).await.unwrap();
    assert!(matches!(
        s.events.next().await.unwrap(),
        Event::Started { .. }
    ));
    assert_eq!(s.exec.live().await.unwrap(), vec![id.clone()]);
    s.exec.cancel(&id).await.unwrap();
    let end = s.events.next().await.unwrap();
    assert!(matches!(end, Event::Exited { .. }), "{end:?}");
    // Nothing more arrives for it: not a second Started (the second launch), not a Finished.
    let more = tokio::time::timeout(Duration::from_millis(500), s.events.next()).await;
    assert!(more.is_err(), "unexpected event {more:?}");
    assert!(s.exec.live().await.unwrap().is_empty());
    assert!(s.log(&id).await.iter().any(|l| l.contains("cancelled")));
}

/// The engine behind an `ExecutorRouter`: the http_api task is called inline, its JSON
/// answer reaches the downstream task (run by a fake isolated executor) as an XCom, and the
/// run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_routes_http_tasks_inline_and_their_answer_flows_downstream() {
    use leoflow_core::clock::SystemClock;
    use leoflow_core::engine::TriggerRequest;
    use leoflow_core::{Engine, ExecutorRouter};
    use leoflow_memory::{MemoryNotifier, MemoryXCom};
    use leoflow_ports::dag::RETURN_VALUE;
    use leoflow_ports::datastore::TaskStore;
    use leoflow_ports::state::{RunState, TaskState};
    use leoflow_ports::testkit::fake_executor::FakeExecutor;
    use leoflow_ports::xcom::XComStore;

    let base = server().await;
    let logs = Arc::new(MemoryLogs::new());
    let store = Arc::new(MemoryStore::new());
    let isolated = FakeExecutor::new();
    let inline = InlineHttpExecutor::new(InlineHttpConfig::default(), None, logs.clone());
    let router = ExecutorRouter::new(Arc::new(isolated.clone())).with_inline(Arc::new(inline));
    let xcom = Arc::new(MemoryXCom::new(
        Arc::new(SystemClock),
        256 * 1024,
        Duration::from_secs(3600),
    ));
    let engine = Engine::builder()
        .datastore(store.clone())
        .executor(Arc::new(router))
        .xcom(xcom.clone())
        .logs(logs)
        .notifier(Arc::new(MemoryNotifier::new()))
        .build()
        .unwrap();
    let running = engine.start();
    let spec: DagSpec = serde_json::from_value(json!({
        "schema_version": "1.0", "dag_id": "api_flow", "dag_version": "v1", "image": "",
        "tasks": [
            call("fetch", json!({"method": "GET", "url": format!("{base}/ok")})),
            {"task_id": "use", "type": "python", "entrypoint": "dag.py:use",
             "depends_on": ["fetch"], "xcom_input": {"items": "fetch"}},
        ],
    }))
    .unwrap();
    engine.register(spec).await.unwrap();
    let run = engine
        .trigger("api_flow", TriggerRequest::default())
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), engine.wait_for_run(&run.key()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, RunState::Success);
    let fetch = TaskKey::new(&run.key(), "fetch", -1);
    let ti = store.get_task_instance(&fetch).await.unwrap().unwrap();
    assert_eq!(ti.state, TaskState::Success);
    let value = xcom.get(&fetch, RETURN_VALUE).await.unwrap().unwrap().value;
    assert_eq!(value, json!({"items": [1, 2]}));
    let launched: Vec<String> = isolated
        .launches()
        .into_iter()
        .map(|a| a.task.task_id)
        .collect();
    assert_eq!(
        launched,
        vec!["use"],
        "the http task never reached the isolated executor"
    );
    running.shutdown().await;
}
