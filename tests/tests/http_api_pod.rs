//! `http_api` tasks with `execution_mode: pod` end to end with real processes: the engine
//! on memory adapters, the agent API on 127.0.0.1, the subprocess executor starting the real
//! `leoflow-agent`, which makes the call the agent API resolved against a real HTTP(S)
//! server on 127.0.0.1. A JSON answer lands as the task's XCom, a connection resolves a
//! relative URL, a status outside the success codes, an oversized body and a timeout fail
//! with a clear reason (the status one word for word as the inline executor says it), the
//! engine retries a failed call, and HTTPS is verified against `SSL_CERT_FILE` or else the
//! built-in Mozilla roots.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod agent_harness;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use leoflow_core::engine::TriggerRequest;
use leoflow_memory::MemoryLogs;
use leoflow_ports::dag::RETURN_VALUE;
use leoflow_ports::datastore::{Connection, MetaStore, TaskStore};
use leoflow_ports::executor::{Executor, Outcome};
use leoflow_ports::http_call::judge;
use leoflow_ports::run::{RunKey, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use leoflow_subprocess::{SubprocessConfig, SubprocessExecutor};
use serde_json::{json, Value};

use agent_harness::{agent_binary, bind, dag, tokens, Stack};

struct Env {
    stack: Stack,
    exec: SubprocessExecutor,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let agent = agent_binary();
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    let tokens = tokens(&url);
    let logs = Arc::new(MemoryLogs::new());
    let config = SubprocessConfig::new(agent, dir.path());
    let exec = SubprocessExecutor::new(config, Arc::new(tokens.clone()), logs.clone());
    let stack = Stack::start(listener, url, tokens, Arc::new(exec.clone()), logs);
    Env { stack, exec, dir }
}

impl Env {
    /// Registers and runs a DAG of `tasks` to its end.
    async fn run(&self, dag_id: &str, tasks: Vec<Value>) -> RunKey {
        self.stack.register(dag(dag_id, tasks)).await;
        let key = self.stack.trigger(dag_id, TriggerRequest::default()).await;
        self.stack.finish(&key).await;
        self.idle().await;
        key
    }

    /// Waits until every agent has exited (their closing log lines come after `finish`).
    async fn idle(&self) {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while !self.exec.live().await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < end, "agents still running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn xcom(&self, key: &RunKey, task: &str) -> Option<Value> {
        self.stack
            .engine
            .xcom()
            .get(&TaskKey::new(key, task, -1), RETURN_VALUE)
            .await
            .unwrap()
            .map(|x| x.value)
    }

    /// The failed task's error message, after checking it failed once.
    async fn failure(&self, key: &RunKey, task: &str) -> String {
        let ti = self.stack.ti(key, task).await;
        assert_eq!((ti.state, ti.try_number), (TaskState::Failed, 1), "{ti:?}");
        ti.error_message.unwrap()
    }

    async fn log(&self, ti: &TaskInstance) -> Vec<String> {
        self.stack.log(&ti.attempt()).await
    }
}

/// An http_api task that runs through the agent, not retried unless the test says so.
fn http(id: &str, request: Value) -> Value {
    let mut task = json!({"task_id": id, "type": "http_api", "operator": "HttpOperator",
                          "execution_mode": "pod", "retries": 0});
    task["http_request"] = request;
    task
}

/// The service the tasks call, on 127.0.0.1: its base URL and its port.
async fn service() -> (String, u16) {
    let flaky = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/ok",
            get(|| async { axum::Json(json!({"items": [1, 2]})) }),
        )
        .route(
            "/items",
            post(|headers: HeaderMap, body: String| async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                axum::Json(json!({
                    "content_type": header("content-type"),
                    "trace": header("x-trace"),
                    "authorization": header("authorization"),
                    "body": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
                }))
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route("/big", get(|| async { "x".repeat(2 * 1024 * 1024) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/flaky",
            get(move || {
                let n = flaky.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Err((StatusCode::BAD_GATEWAY, "warming up"))
                    } else {
                        Ok(axum::Json(json!({"calls": n + 1})))
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}"), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answer_lands_as_the_xcom_and_a_connection_resolves_the_url() {
    let e = env().await;
    let (base, port) = service().await;
    e.stack
        .store
        .put_connection(&Connection {
            conn_id: "svc".into(),
            conn_type: "http".into(),
            description: None,
            host: Some("127.0.0.1".into()),
            login: None,
            schema: None,
            port: Some(port),
            password_ciphertext: None,
            extra_ciphertext: None,
        })
        .await
        .unwrap();
    let key = e
        .run(
            "http_pod_ok",
            vec![
                http("get", json!({"method": "GET", "url": format!("{base}/ok")})),
                http(
                    "post",
                    json!({"method": "POST", "url": "items", "http_conn_id": "svc",
                           "headers": {"X-Trace": "t-1"}, "body": {"n": 2}}),
                ),
            ],
        )
        .await;
    let run = e.stack.finish(&key).await;
    assert_eq!(run.state, RunState::Success);

    assert_eq!(e.xcom(&key, "get").await, Some(json!({"items": [1, 2]})));
    assert_eq!(
        e.xcom(&key, "post").await,
        Some(json!({"content_type": "application/json", "trace": "t-1",
                    "authorization": null, "body": {"n": 2}}))
    );

    let ti = e.stack.ti(&key, "post").await;
    assert_eq!(ti.try_number, 1);
    let log = e.log(&ti).await;
    agent_harness::assert_framed_as_success(&log);
    let calls: Vec<&String> = log.iter().filter(|l| l.contains(" → HTTP ")).collect();
    assert_eq!(calls.len(), 1, "one summary line per call: {log:?}");
    let prefix = format!("POST http://127.0.0.1:{port}/items → HTTP 200 in ");
    assert!(
        calls[0].starts_with(&prefix) && calls[0].ends_with(" bytes"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_say_why() {
    let e = env().await;
    let (base, _) = service().await;
    // A mistake in the DAG is not worth a retry.
    let mut no_conn = http(
        "no_conn",
        json!({"method": "GET", "url": "/v1", "http_conn_id": "nope"}),
    );
    no_conn["retries"] = json!(2);
    let key = e
        .run(
            "http_pod_failures",
            vec![
                http(
                    "down",
                    json!({"method": "GET", "url": format!("{base}/down")}),
                ),
                http(
                    "big",
                    json!({"method": "GET", "url": format!("{base}/big")}),
                ),
                http(
                    "slow",
                    json!({"method": "GET", "url": format!("{base}/slow"), "timeout_seconds": 1}),
                ),
                no_conn,
            ],
        )
        .await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Failed);

    // Word for word what the inline executor reports for the same answer.
    let what = format!("GET {base}/down");
    let Outcome::Failed { message, .. } = judge(503, b"maintenance", &[200, 201, 202, 204], &what)
    else {
        panic!("a 503 must fail")
    };
    assert_eq!(e.failure(&key, "down").await, message);
    let down = e.stack.ti(&key, "down").await;
    let log = e.log(&down).await;
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("{what} → HTTP 503 in ")) && l.ends_with(" 11 bytes")),
        "{log:?}"
    );

    let big = e.failure(&key, "big").await;
    assert!(
        big.starts_with(&format!(
            "task \"big\": GET {base}/big: the response body exceeds the 1048576-byte limit of http_api tasks"
        )),
        "{big}"
    );

    let slow = e.failure(&key, "slow").await;
    assert_eq!(
        slow,
        format!("GET {base}/slow timed out after 1.0s (the task's timeout_seconds, capped by execution_timeout)")
    );
    let slow_ti = e.stack.ti(&key, "slow").await;
    let log = e.log(&slow_ti).await;
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("{slow} (after ")) && l.ends_with(" ms)")),
        "{log:?}"
    );

    let no_conn = e.failure(&key, "no_conn").await;
    assert!(
        no_conn.contains("connection \"nope\" does not exist"),
        "{no_conn}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_retries_a_failed_call() {
    let e = env().await;
    let (base, _) = service().await;
    let mut task = http(
        "flaky",
        json!({"method": "GET", "url": format!("{base}/flaky")}),
    );
    task["retries"] = json!(1);
    task["retry_delay_seconds"] = json!(0.1);
    let key = e.run("http_pod_retry", vec![task]).await;
    assert_eq!(e.stack.finish(&key).await.state, RunState::Success);
    let ti = e.stack.ti(&key, "flaky").await;
    assert_eq!((ti.state, ti.try_number), (TaskState::Success, 2));
    let tries = e
        .stack
        .store
        .tries(&TaskKey::new(&key, "flaky", -1))
        .await
        .unwrap();
    let first = tries.iter().find(|t| t.try_number == 1).unwrap();
    assert!(
        first
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("answered HTTP 502") && m.contains("warming up")),
        "{first:?}"
    );
    assert_eq!(e.xcom(&key, "flaky").await, Some(json!({"calls": 2})));
}

/// A private CA and an HTTPS server on 127.0.0.1 whose certificate it signed, answering
/// every request with a small JSON body: the server's URL and the CA's PEM.
fn https_service() -> (String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "leoflow test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/secure", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                // A client that does not trust the certificate ends the handshake here.
                loop {
                    let mut line = String::new();
                    match tls.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let body = r#"{"secure": true}"#;
                let stream = tls.get_mut();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.conn.send_close_notify();
                let _ = stream.flush();
            });
        }
    });
    (url, ca_cert.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_verified_against_ssl_cert_file_or_else_the_mozilla_roots() {
    let e = env().await;
    let (url, ca_pem) = https_service();
    let ca_file = e.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut trusted = http("trusted", json!({"method": "GET", "url": url}));
    trusted["env"] = json!({"SSL_CERT_FILE": ca_file.display().to_string()});
    let untrusted = http("untrusted", json!({"method": "GET", "url": url}));
    let key = e.run("http_pod_tls", vec![trusted, untrusted]).await;

    let ti = e.stack.ti(&key, "trusted").await;
    assert_eq!(ti.state, TaskState::Success, "{ti:?}");
    assert_eq!(e.xcom(&key, "trusted").await, Some(json!({"secure": true})));

    let error = e.failure(&key, "untrusted").await;
    assert!(
        error.starts_with(&format!("GET {url}: could not connect: TLS: "))
            && error.contains("UnknownIssuer")
            && error.contains("SSL_CERT_FILE"),
        "{error}"
    );
}
