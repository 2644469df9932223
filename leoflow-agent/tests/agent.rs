//! The agent binary against a scripted stand-in for the agent API (a tiny HTTP server on
//! 127.0.0.1): its own rules — local timeout, cancel on a heartbeat answer (of a process and
//! of an http_api call), retries while the control plane is unavailable, pre-run failures
//! reported, a refused return value reported as a failure, an http_api call made and
//! reported, and a clear exit when misconfigured.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    auth: String,
    body: Value,
}

type Script = dyn Fn(&str, usize) -> (u16, Value) + Send + Sync;

/// Serves every connection with `script(endpoint, nth call of that endpoint)`.
struct FakeApi {
    url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl FakeApi {
    fn start(script: impl Fn(&str, usize) -> (u16, Value) + Send + Sync + 'static) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let s = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (seen, script) = (s.clone(), script.clone());
                thread::spawn(move || serve(conn, &seen, &*script));
            }
        });
        FakeApi { url, seen }
    }

    fn calls(&self, endpoint: &str) -> Vec<Request> {
        let path = format!("/agent/v1/{endpoint}");
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn run_agent(&self, extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_leoflow-agent"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LEOFLOW_AGENT_URL", &self.url)
            .env("LEOFLOW_AGENT_TOKEN", "tok");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Every line shipped, in `logs` calls or riding along with `finish`, in call order.
    fn lines(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| match r.path.as_str() {
                "/agent/v1/logs" => r.body["lines"].as_array().cloned().unwrap_or_default(),
                "/agent/v1/finish" => r.body["logs"].as_array().cloned().unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect()
    }

    fn system_lines(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l["stream"] == "system")
            .map(|l| l["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Request>>, script: &Script) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let (mut length, mut auth) = (0usize, String::new());
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((h, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => auth = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let endpoint = path.trim_start_matches("/agent/v1/").to_string();
        let nth = {
            let mut seen = seen.lock().unwrap();
            seen.push(Request {
                path: path.clone(),
                auth,
                body,
            });
            seen.iter().filter(|r| r.path == path).count() - 1
        };
        let (status, answer) = script(&endpoint, nth);
        let text = if answer.is_null() {
            String::new()
        } else {
            answer.to_string()
        };
        let kind = if status >= 400 {
            "application/problem+json"
        } else {
            "application/json"
        };
        write!(
            writer,
            "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )
        .unwrap();
    }
}

/// A start context for one task.
fn context(task: Value, timeout: Option<f64>, heartbeat: f64) -> Value {
    let mut ctx = json!({
        "attempt": {"dag_id": "d", "run_id": "r", "task_id": task["task_id"], "map_index": -1, "try_number": 1},
        "dag": {"dag_id": "d", "fileloc": "dag.py", "dag_version": "v", "version_number": 1, "owner": null, "params": {}},
        "run": {"run_id": "r", "run_type": "manual", "logical_date": null, "data_interval_start": null,
                "data_interval_end": null, "run_after": "2024-01-10T00:00:00Z", "conf": {}},
        "inputs": {}, "call_args": {}, "mapped_kwargs": {}, "params": {},
        "heartbeat_interval_seconds": heartbeat, "timeout_seconds": timeout,
    });
    ctx["task"] = task;
    ctx
}

fn bash(command: &str) -> Value {
    json!({"task_id": "t", "type": "bash", "entrypoint": command})
}

fn ok(endpoint: &str, start: &Value) -> (u16, Value) {
    match endpoint {
        "start" => (200, start.clone()),
        "heartbeat" => (200, json!({"action": "continue"})),
        "finish" => (200, json!({"state": "failed"})),
        _ => (204, Value::Null),
    }
}

/// A finish body without what rides along (log lines, elapsed time).
fn report(finish: &Request) -> Value {
    let mut body = finish.body.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.remove("logs");
        fields.remove("elapsed_seconds");
    }
    body
}

fn problem(status: u16, detail: &str) -> (u16, Value) {
    (
        status,
        json!({"type": "urn:x", "title": "x", "status": status, "detail": detail}),
    )
}

/// Live processes of a group (`/proc`), zombies excluded.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let fields: Vec<String> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

fn child_pgid(out: &Output) -> i32 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("child_pgid=").and_then(|p| p.parse().ok()))
        .expect("the agent names its task's process group")
}

#[test]
fn the_timeout_is_enforced_locally_on_the_whole_tree() {
    let start = context(bash("sleep 300 & sleep 300 & wait"), Some(1.0), 30.0);
    let api = FakeApi::start(move |e, _| ok(e, &start));
    let out = api.run_agent(&[]);
    assert_eq!(out.status.code(), Some(1));
    let finish = &api.calls("finish")[0];
    assert_eq!(finish.auth, "Bearer tok");
    assert_eq!(
        report(finish),
        json!({"status": "failed", "error": "timed out after 1s", "retryable": true})
    );
    let elapsed = finish.body["elapsed_seconds"].as_f64().unwrap();
    assert!((1.0..60.0).contains(&elapsed), "{elapsed}");
    assert!(
        !group_alive(child_pgid(&out)),
        "the task's sleeps outlived it"
    );
    let lines = api.system_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("timed out after 1s: stopping the task")),
        "{lines:?}"
    );
}

#[test]
fn a_cancel_answer_to_a_heartbeat_stops_the_task() {
    let start = context(bash("sleep 300"), None, 0.2);
    let api = FakeApi::start(move |e, n| match (e, n) {
        ("heartbeat", 1..) => (200, json!({"action": "cancel"})),
        _ => ok(e, &start),
    });
    let out = api.run_agent(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(api.calls("heartbeat").len() >= 2);
    assert_eq!(
        api.calls("finish")[0].body["error"],
        "cancelled by the control plane"
    );
    assert!(!group_alive(child_pgid(&out)));
}

#[test]
fn calls_are_retried_while_the_control_plane_is_unavailable_but_not_on_4xx() {
    let start = context(bash("echo done"), None, 30.0);
    let api = FakeApi::start(move |e, n| match (e, n) {
        ("start" | "finish", 0 | 1) => problem(503, "restarting"),
        ("finish", _) => (200, json!({"state": "success"})),
        _ => ok(e, &start),
    });
    let out = api.run_agent(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(api.calls("start").len(), 3);
    let finishes = api.calls("finish");
    assert_eq!(finishes.len(), 3);
    assert_eq!(
        report(&finishes[2]),
        json!({"status": "success", "return_value": "done", "retryable": true})
    );

    let refused = FakeApi::start(|_, _| problem(409, "attempt d/r/t#1 is no longer current"));
    let out = refused.run_agent(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(refused.calls("start").len(), 1, "a 4xx is final");
    assert!(
        refused.calls("finish").is_empty(),
        "not this agent's attempt to report"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no longer current"));
}

#[test]
fn pre_run_errors_are_reported_not_swallowed() {
    let start = context(json!({"task_id": "t", "type": "docker"}), None, 30.0);
    let api = FakeApi::start(move |e, _| ok(e, &start));
    assert_eq!(api.run_agent(&[]).status.code(), Some(1));
    assert_eq!(
        report(&api.calls("finish")[0]),
        json!({"status": "failed", "error": "this agent cannot run tasks of type \"docker\"", "retryable": false})
    );

    let start = context(
        json!({"task_id": "t", "type": "python", "entrypoint": "dag.py:t"}),
        None,
        30.0,
    );
    let api = FakeApi::start(move |e, _| ok(e, &start));
    api.run_agent(&[("LEOFLOW_PYTHON", "/nonexistent/python3")]);
    let error = api.calls("finish")[0].body["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("could not start `/nonexistent/python3`")
            && error.contains("LEOFLOW_PYTHON"),
        "{error}"
    );
}

#[test]
fn a_refused_return_value_is_reported_as_a_failure_with_the_reason() {
    let start = context(bash("echo big"), None, 30.0);
    let api = FakeApi::start(move |e, n| match (e, n) {
        ("finish", 0) => problem(413, "the return value was refused: too big"),
        _ => ok(e, &start),
    });
    api.run_agent(&[]);
    let finishes = api.calls("finish");
    assert_eq!(finishes[0].body["status"], "success");
    assert_eq!(
        report(&finishes[1]),
        json!({"status": "failed", "error": "the return value was refused: too big", "retryable": true})
    );
    // The refused call's lines travel again with the one that is kept.
    assert_eq!(finishes[1].body["logs"], finishes[0].body["logs"]);
}

#[test]
fn a_short_attempt_sends_its_lines_with_finish_and_makes_no_other_call() {
    let start = context(bash("echo one; echo two >&2"), None, 30.0);
    let api = FakeApi::start(move |e, _| match e {
        "finish" => (200, json!({"state": "success"})),
        _ => ok(e, &start),
    });
    let out = api.run_agent(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        api.calls("logs").is_empty(),
        "the lines ride along with finish"
    );
    let finish = &api.calls("finish")[0];
    let lines: Vec<(String, String)> = finish.body["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap().to_string(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(lines[0], ("system".into(), "▸ task started (try 1)".into()));
    assert!(
        lines.contains(&("stdout".into(), "one".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("stderr".into(), "two".into())),
        "{lines:?}"
    );
    assert!(finish.body["elapsed_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn when_the_outcome_is_not_accepted_the_agent_writes_the_closing_line_itself() {
    let start = context(bash("echo late"), None, 30.0);
    let api = FakeApi::start(move |e, _| match e {
        "finish" => problem(409, "attempt d/r/t#1 is no longer current"),
        _ => ok(e, &start),
    });
    assert_eq!(api.run_agent(&[]).status.code(), Some(1));
    let closing = api.calls("logs");
    assert_eq!(
        closing.len(),
        1,
        "only the closing line is sent after a 409"
    );
    let lines = closing[0].body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "the server kept the lines sent with finish");
    assert!(lines[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("✗ task stopped after "));
}

/// An http_api task's context with the call the control plane resolved.
fn http_call(url: &str, heartbeat: f64) -> Value {
    let mut ctx = context(
        json!({"task_id": "call", "type": "http_api", "execution_mode": "pod"}),
        None,
        heartbeat,
    );
    ctx["http_call"] = json!({
        "method": "GET", "url": url, "headers": {}, "timeout_seconds": 60.0,
        "success_status_codes": [200], "max_response_bytes": 1024,
    });
    ctx
}

#[test]
fn an_http_call_is_made_and_its_answer_reported() {
    let service = FakeApi::start(|_, _| (200, json!({"rows": 3})));
    let start = http_call(&format!("{}/agent/v1/report", service.url), 30.0);
    let api = FakeApi::start(move |e, _| match e {
        "finish" => (200, json!({"state": "success"})),
        _ => ok(e, &start),
    });
    let out = api.run_agent(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(service.calls("report").len(), 1);
    assert_eq!(
        report(&api.calls("finish")[0]),
        json!({"status": "success", "return_value": {"rows": 3}, "retryable": true})
    );
    let lines = api.system_lines();
    let prefix = format!("GET {}/agent/v1/report → HTTP 200 in ", service.url);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&prefix) && l.ends_with(" ms, 10 bytes")),
        "{lines:?}"
    );
}

#[test]
fn a_cancel_answer_to_a_heartbeat_stops_an_http_call() {
    // A server that accepts the call and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hang", silent.local_addr().unwrap());
    let held = thread::spawn(move || silent.accept());
    let start = http_call(&url, 0.2);
    let api = FakeApi::start(move |e, n| match (e, n) {
        ("heartbeat", 1..) => (200, json!({"action": "cancel"})),
        _ => ok(e, &start),
    });
    let began = std::time::Instant::now();
    let out = api.run_agent(&[]);
    assert!(
        began.elapsed().as_secs() < 30,
        "the call's 60 s were not awaited"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        report(&api.calls("finish")[0]),
        json!({"status": "failed", "error": "cancelled by the control plane", "retryable": true})
    );
    let lines = api.system_lines();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "GET {url}: cancelled by the control plane (after "
        ))),
        "{lines:?}"
    );
    drop(held);
}

#[test]
fn a_call_the_control_plane_could_not_resolve_fails_without_retry() {
    let mut start = http_call("http://127.0.0.1:1/", 30.0);
    start["http_call"] = Value::Null;
    start["http_call_error"] = json!("task \"call\": connection \"nope\" does not exist");
    let api = FakeApi::start(move |e, _| ok(e, &start));
    assert_eq!(api.run_agent(&[]).status.code(), Some(1));
    assert_eq!(
        report(&api.calls("finish")[0]),
        json!({"status": "failed", "error": "task \"call\": connection \"nope\" does not exist", "retryable": false})
    );
}

#[test]
fn an_unreadable_ssl_cert_file_fails_an_https_call_without_retry() {
    let start = http_call("https://127.0.0.1:1/", 30.0);
    let api = FakeApi::start(move |e, _| ok(e, &start));
    api.run_agent(&[("SSL_CERT_FILE", "/nonexistent/ca.pem")]);
    let finish = &api.calls("finish")[0].body;
    assert_eq!(finish["retryable"], false, "{finish}");
    let error = finish["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "GET https://127.0.0.1:1/: SSL_CERT_FILE=\"/nonexistent/ca.pem\" cannot be read"
        ),
        "{error}"
    );
}

#[test]
fn without_url_and_token_the_agent_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_leoflow-agent"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LEOFLOW_AGENT_URL"));
}
