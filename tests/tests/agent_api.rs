//! The agent API over real HTTP on 127.0.0.1, with the scriptable fake executor standing
//! in for processes: what `start` tells an attempt (resolved inputs, fan-ins, mapped
//! arguments, params, an http_api task's resolved call), the XCom read rule, heartbeats,
//! logs, size caps, and every way a token can be misused — each refused with an RFC 7807
//! problem.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod agent_harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use leoflow_core::engine::TriggerRequest;
use leoflow_http::token::{AgentClaims, AgentTokens};
use leoflow_memory::MemoryLogs;
use leoflow_ports::datastore::{Connection, MetaStore, TaskStore};
use leoflow_ports::run::{AttemptId, RunKey, TaskKey};
use leoflow_ports::state::TaskState;
use leoflow_ports::testkit::fake_executor::{Behavior, FakeExecutor};
use serde_json::{json, Value};

use agent_harness::{bind, call, dag, tokens, Reply, Stack};

struct Api {
    stack: Stack,
    run: RunKey,
}

fn python(id: &str, deps: &[&str]) -> Value {
    json!({"task_id": id, "type": "python", "entrypoint": format!("dag.py:{id}"), "depends_on": deps})
}

/// A run of DAG `api` where `consumer` (reading `up` and the mapped `mapper`), `loner`
/// (no upstream) and the two instances of `fan` are running, waiting on the agent API.
async fn api() -> Api {
    let (listener, url) = bind().await;
    let exec = FakeExecutor::new();
    exec.script("up", Behavior::Succeed(Some(json!({"n": 1}))));
    exec.script("mapper", Behavior::Succeed(Some(json!(5))));
    for t in ["consumer", "loner", "fan"] {
        exec.script(t, Behavior::Hang);
    }
    let stack = Stack::start(
        listener,
        url.clone(),
        tokens(&url),
        Arc::new(exec),
        Arc::new(MemoryLogs::new()),
    );
    let mut mapper = python("mapper", &[]);
    mapper["map"] = json!({"expand": {"x": {"literal": [10, 20, 30]}}});
    let mut consumer = python("consumer", &["mapper", "up"]);
    consumer["xcom_input"] = json!({
        "one": "up",
        "many": ["up", "up"],
        "named": {"dict": {"k": "up"}},
        "mapped": "mapper",
        "missing": {"task_id": "up", "key": "nope"},
    });
    consumer["call_args"] = json!({"c": 1});
    consumer["execution_timeout_seconds"] = json!(60);
    let mut fan = python("fan", &[]);
    fan["map"] = json!({"expand": {"x": {"literal": ["a", "b"]}}});
    let mut spec = dag(
        "api",
        vec![
            python("up", &[]),
            mapper,
            consumer,
            python("loner", &[]),
            fan,
        ],
    );
    spec["params"] = json!({"p": {"value": 1}, "q": {"value": "default"}});
    stack.register(spec).await;
    let run = stack
        .trigger(
            "api",
            TriggerRequest {
                conf: Some(json!({"q": 2})),
                ..TriggerRequest::default()
            },
        )
        .await;
    stack.reach(&run, "consumer", TaskState::Running).await;
    stack.reach(&run, "loner", TaskState::Running).await;
    let api = Api { stack, run };
    api.until_running("fan", 1).await;
    api
}

impl Api {
    fn attempt(&self, task: &str, map_index: i32, try_number: u32) -> AttemptId {
        AttemptId {
            task: TaskKey::new(&self.run, task, map_index),
            try_number,
        }
    }

    fn token(&self, task: &str, map_index: i32, try_number: u32) -> String {
        let attempt = self.attempt(task, map_index, try_number);
        self.stack.tokens.mint(&AgentClaims::for_attempt(
            &attempt,
            Duration::from_secs(600),
        ))
    }

    async fn until_running(&self, task: &str, map_index: i32) {
        let key = TaskKey::new(&self.run, task, map_index);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let ti = self.stack.store.get_task_instance(&key).await.unwrap();
            if ti.is_some_and(|t| t.state == TaskState::Running) {
                return;
            }
            assert!(Instant::now() < end, "{key} never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        call(
            &self.stack.url,
            "POST",
            path,
            token,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        call(&self.stack.url, "GET", path, token, None).await
    }
}

/// A problem document with every RFC 7807 member, for `path`.
fn assert_problem(reply: &Reply, status: u16, path: &str, detail_has: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.content_type, "application/problem+json", "{reply:?}");
    let b = &reply.body;
    assert!(
        b["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:leoflow:problem:")),
        "{b}"
    );
    assert!(b["title"].as_str().is_some_and(|t| !t.is_empty()), "{b}");
    assert_eq!(b["status"], json!(status), "{b}");
    assert_eq!(b["instance"], json!(path), "{b}");
    let detail = b["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(detail_has),
        "{detail:?} lacks {detail_has:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_resolves_inputs_fan_ins_params_and_mapped_arguments() {
    let a = api().await;
    let token = a.token("consumer", -1, 1);
    let r = a.post("/agent/v1/start", Some(&token), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let c = r.body;
    assert_eq!(
        c["attempt"],
        json!({"dag_id": "api", "run_id": a.run.run_id, "task_id": "consumer", "map_index": -1, "try_number": 1})
    );
    assert_eq!(c["task"]["task_id"], "consumer");
    assert_eq!(c["task"]["entrypoint"], "dag.py:consumer");
    assert_eq!(
        c["inputs"],
        json!({
            "one": {"n": 1},
            "many": [{"n": 1}, {"n": 1}],
            "named": {"k": {"n": 1}},
            "mapped": [5, 5, 5],
            "missing": null,
        })
    );
    assert_eq!(c["call_args"], json!({"c": 1}));
    assert_eq!(c["mapped_kwargs"], json!({}));
    assert_eq!(c["dag"]["params"], json!({"p": 1, "q": "default"}));
    assert_eq!(
        c["params"],
        json!({"p": 1, "q": 2}),
        "run conf overrides defaults"
    );
    assert_eq!(c["dag"]["version_number"], 1);
    assert_eq!(c["run"]["run_type"], "manual");
    assert_eq!(c["run"]["conf"], json!({"q": 2}));
    assert_eq!(c["timeout_seconds"], json!(60.0));
    assert_eq!(c["heartbeat_interval_seconds"], json!(30.0));
    assert!(
        c.get("http_call").is_none(),
        "only http_api tasks get a call"
    );

    let r = a
        .post("/agent/v1/start", Some(&a.token("fan", 1, 1)), json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["mapped_kwargs"], json!({"x": "b"}));
    assert_eq!(r.body["attempt"]["map_index"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_gives_an_http_api_task_its_call_resolved_against_its_connection() {
    let (listener, url) = bind().await;
    let exec = FakeExecutor::new();
    for t in ["call", "broken"] {
        exec.script(t, Behavior::Hang);
    }
    let stack = Stack::start(
        listener,
        url.clone(),
        tokens(&url),
        Arc::new(exec),
        Arc::new(MemoryLogs::new()),
    );
    stack
        .store
        .put_connection(&Connection {
            conn_id: "svc".into(),
            conn_type: "http".into(),
            description: None,
            host: Some("svc.internal".into()),
            login: Some("user".into()),
            schema: Some("https".into()),
            port: Some(8443),
            password_ciphertext: Some("sealed".into()),
            extra_ciphertext: None,
        })
        .await
        .unwrap();
    let http = |id: &str, conn: &str| {
        json!({"task_id": id, "type": "http_api", "execution_mode": "pod",
               "execution_timeout_seconds": 30,
               "http_request": {"method": "POST", "url": "/v1/items", "http_conn_id": conn,
                                "headers": {"X-Trace": "1"}, "body": {"n": 1},
                                "timeout_seconds": 90, "success_status_codes": [201]}})
    };
    stack
        .register(dag(
            "pod_http",
            vec![http("call", "svc"), http("broken", "nope")],
        ))
        .await;
    let run = stack.trigger("pod_http", TriggerRequest::default()).await;
    let a = Api { stack, run };
    a.until_running("call", -1).await;
    a.until_running("broken", -1).await;

    let r = a
        .post("/agent/v1/start", Some(&a.token("call", -1, 1)), json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["http_call"],
        json!({
            "method": "POST",
            "url": "https://svc.internal:8443/v1/items",
            "headers": {"Content-Type": "application/json", "X-Trace": "1"},
            "body": "{\"n\":1}",
            "timeout_seconds": 30.0,
            "success_status_codes": [201],
            "max_response_bytes": 1_048_576,
        }),
        "the execution timeout caps the call's"
    );
    assert!(r.body.get("http_call_error").is_none(), "{r:?}");

    let r = a
        .post(
            "/agent/v1/start",
            Some(&a.token("broken", -1, 1)),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("http_call").is_none(), "{r:?}");
    let error = r.body["http_call_error"].as_str().unwrap();
    assert!(
        error.contains("connection \"nope\" does not exist"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xcoms_are_readable_only_from_declared_upstreams() {
    let a = api().await;
    let consumer = a.token("consumer", -1, 1);
    let r = a.get("/agent/v1/xcom?task_id=up", Some(&consumer)).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"value": {"n": 1}}))
    );
    let r = a
        .get("/agent/v1/xcom?task_id=mapper", Some(&consumer))
        .await;
    assert_eq!(
        r.body,
        json!({"value": [5, 5, 5]}),
        "a mapped upstream reads as its list"
    );
    let r = a
        .get("/agent/v1/xcom?task_id=mapper&map_index=2", Some(&consumer))
        .await;
    assert_eq!(r.body, json!({"value": 5}));
    let r = a
        .get("/agent/v1/xcom?task_id=up&key=absent", Some(&consumer))
        .await;
    assert_eq!(r.body, json!({"value": null}));

    // `loner` declares no upstream: `up`'s value is not its to read.
    let loner = a.token("loner", -1, 1);
    let r = a.get("/agent/v1/xcom?task_id=up", Some(&loner)).await;
    assert_problem(
        &r,
        403,
        "/agent/v1/xcom",
        "not one of its declared upstreams",
    );

    // What a task pushes itself it may read back.
    let r = a
        .post(
            "/agent/v1/xcom",
            Some(&loner),
            json!({"key": "extra", "value": [1, 2]}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = a
        .get("/agent/v1/xcom?task_id=loner&key=extra", Some(&loner))
        .await;
    assert_eq!(r.body, json!({"value": [1, 2]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_values_are_refused_with_the_xcom_limit() {
    let a = api().await;
    let token = a.token("loner", -1, 1);
    let big = "x".repeat(300 * 1024);
    let r = a
        .post(
            "/agent/v1/xcom",
            Some(&token),
            json!({"key": "big", "value": big}),
        )
        .await;
    assert_problem(&r, 413, "/agent/v1/xcom", "exceeds the 262144-byte limit");

    let r = a
        .post(
            "/agent/v1/finish",
            Some(&token),
            json!({"status": "success", "return_value": big}),
        )
        .await;
    assert_problem(&r, 413, "/agent/v1/finish", "the return value was refused");
    assert_eq!(
        a.stack.ti(&a.run, "loner").await.state,
        TaskState::Running,
        "a refused finish records nothing"
    );

    // A body past the endpoint's own limit is explained in the same terms.
    let huge = "x".repeat(1024 * 1024);
    let r = a
        .post(
            "/agent/v1/xcom",
            Some(&token),
            json!({"key": "huge", "value": huge}),
        )
        .await;
    assert_problem(
        &r,
        413,
        "/agent/v1/xcom",
        "XCom values are capped at 262144 bytes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_logs_and_finish_follow_the_attempt() {
    let a = api().await;
    let token = a.token("loner", -1, 1);
    let r = a.post("/agent/v1/heartbeat", Some(&token), json!({})).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"action": "continue"}))
    );
    assert!(a
        .stack
        .ti(&a.run, "loner")
        .await
        .last_heartbeat_at
        .is_some());

    let r = a
        .post(
            "/agent/v1/logs",
            Some(&token),
            json!({"lines": [
                {"at": "2024-01-10T00:00:00Z", "stream": "stdout", "message": "hello"},
                {"stream": "stderr", "message": "oops"},
            ]}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let log = a.stack.log(&a.attempt("loner", -1, 1)).await;
    assert_eq!(log, ["hello", "oops"]);
    let r = a
        .post(
            "/agent/v1/logs",
            Some(&token),
            json!({"lines": [{"stream": "tty", "message": "x"}]}),
        )
        .await;
    assert_problem(&r, 400, "/agent/v1/logs", "invalid JSON body");

    // Lines not shipped yet ride along with finish; given the elapsed time, the server
    // writes the closing line after them.
    let r = a
        .post(
            "/agent/v1/finish",
            Some(&token),
            json!({"status": "failed", "error": "boom", "exit_code": 2, "retryable": false,
                   "logs": [{"stream": "stdout", "message": "last words"}],
                   "elapsed_seconds": 1.234}),
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"state": "failed", "error": "boom"}))
    );
    let log = a.stack.log(&a.attempt("loner", -1, 1)).await;
    assert_eq!(
        log,
        [
            "hello",
            "oops",
            "last words",
            "✗ task failed (exit 2) in 1.23s: boom"
        ]
    );
    let ti = a.stack.ti(&a.run, "loner").await;
    assert_eq!(
        (ti.state, ti.exit_code, ti.error_message.as_deref()),
        (TaskState::Failed, Some(2), Some("boom"))
    );
    // The attempt is over: the agent is told to stop, and may not report again.
    let r = a.post("/agent/v1/heartbeat", Some(&token), json!({})).await;
    assert_eq!(r.body, json!({"action": "cancel"}));
    let r = a
        .post(
            "/agent/v1/finish",
            Some(&token),
            json!({"status": "success", "logs": [{"stream": "stderr", "message": "straggler"}],
                   "elapsed_seconds": 12.5}),
        )
        .await;
    assert_problem(&r, 409, "/agent/v1/finish", "no longer current");
    // Its lines are kept, as a `logs` call's would be; no closing line for a refused report.
    let log = a.stack.log(&a.attempt("loner", -1, 1)).await;
    assert_eq!(log.last().map(String::as_str), Some("straggler"));
    let r = a
        .post(
            "/agent/v1/xcom",
            Some(&token),
            json!({"key": "k", "value": 1}),
        )
        .await;
    assert_problem(&r, 409, "/agent/v1/xcom", "no longer current");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cannot_act_for_another_attempt() {
    let a = api().await;
    // A second run of the same DAG, whose `loner` is running too.
    let other = a
        .stack
        .trigger(
            "api",
            TriggerRequest {
                run_id: Some("second".into()),
                ..TriggerRequest::default()
            },
        )
        .await;
    a.stack.reach(&other, "loner", TaskState::Running).await;

    // Another try of the same task instance: not the current attempt.
    let stale = a.token("loner", -1, 2);
    let r = a
        .post(
            "/agent/v1/finish",
            Some(&stale),
            json!({"status": "success"}),
        )
        .await;
    assert_problem(&r, 409, "/agent/v1/finish", "no longer current");
    let r = a.post("/agent/v1/start", Some(&stale), json!({})).await;
    assert_problem(&r, 409, "/agent/v1/start", "no longer current");

    // The first run's token finishes the first run's attempt and nothing else.
    let first = a.token("loner", -1, 1);
    let r = a
        .post(
            "/agent/v1/finish",
            Some(&first),
            json!({"status": "success", "return_value": 7}),
        )
        .await;
    assert_eq!(r.body, json!({"state": "success"}));
    assert_eq!(a.stack.ti(&a.run, "loner").await.state, TaskState::Success);
    assert_eq!(a.stack.ti(&other, "loner").await.state, TaskState::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_unauthorized() {
    let a = api().await;
    let attempt = a.attempt("loner", -1, 1);
    let claims = AgentClaims::for_attempt(&attempt, Duration::from_secs(600));

    let foreign = AgentTokens::new(b"some other secret, also 32 bytes", "x")
        .unwrap()
        .mint(&claims);
    let mut expired = claims.clone();
    expired.iat -= 7200;
    expired.exp = expired.iat + 3600;
    let mut user = claims.clone();
    user.aud = "leoflow-user".into();
    let mut wrong_issuer = claims.clone();
    wrong_issuer.iss = "someone-else".into();
    let cases = [
        (None, "missing agent token"),
        (Some("garbage".to_string()), "invalid agent token"),
        (Some(foreign), "bad signature"),
        (Some(a.stack.tokens.mint(&expired)), "expired"),
        (Some(a.stack.tokens.mint(&user)), "audience"),
        (Some(a.stack.tokens.mint(&wrong_issuer)), "issuer"),
    ];
    for (token, why) in &cases {
        for (path, method) in [
            ("/agent/v1/start", "POST"),
            ("/agent/v1/finish", "POST"),
            ("/agent/v1/xcom?task_id=up", "GET"),
        ] {
            let r = if method == "GET" {
                a.get(path, token.as_deref()).await
            } else {
                a.post(path, token.as_deref(), json!({"status": "success"}))
                    .await
            };
            assert_problem(&r, 401, path.split('?').next().unwrap_or(path), why);
        }
    }
    assert_eq!(a.stack.ti(&a.run, "loner").await.state, TaskState::Running);

    let r = a.get("/agent/v1/nope", None).await;
    assert_problem(&r, 404, "/agent/v1/nope", "no such endpoint");
    let r = a.get("/agent/v1/finish", None).await;
    assert_problem(&r, 405, "/agent/v1/finish", "method");
}
