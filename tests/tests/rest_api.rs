//! The REST API v2 end to end over real HTTP on 127.0.0.1, on a throwaway Postgres, with
//! the scriptable fake executor running the tasks: authentication and roles, hostile
//! input, the run life cycle (trigger, list, get, mark, clear, delete), variables and
//! connections (secrets encrypted at rest), every response validated against Airflow
//! 3.2.1's own OpenAPI document, and Airflow's Python client and benchmark driver
//! driving the server.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::needless_pass_by_value
)] // Test code: a panic is the failure report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use leoflow_core::engine::Running;
use leoflow_core::{Engine, EngineConfig};
use leoflow_http::cipher::Cipher;
use leoflow_http::password::hash_password;
use leoflow_http::token::{AgentClaims, AgentTokens};
use leoflow_http::{agent_router, api_router, AgentApi, ApiConfig, Role, UserTokens};
use leoflow_ports::datastore::{MetaStore, RunFilter, RunStore, User};
use leoflow_ports::log::{LogLine, LogStream};
use leoflow_ports::run::{AttemptId, RunKey, TaskKey};
use leoflow_ports::testkit::fake_executor::{Behavior, FakeExecutor};
use leoflow_postgres::testing::fresh_adapters;
use leoflow_postgres::PgStore;
use serde_json::{json, Value};
use tokio::net::TcpListener;

const JWT_SECRET: &[u8] = b"a user-token secret for the tests";
const SECRET_KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "correct horse";
const MAX_BODY: usize = 64 * 1024;

struct Server {
    engine: Engine,
    store: Arc<PgStore>,
    exec: FakeExecutor,
    url: String,
    running: Option<Running>,
    http: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.running.take());
        self.http.abort();
    }
}

async fn server() -> Server {
    let pg = fresh_adapters().await;
    let store = Arc::new(pg.store);
    let exec = FakeExecutor::new();
    let engine = Engine::builder()
        .datastore(store.clone())
        .executor(Arc::new(exec.clone()))
        .xcom(Arc::new(pg.xcom))
        .logs(Arc::new(pg.logs))
        .notifier(Arc::new(pg.notifier))
        .config(EngineConfig::default())
        .build()
        .unwrap();
    for (name, role) in [
        ("admin", "admin"),
        ("op", "op"),
        ("user", "user"),
        ("viewer", "viewer"),
    ] {
        store
            .put_user(&User {
                username: name.into(),
                password_hash: hash_password(PASSWORD).unwrap(),
                role: role.into(),
                tenant: "default".into(),
                is_active: true,
                created_at: Utc::now(),
            })
            .await
            .unwrap();
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Served as the editions serve it: the agent API and the REST API on one listener.
    let router = agent_router(AgentApi::new(
        engine.clone(),
        AgentTokens::new(JWT_SECRET, &url).unwrap(),
    ))
    .merge(api_router(
        engine.clone(),
        ApiConfig {
            jwt_secret: JWT_SECRET.to_vec(),
            secret_key: SECRET_KEY,
            token_ttl: Duration::from_secs(3600),
            login_rate_limit_per_minute: 5,
            max_body_bytes: MAX_BODY,
        },
    ));
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
        engine,
        store,
        exec,
        url,
        running,
        http,
    }
}

/// One HTTP response.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
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

/// A request: method, path, extra headers, body.
async fn send(
    url: &str,
    method: &'static str,
    path: &str,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
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
            req = req.header(k, v);
        }
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let req = req.body(body.unwrap_or_default()).unwrap();
        let mut res = agent.run(req).unwrap();
        let status = res.status().as_u16();
        let headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = res.body_mut().read_to_vec().unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            content_type,
            headers,
            body,
        }
    })
    .await
    .unwrap()
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {token}"))]
}

/// A caller with a token, recording every response for the schema check.
struct Client<'a> {
    url: &'a str,
    token: String,
    samples: Vec<Value>,
}

impl Client<'_> {
    /// `template` is the route as Airflow's document names it; `path` the concrete one.
    async fn call(
        &mut self,
        method: &'static str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let r = send(
            self.url,
            method,
            path,
            bearer(&self.token),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await;
        self.samples.push(json!({
            "method": method.to_lowercase(),
            "path": template,
            "status": r.status,
            "body": r.body,
        }));
        r
    }
}

async fn login(url: &str, user: &str) -> String {
    let r = send(
        url,
        "POST",
        "/auth/token",
        vec![],
        Some(
            json!({"username": user, "password": PASSWORD})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["access_token"].as_str().unwrap().to_string()
}

fn python(id: &str, deps: &[&str]) -> Value {
    json!({"task_id": id, "type": "python", "entrypoint": format!("dag.py:{id}"), "depends_on": deps})
}

fn dag(dag_id: &str, tasks: Vec<Value>) -> Value {
    json!({"schema_version": "1.0", "dag_id": dag_id, "dag_version": "v1", "image": "",
           "owner": "data", "tags": ["etl", "nightly"], "tasks": tasks})
}

async fn register(url: &str, token: &str, spec: &Value) -> Reply {
    let id = spec["dag_id"].as_str().unwrap();
    send(
        url,
        "POST",
        &format!("/api/v2/dags/{id}/versions"),
        bearer(token),
        Some(spec.to_string().into_bytes()),
    )
    .await
}

async fn wait_run(url: &str, token: &str, dag_id: &str, run_id: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let r = send(
            url,
            "GET",
            &format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}"),
            bearer(token),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        if matches!(r.body["state"].as_str(), Some("success" | "failed")) {
            return r.body;
        }
        assert!(Instant::now() < end, "run {run_id} never finished: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_problem(r: &Reply, status: u16, detail_has: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.content_type, "application/problem+json", "{r:?}");
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(detail_has),
        "{detail:?} lacks {detail_has:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_guard_every_route() {
    let s = server().await;
    let url = s.url.as_str();
    assert_eq!(
        send(url, "GET", "/api/v2/version", vec![], None)
            .await
            .status,
        200
    );
    assert_eq!(
        send(url, "GET", "/api/v2/monitor/health", vec![], None)
            .await
            .status,
        200
    );

    let doc = send(url, "GET", "/api/v2/openapi.json", vec![], None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(
        doc.body["paths"]["/api/v2/dags/{dag_id}/dagRuns"]["post"]["x-leoflow-min-role"],
        "user"
    );
    let docs = send(url, "GET", "/docs", vec![], None).await;
    assert!(docs.status == 200 && docs.content_type.starts_with("text/html"));

    let none = send(url, "GET", "/api/v2/dags", vec![], None).await;
    assert_problem(&none, 401, "missing token");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));

    let admin = login(url, "admin").await;
    register(url, &admin, &dag("guarded", vec![python("a", &[])])).await;
    let viewer = login(url, "viewer").await;
    let r = send(url, "GET", "/api/v2/dags", bearer(&viewer), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let trigger = send(
        url,
        "POST",
        "/api/v2/dags/guarded/dagRuns",
        bearer(&viewer),
        Some(b"{\"logical_date\": null}".to_vec()),
    )
    .await;
    assert_problem(&trigger, 403, "needs role user");
    assert_problem(
        &send(url, "GET", "/api/v2/variables", bearer(&viewer), None).await,
        403,
        "needs role op",
    );
    let user = login(url, "user").await;
    assert_problem(
        &send(url, "GET", "/api/v2/connections", bearer(&user), None).await,
        403,
        "needs role op",
    );

    // The `_token` cookie works as well as the header, and a bad bearer does not hide a
    // good cookie.
    let cookie = vec![
        ("Authorization".into(), "Bearer stale".into()),
        ("Cookie".into(), format!("theme=dark; _token={viewer}")),
    ];
    assert_eq!(
        send(url, "GET", "/api/v2/dags", cookie, None).await.status,
        200
    );

    let tokens = UserTokens::new(JWT_SECRET, Duration::from_secs(60)).unwrap();
    let mut expired = tokens.claims_for("admin", Role::Admin, "default");
    expired.exp = expired.iat - 3600;
    let r = send(
        url,
        "GET",
        "/api/v2/dags",
        bearer(&tokens.mint(&expired)),
        None,
    )
    .await;
    assert_problem(&r, 401, "expired");
    let forger = UserTokens::new(
        b"a secret the server does not know",
        Duration::from_secs(60),
    )
    .unwrap();
    let forged = forger.mint(&forger.claims_for("admin", Role::Admin, "default"));
    assert_problem(
        &send(url, "GET", "/api/v2/dags", bearer(&forged), None).await,
        401,
        "signature",
    );
    let mut agent_aud = tokens.claims_for("admin", Role::Admin, "default");
    agent_aud.aud = leoflow_http::token::AUDIENCE.into();
    assert_problem(
        &send(
            url,
            "GET",
            "/api/v2/dags",
            bearer(&tokens.mint(&agent_aud)),
            None,
        )
        .await,
        401,
        "not a user token",
    );
    // An agent token (same secret, agent audience) is no user token.
    let agent = AgentTokens::new(JWT_SECRET, url)
        .unwrap()
        .mint(&AgentClaims::for_attempt(
            &AttemptId {
                task: TaskKey::new(&RunKey::new("guarded", "r"), "a", -1),
                try_number: 1,
            },
            Duration::from_secs(60),
        ));
    assert_problem(
        &send(url, "GET", "/api/v2/dags", bearer(&agent), None).await,
        401,
        "invalid token",
    );

    assert_problem(
        &send(url, "GET", "/api/v2/nothing/here", bearer(&admin), None).await,
        404,
        "no such endpoint",
    );
    assert_problem(
        &send(url, "PUT", "/api/v2/dags", bearer(&admin), None).await,
        405,
        "does not accept",
    );
    assert_problem(
        &send(url, "GET", "/api/v2/dags?colour=red", bearer(&admin), None).await,
        400,
        "unknown query parameter `colour`",
    );
    // The datastore's user counts, not the token's copy: a promotion applies at once, a
    // disabled user is out at once.
    let mut v = s.store.get_user("viewer").await.unwrap().unwrap();
    v.role = "user".into();
    s.store.put_user(&v).await.unwrap();
    let r = send(
        url,
        "POST",
        "/api/v2/dags/guarded/dagRuns",
        bearer(&viewer),
        Some(b"{\"logical_date\": null}".to_vec()),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    v.is_active = false;
    s.store.put_user(&v).await.unwrap();
    assert_problem(
        &send(url, "GET", "/api/v2/dags", bearer(&viewer), None).await,
        401,
        "disabled",
    );

    let page = send(url, "GET", "/api/v2/auth/login?next=/dags", vec![], None).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    let back = send(
        url,
        "GET",
        "/api/v2/auth/login?next=/dags",
        vec![("Cookie".into(), format!("_token={admin}"))],
        None,
    )
    .await;
    assert_eq!((back.status, back.header("location")), (307, Some("/dags")));
    let out = send(url, "GET", "/api/v2/auth/logout", vec![], None).await;
    assert_eq!(out.status, 307);
    assert!(out.header("set-cookie").unwrap().contains("_token=;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_failed_login_in_a_minute_is_refused() {
    let s = server().await;
    let bad = json!({"username": "admin", "password": "guess"}).to_string();
    for i in 0..5 {
        let r = send(
            &s.url,
            "POST",
            "/auth/token",
            vec![],
            Some(bad.clone().into_bytes()),
        )
        .await;
        assert_problem(&r, 401, "invalid credentials");
        assert!(i < 5);
    }
    // Forwarded-for headers do not buy a fresh budget, and even the right password waits.
    let good = json!({"username": "admin", "password": PASSWORD}).to_string();
    let r = send(
        &s.url,
        "POST",
        "/auth/token",
        vec![("X-Forwarded-For".into(), "203.0.113.9".into())],
        Some(good.into_bytes()),
    )
    .await;
    assert_problem(&r, 429, "too many failed login attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_changes_nothing() {
    let s = server().await;
    let url = s.url.as_str();
    let admin = login(url, "admin").await;
    assert_eq!(
        register(url, &admin, &dag("safe", vec![python("a", &[])]))
            .await
            .status,
        201
    );

    let evil = "safe'%3B%20DROP%20TABLE%20dags%3B--";
    assert_problem(
        &send(
            url,
            "GET",
            &format!("/api/v2/dags/{evil}"),
            bearer(&admin),
            None,
        )
        .await,
        404,
        "not found",
    );
    assert_problem(
        &send(
            url,
            "POST",
            &format!("/api/v2/dags/{evil}/dagRuns"),
            bearer(&admin),
            Some(b"{\"logical_date\":null}".to_vec()),
        )
        .await,
        404,
        "not found",
    );
    let r = send(
        url,
        "GET",
        "/api/v2/dags?dag_id_pattern=%27%20OR%201%3D1%20--",
        bearer(&admin),
        None,
    )
    .await;
    assert_eq!((r.status, r.body["total_entries"].as_u64()), (200, Some(0)));
    let huge = json!({"logical_date": null, "note": "x".repeat(MAX_BODY * 2)}).to_string();
    assert_problem(
        &send(
            url,
            "POST",
            "/api/v2/dags/safe/dagRuns",
            bearer(&admin),
            Some(huge.into_bytes()),
        )
        .await,
        413,
        "larger than",
    );
    assert_problem(
        &send(
            url,
            "POST",
            "/api/v2/dags/safe/dagRuns",
            bearer(&admin),
            Some(b"{\"logical_date\": null, \"colour\": 1}".to_vec()),
        )
        .await,
        400,
        "unknown field `colour`",
    );
    assert_problem(
        &send(
            url,
            "POST",
            "/api/v2/dags/safe/dagRuns",
            bearer(&admin),
            Some(b"{not json".to_vec()),
        )
        .await,
        400,
        "invalid JSON",
    );
    let bad_id = json!({"logical_date": null, "dag_run_id": "a/../../b"}).to_string();
    assert_problem(
        &send(
            url,
            "POST",
            "/api/v2/dags/safe/dagRuns",
            bearer(&admin),
            Some(bad_id.into_bytes()),
        )
        .await,
        400,
        "not usable",
    );
    let mismatched = register(url, &admin, &dag("other", vec![python("a", &[])])).await;
    assert_eq!(mismatched.status, 201);
    let wrong_path = send(
        url,
        "POST",
        "/api/v2/dags/safe/versions",
        bearer(&admin),
        Some(dag("other", vec![]).to_string().into_bytes()),
    )
    .await;
    assert_eq!(wrong_path.status, 400, "{wrong_path:?}");

    let (runs, total) = s.store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!((runs.len(), total), (0, 0), "nothing was triggered");
    let dags = send(url, "GET", "/api/v2/dags", bearer(&admin), None).await;
    assert_eq!(dags.body["total_entries"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_and_connections_keep_secrets_secret() {
    let s = server().await;
    let url = s.url.as_str();
    let op = login(url, "op").await;
    let mut c = Client {
        url,
        token: op,
        samples: Vec::new(),
    };

    let r = c
        .call(
            "POST",
            "/api/v2/variables",
            "/api/v2/variables",
            Some(json!({"key": "region", "value": "eu", "description": "where"})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = c
        .call(
            "POST",
            "/api/v2/variables",
            "/api/v2/variables",
            Some(json!({"key": "region", "value": "us"})),
        )
        .await;
    assert_eq!(r.status, 409);
    c.call(
        "POST",
        "/api/v2/variables",
        "/api/v2/variables",
        Some(json!({"key": "api_token", "value": "s3cr3t"})),
    )
    .await;
    let r = c
        .call(
            "PATCH",
            "/api/v2/variables/{variable_key}",
            "/api/v2/variables/region",
            Some(json!({"key": "region", "value": {"zone": 2}})),
        )
        .await;
    assert_eq!(r.body["value"], "{\"zone\":2}", "{r:?}");
    let r = c
        .call("GET", "/api/v2/variables", "/api/v2/variables", None)
        .await;
    assert_eq!(r.body["total_entries"], 2);
    let masked = c
        .call(
            "GET",
            "/api/v2/variables/{variable_key}",
            "/api/v2/variables/api_token",
            None,
        )
        .await;
    assert_eq!(masked.body["value"], "***");
    assert_eq!(
        c.call(
            "DELETE",
            "/api/v2/variables/{variable_key}",
            "/api/v2/variables/region",
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.call(
            "GET",
            "/api/v2/variables/{variable_key}",
            "/api/v2/variables/region",
            None
        )
        .await
        .status,
        404
    );

    let conn = json!({"connection_id": "warehouse", "conn_type": "postgres", "host": "db", "port": 5432,
                      "login": "etl", "password": "hunter2", "extra": "{\"sslmode\": \"require\"}"});
    let r = c
        .call(
            "POST",
            "/api/v2/connections",
            "/api/v2/connections",
            Some(conn),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        r.body["password"],
        Value::Null,
        "the password is write-only"
    );
    let r = c
        .call(
            "GET",
            "/api/v2/connections/{connection_id}",
            "/api/v2/connections/warehouse",
            None,
        )
        .await;
    assert_eq!(
        (r.body["password"].clone(), r.body["extra"].clone()),
        (Value::Null, json!("{\"sslmode\": \"require\"}"))
    );
    assert!(!r.body.to_string().contains("hunter2"));
    let stored = s.store.get_connection("warehouse").await.unwrap().unwrap();
    let sealed = stored.password_ciphertext.unwrap();
    assert!(!sealed.contains("hunter2"), "stored as ciphertext");
    assert_eq!(
        Cipher::new(&SECRET_KEY).decrypt(&sealed).unwrap(),
        "hunter2"
    );
    assert!(!stored.extra_ciphertext.unwrap().contains("sslmode"));

    // A PATCH without a password keeps the stored one.
    let r = c
        .call(
            "PATCH",
            "/api/v2/connections/{connection_id}",
            "/api/v2/connections/warehouse",
            Some(json!({"connection_id": "warehouse", "conn_type": "postgres", "host": "db2"})),
        )
        .await;
    assert_eq!(r.body["host"], "db2", "{r:?}");
    let kept = s.store.get_connection("warehouse").await.unwrap().unwrap();
    assert_eq!(
        Cipher::new(&SECRET_KEY)
            .decrypt(&kept.password_ciphertext.unwrap())
            .unwrap(),
        "hunter2"
    );
    let r = c
        .call("GET", "/api/v2/connections", "/api/v2/connections", None)
        .await;
    assert_eq!(r.body["total_entries"], 1);
    assert_eq!(
        c.call(
            "DELETE",
            "/api/v2/connections/{connection_id}",
            "/api/v2/connections/warehouse",
            None
        )
        .await
        .status,
        204
    );

    let log = c
        .call("GET", "/api/v2/eventLogs", "/api/v2/eventLogs", None)
        .await;
    let events: Vec<&str> = log.body["event_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"post_connection") && events.contains(&"delete_variable"),
        "{events:?}"
    );
    assert!(log.body["event_logs"][0]["owner"] == "op");
    validate_against_airflow(&c.samples);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_triggered_watched_marked_cleared_and_deleted() {
    let s = server().await;
    let url = s.url.as_str();
    s.exec
        .script("extract", Behavior::Succeed(Some(json!({"rows": 3}))));
    s.exec
        .script_try("load", 1, Behavior::FailPermanently("disk full".into()));
    let admin = login(url, "admin").await;
    let spec = dag(
        "etl",
        vec![
            python("extract", &[]),
            python("load", &["extract"]),
            python("report", &["load"]),
        ],
    );
    assert_eq!(register(url, &admin, &spec).await.status, 201);
    let again = register(url, &admin, &spec).await;
    assert_eq!(
        (again.status, again.body["created"].clone()),
        (200, json!(false)),
        "idempotent by content hash"
    );

    let user = login(url, "user").await;
    let mut c = Client {
        url,
        token: user,
        samples: Vec::new(),
    };
    c.call("GET", "/api/v2/version", "/api/v2/version", None)
        .await;
    c.call(
        "GET",
        "/api/v2/monitor/health",
        "/api/v2/monitor/health",
        None,
    )
    .await;
    let r = c
        .call(
            "GET",
            "/api/v2/dags",
            "/api/v2/dags?tags=etl&paused=false&dag_id_pattern=et&order_by=-dag_id",
            None,
        )
        .await;
    assert_eq!(r.body["total_entries"], 1, "{r:?}");
    let r = c
        .call("GET", "/api/v2/dags", "/api/v2/dags?tags=nope", None)
        .await;
    assert_eq!(r.body["total_entries"], 0);
    c.call("GET", "/api/v2/dags/{dag_id}", "/api/v2/dags/etl", None)
        .await;
    c.call(
        "GET",
        "/api/v2/dags/{dag_id}/details",
        "/api/v2/dags/etl/details",
        None,
    )
    .await;
    c.call(
        "GET",
        "/api/v2/dags/{dag_id}/tasks",
        "/api/v2/dags/etl/tasks",
        None,
    )
    .await;
    c.call(
        "GET",
        "/api/v2/dags/{dag_id}/tasks/{task_id}",
        "/api/v2/dags/etl/tasks/load",
        None,
    )
    .await;
    c.call(
        "GET",
        "/api/v2/dags/{dag_id}/dagVersions",
        "/api/v2/dags/etl/dagVersions",
        None,
    )
    .await;
    c.call(
        "GET",
        "/api/v2/dags/{dag_id}/dagVersions/{version_number}",
        "/api/v2/dags/etl/dagVersions/1",
        None,
    )
    .await;
    let r = c
        .call(
            "PATCH",
            "/api/v2/dags/{dag_id}",
            "/api/v2/dags/etl",
            Some(json!({"is_paused": true})),
        )
        .await;
    assert_eq!(r.body["is_paused"], true);
    let r = c
        .call(
            "PATCH",
            "/api/v2/dags/{dag_id}",
            "/api/v2/dags/etl",
            Some(json!({"is_paused": false})),
        )
        .await;
    assert_eq!(r.body["is_paused"], false);

    let r = c.call("POST", "/api/v2/dags/{dag_id}/dagRuns", "/api/v2/dags/etl/dagRuns",
        Some(json!({"dag_run_id": "first", "logical_date": null, "conf": {"day": 1}, "note": "by hand"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["conf"].clone(), r.body["note"].clone()),
        (json!({"day": 1}), json!("by hand"))
    );
    let dup = c
        .call(
            "POST",
            "/api/v2/dags/{dag_id}/dagRuns",
            "/api/v2/dags/etl/dagRuns",
            Some(json!({"dag_run_id": "first", "logical_date": null})),
        )
        .await;
    assert_problem(&dup, 409, "already exists");
    let run = wait_run(url, &c.token, "etl", "first").await;
    assert_eq!(run["state"], "failed");

    // Logs written by the attempt.
    let attempt = AttemptId {
        task: TaskKey::new(&RunKey::new("etl", "first"), "load", -1),
        try_number: 1,
    };
    s.engine
        .logs()
        .append(
            &attempt,
            &[
                LogLine {
                    at: Utc::now(),
                    stream: LogStream::Stdout,
                    message: "loading".into(),
                },
                LogLine {
                    at: Utc::now(),
                    stream: LogStream::Stderr,
                    message: "disk full".into(),
                },
            ],
        )
        .await
        .unwrap();
    s.engine.logs().close(&attempt).await.unwrap();

    let run_path = "/api/v2/dags/etl/dagRuns/first";
    c.call(
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
        run_path,
        None,
    )
    .await;
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns",
            "/api/v2/dags/~/dagRuns?state=failed&order_by=-run_after",
            None,
        )
        .await;
    assert_eq!(r.body["total_entries"], 1, "{r:?}");
    let r = c
        .call(
            "POST",
            "/api/v2/dags/{dag_id}/dagRuns/list",
            "/api/v2/dags/~/dagRuns/list",
            Some(json!({"dag_ids": ["etl"], "states": ["failed"]})),
        )
        .await;
    assert_eq!(r.body["total_entries"], 1, "{r:?}");
    for (query, expected) in [
        ("start_date_gte=2000-01-01T00:00:00Z&run_id_pattern=fir", 1),
        ("start_date_lt=2000-01-01T00:00:00Z", 0),
        ("logical_date_gte=2000-01-01T00:00:00Z", 0),
    ] {
        let r = c
            .call(
                "GET",
                "/api/v2/dags/{dag_id}/dagRuns",
                &format!("/api/v2/dags/~/dagRuns?{query}"),
                None,
            )
            .await;
        assert_eq!(r.body["total_entries"], expected, "{query}: {r:?}");
    }
    let r = c
        .call(
            "POST",
            "/api/v2/dags/{dag_id}/dagRuns/list",
            "/api/v2/dags/~/dagRuns/list",
            Some(json!({"end_date_lt": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.body["total_entries"], 0, "{r:?}");
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
            "/api/v2/dags/etl/dagRuns/first/taskInstances?try_number=1&end_date_gte=2000-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(
        r.body["total_entries"], 2,
        "report never ran (try 0): {r:?}"
    );
    assert_problem(
        &c.call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns",
            "/api/v2/dags/~/dagRuns?start_date_gte=yesterday",
            None,
        )
        .await,
        400,
        "RFC 3339",
    );
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
            &format!("{run_path}/taskInstances"),
            None,
        )
        .await;
    let states: Vec<Value> = r.body["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].clone())
        .collect();
    assert_eq!(
        states,
        [json!("success"), json!("failed"), json!("upstream_failed")],
        "{r:?}"
    );
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
            "/api/v2/dags/~/dagRuns/~/taskInstances?state=failed",
            None,
        )
        .await;
    assert_eq!(r.body["total_entries"], 1);
    let r = c
        .call(
            "POST",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list",
            "/api/v2/dags/~/dagRuns/~/taskInstances/list",
            Some(json!({"dag_ids": ["etl"], "task_ids": ["extract", "load"]})),
        )
        .await;
    assert_eq!(r.body["total_entries"], 2, "{r:?}");
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
            &format!("{run_path}/taskInstances/load"),
            None,
        )
        .await;
    assert_eq!(
        (r.body["try_number"].clone(), r.body["operator"].clone()),
        (json!(1), json!("PythonOperator"))
    );
    c.call(
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries",
        &format!("{run_path}/taskInstances/load/tries"),
        None,
    )
    .await;
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
            &format!("{run_path}/taskInstances/load/logs/1"),
            None,
        )
        .await;
    let events: Vec<&str> = r.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.ends_with(&["loading", "disk full"]), "{r:?}");
    assert_eq!(
        r.body["continuation_token"],
        Value::Null,
        "the log is closed"
    );
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
            &format!("{run_path}/taskInstances/extract/xcomEntries"),
            None,
        )
        .await;
    assert_eq!(r.body["total_entries"], 1, "{r:?}");
    let r = c.call("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", &format!("{run_path}/taskInstances/extract/xcomEntries/return_value"), None).await;
    assert_eq!(r.body["value"], json!({"rows": 3}));

    // Clear the failed task and its downstream: the run goes again and succeeds.
    let preview = c.call("POST", "/api/v2/dags/{dag_id}/clearTaskInstances", "/api/v2/dags/etl/clearTaskInstances",
        Some(json!({"dag_run_id": "first", "task_ids": ["load"], "include_downstream": true, "only_failed": false}))).await;
    assert_eq!(preview.body["total_entries"], 2, "{preview:?}");
    let r = c.call("POST", "/api/v2/dags/{dag_id}/clearTaskInstances", "/api/v2/dags/etl/clearTaskInstances",
        Some(json!({"dry_run": false, "dag_run_id": "first", "task_ids": ["load"], "include_downstream": true, "only_failed": false}))).await;
    assert_eq!(r.body["total_entries"], 2, "{r:?}");
    let run = wait_run(url, &c.token, "etl", "first").await;
    assert_eq!(run["state"], "success");
    let r = c.call("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries/{task_try_number}", &format!("{run_path}/taskInstances/load/tries/2"), None).await;
    assert_eq!(r.body["state"], "success", "{r:?}");

    // Mark a task instance, then the run.
    let r = c
        .call(
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
            &format!("{run_path}/taskInstances/report"),
            Some(json!({"new_state": "failed", "note": "bad numbers"})),
        )
        .await;
    assert_eq!(r.body["task_instances"][0]["state"], "failed", "{r:?}");
    assert_eq!(r.body["task_instances"][0]["note"], "bad numbers");
    let r = c
        .call(
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
            run_path,
            Some(json!({"state": "failed", "note": "rerun tomorrow"})),
        )
        .await;
    assert_eq!(
        (r.body["state"].clone(), r.body["note"].clone()),
        (json!("failed"), json!("rerun tomorrow")),
        "{r:?}"
    );
    let r = c
        .call(
            "POST",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear",
            &format!("{run_path}/clear"),
            Some(json!({"dry_run": true, "only_failed": true})),
        )
        .await;
    assert_eq!(r.body["total_entries"], 1, "{r:?}");

    c.call("GET", "/api/v2/pools", "/api/v2/pools", None).await;
    c.call("GET", "/api/v2/importErrors", "/api/v2/importErrors", None)
        .await;
    let log = c
        .call(
            "GET",
            "/api/v2/eventLogs",
            "/api/v2/eventLogs?dag_id=etl",
            None,
        )
        .await;
    let events: Vec<&str> = log.body["event_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for e in [
        "register_dag_version",
        "trigger_dag_run",
        "post_clear_task_instances",
        "patch_task_instance",
        "patch_dag_run",
        "patch_dag",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }

    assert_eq!(
        c.call(
            "DELETE",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
            run_path,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
            run_path,
            None
        )
        .await
        .status,
        404
    );
    c.call(
        "POST",
        "/api/v2/dags/{dag_id}/dagRuns",
        "/api/v2/dags/etl/dagRuns",
        Some(json!({"logical_date": "2024-01-01T00:00:00Z"})),
    )
    .await;
    let r = c
        .call("DELETE", "/api/v2/dags/{dag_id}", "/api/v2/dags/etl", None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c
        .call(
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns",
            "/api/v2/dags/etl/dagRuns",
            None,
        )
        .await;
    assert_eq!(r.body["total_entries"], 0, "history cleared");
    assert_eq!(
        c.call("GET", "/api/v2/dags/{dag_id}", "/api/v2/dags/etl", None)
            .await
            .status,
        200,
        "the DAG stays"
    );

    let mut op = Client {
        url,
        token: login(url, "op").await,
        samples: Vec::new(),
    };
    op.call("GET", "/api/v2/config", "/api/v2/config", None)
        .await;
    c.samples.extend(op.samples);
    validate_against_airflow(&c.samples);
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The CI venv's Python when it has `modules`; `None` (after a loud message) when it
/// does not and tools are not required (`LEOFLOW_REQUIRE_AIRFLOW_TOOLS` unset, as outside
/// `.ci/run`).
fn python_with(modules: &str, what: &str) -> Option<PathBuf> {
    let py = std::env::var_os("LEOFLOW_CI_PYTHON")
        .map_or_else(|| root().join("target/ci-venv/bin/python"), PathBuf::from);
    let ok = Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let msg = format!(
        "{what}: {} cannot import {modules}; run `bash .ci/run` once to install them",
        py.display()
    );
    assert!(
        std::env::var_os("LEOFLOW_REQUIRE_AIRFLOW_TOOLS").is_none(),
        "{msg}"
    );
    eprintln!("\n!!!!!!!! SKIPPED {msg} !!!!!!!!\n");
    None
}

/// Airflow 3.2.1's OpenAPI document, unpacked by `.ci/run` from the PyPI wheel.
fn airflow_openapi() -> Option<PathBuf> {
    let path = root().join("target/airflow-openapi/v2-rest-api-generated.yaml");
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "Airflow's OpenAPI document is not at {}; `bash .ci/run` downloads it",
        path.display()
    );
    assert!(
        std::env::var_os("LEOFLOW_REQUIRE_AIRFLOW_TOOLS").is_none(),
        "{msg}"
    );
    eprintln!("\n!!!!!!!! SKIPPED schema validation: {msg} !!!!!!!!\n");
    None
}

/// Every recorded 2xx response validates against the schema Airflow documents for its
/// route, method and status.
fn validate_against_airflow(samples: &[Value]) {
    let (Some(spec), Some(py)) = (
        airflow_openapi(),
        python_with("jsonschema, yaml", "schema validation"),
    ) else {
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
        "responses do not match Airflow 3.2.1's OpenAPI document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airflows_python_client_and_benchmark_driver_work_unchanged() {
    let Some(py) = python_with(
        "airflow_client.client, pytest",
        "the apache-airflow-client test",
    ) else {
        return;
    };
    let s = server().await;
    s.exec
        .script("extract", Behavior::Succeed(Some(json!({"rows": 3}))));
    let admin = login(&s.url, "admin").await;
    let spec = dag(
        "client_etl",
        vec![python("extract", &[]), python("load", &["extract"])],
    );
    assert_eq!(register(&s.url, &admin, &spec).await.status, 201);
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking({
        let py = py.clone();
        move || {
            Command::new(py)
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
                .arg(root().join("tests/python/test_airflow_client.py"))
                .env("LEOFLOW_URL", &url)
                .env("LEOFLOW_USER", "admin")
                .env("LEOFLOW_PASSWORD", PASSWORD)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the Airflow client test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let measure = Path::new("/work/shared/bench/airflow/measure.py");
    let measure =
        std::env::var_os("LEOFLOW_MEASURE_PY").map_or_else(|| measure.to_path_buf(), PathBuf::from);
    if !measure.exists() {
        eprintln!(
            "\n!!!!!!!! SKIPPED measure.py: {} is absent !!!!!!!!\n",
            measure.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking({
        let results = results.clone();
        move || {
            Command::new(py)
                .arg(&measure)
                .args([
                    "run",
                    "--base",
                    &url,
                    "--user",
                    "admin",
                    "--password",
                    PASSWORD,
                    "--dags",
                    "client_etl",
                    "--runs",
                    "2",
                    "--poll",
                    "0.05",
                    "--pause-between",
                    "0",
                    "--ready-timeout",
                    "30",
                    "--run-timeout",
                    "60",
                ])
                .arg("--out")
                .arg(&results)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "measure.py failed against Leoflow:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r["state"] == "success" && r["n_tasks"] == 2),
        "{results}"
    );
}
