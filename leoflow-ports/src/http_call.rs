//! The call an `http_api` task makes, resolved from its `http_request` (and connection) the
//! same way wherever it runs: inline in the control plane (`leoflow-inline-http`) or through
//! the agent in pod mode (the agent API resolves it and hands it over in the start
//! context). Also how a response becomes the attempt's outcome, and the call's one summary
//! log line. Pure functions; the runners do the I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::dag::{HttpMethod, HttpRequest, TaskSpec};
use crate::datastore::Connection;
use crate::executor::Outcome;

/// A task's call lasts at most this long when it does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Airflow's HttpOperator succeeds on these unless told otherwise.
pub const DEFAULT_SUCCESS_CODES: &[u16] = &[200, 201, 202, 204];
/// A larger response body fails the attempt: the body becomes the return value (an XCom),
/// so it is bounded like one.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How much of an error response's body the failure message quotes.
const QUOTED_BODY_CHARS: usize = 300;

/// One HTTP call, ready to be made: everything is resolved, nothing is looked up later.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub method: HttpMethod,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// The task's headers, plus `Content-Type: application/json` for a JSON body that
    /// does not set one.
    pub headers: BTreeMap<String, String>,
    /// The exact body to send: a string body as is, any other JSON value serialized.
    pub body: Option<String>,
    /// The task's `timeout_seconds` (default 60 s), capped by its execution timeout.
    pub timeout: Duration,
    pub success_status_codes: Vec<u16>,
}

impl HttpCall {
    /// `GET https://…`: how logs and failure messages name the call.
    pub fn what(&self) -> String {
        format!("{} {}", self.method.as_str(), self.url)
    }
}

impl HttpRequest {
    /// The connection this request needs looked up: its `http_conn_id` when the URL is
    /// relative (an absolute URL ignores the connection).
    pub fn needed_connection(&self) -> Option<&str> {
        if is_absolute(&self.url) {
            None
        } else {
            self.http_conn_id.as_deref()
        }
    }
}

/// The call `task` makes, with `conn` its looked-up connection (see
/// [`HttpRequest::needed_connection`]) and `execution_timeout` the attempt's timeout. An
/// `Err` is the user's mistake (no request, a relative URL without a usable connection),
/// worth no retry.
pub fn resolve_call(
    task: &TaskSpec,
    conn: Option<&Connection>,
    execution_timeout: Option<Duration>,
) -> Result<HttpCall, String> {
    let Some(req) = &task.http_request else {
        return Err(format!("task {:?} has no http_request", task.task_id));
    };
    let url = resolve_url(&task.task_id, &req.url, req.http_conn_id.as_deref(), conn)?;
    let mut timeout = req
        .timeout_seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64);
    if let Some(t) = execution_timeout {
        timeout = timeout.min(t);
    }
    let mut headers = req.headers.clone();
    let body = match &req.body {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            if !headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                headers.insert("Content-Type".into(), "application/json".into());
            }
            Some(v.to_string())
        }
    };
    Ok(HttpCall {
        method: req.method,
        url,
        headers,
        body,
        timeout,
        success_status_codes: req
            .success_status_codes
            .clone()
            .unwrap_or_else(|| DEFAULT_SUCCESS_CODES.to_vec()),
    })
}

fn is_absolute(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// The URL to call: `url` itself when absolute, else `url` relative to the connection's
/// host (Airflow's HttpHook rule: `schema` is the scheme, `http` by default; a host that
/// already has a scheme keeps it).
fn resolve_url(
    task_id: &str,
    url: &str,
    conn_id: Option<&str>,
    conn: Option<&Connection>,
) -> Result<String, String> {
    if is_absolute(url) {
        return Ok(url.to_string());
    }
    let Some(conn_id) = conn_id else {
        return Err(format!(
            "task {task_id:?}: the URL {url:?} is relative; give an absolute http(s):// URL or an http_conn_id"
        ));
    };
    let Some(conn) = conn else {
        return Err(format!(
            "task {task_id:?}: connection {conn_id:?} does not exist; create it (Admin > Connections, or POST /api/v2/connections)"
        ));
    };
    let Some(host) = conn.host.as_deref().filter(|h| !h.trim().is_empty()) else {
        return Err(format!(
            "task {task_id:?}: connection {conn_id:?} has no host; set its host to the service's address"
        ));
    };
    let mut base = if host.contains("://") {
        host.trim_end_matches('/').to_string()
    } else {
        let scheme = conn
            .schema
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("http");
        format!("{scheme}://{}", host.trim_end_matches('/'))
    };
    if let Some(port) = conn.port {
        base = format!("{base}:{port}");
    }
    if url.is_empty() {
        return Ok(base);
    }
    Ok(format!("{base}/{}", url.trim_start_matches('/')))
}

/// The outcome of a call (`what`, see [`HttpCall::what`]) that answered `status` with
/// `body`: a success code makes the body the return value (JSON when it parses, else
/// text, none when empty); anything else is a retryable failure quoting the body.
pub fn judge(status: u16, body: &[u8], success: &[u16], what: &str) -> Outcome {
    if success.contains(&status) {
        let return_value = if body.is_empty() {
            None
        } else {
            Some(
                serde_json::from_slice::<Value>(body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
            )
        };
        return Outcome::Success { return_value };
    }
    let text = String::from_utf8_lossy(body);
    let quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
    let more = if text.chars().count() > QUOTED_BODY_CHARS {
        "…"
    } else {
        ""
    };
    let expected: Vec<String> = success.iter().map(u16::to_string).collect();
    Outcome::Failed {
        message: format!(
            "{what} answered HTTP {status}, expected one of {}: {quoted}{more}",
            expected.join(", ")
        ),
        exit_code: None,
        retryable: true,
    }
}

/// The log line of a call that was answered.
pub fn summary(what: &str, status: u16, elapsed: Duration, bytes: usize) -> String {
    format!(
        "{what} → HTTP {status} in {} ms, {bytes} bytes",
        elapsed.as_millis()
    )
}

/// The log line of a call that got no usable answer (`message` says why).
pub fn summary_of_failure(message: &str, elapsed: Duration) -> String {
    format!("{message} (after {} ms)", elapsed.as_millis())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::{judge, resolve_call, resolve_url, summary, HttpCall};
    use crate::dag::{HttpMethod, TaskSpec};
    use crate::datastore::Connection;
    use crate::executor::Outcome;

    fn conn(host: &str, schema: Option<&str>, port: Option<u16>) -> Connection {
        Connection {
            conn_id: "api".into(),
            conn_type: "http".into(),
            description: None,
            host: Some(host.into()),
            login: None,
            schema: schema.map(str::to_string),
            port,
            password_ciphertext: None,
            extra_ciphertext: None,
        }
    }

    fn task(request: serde_json::Value) -> TaskSpec {
        let mut task = json!({"task_id": "call", "type": "http_api"});
        task["http_request"] = request;
        serde_json::from_value(task).unwrap()
    }

    #[test]
    fn urls_resolve_against_the_connection_like_airflows_http_hook() {
        let abs = resolve_url("t", "https://x.test/a", Some("api"), None);
        assert_eq!(abs.as_deref(), Ok("https://x.test/a"));
        let c = conn("x.test", Some("https"), Some(8443));
        assert_eq!(
            resolve_url("t", "/v1/items", Some("api"), Some(&c)).as_deref(),
            Ok("https://x.test:8443/v1/items")
        );
        let c = conn("http://127.0.0.1/", None, None);
        assert_eq!(
            resolve_url("t", "ping", Some("api"), Some(&c)).as_deref(),
            Ok("http://127.0.0.1/ping")
        );
        let err = resolve_url("t", "/v1", None, None).unwrap_err();
        assert!(
            err.contains("relative") && err.contains("http_conn_id"),
            "{err}"
        );
        let err = resolve_url("t", "/v1", Some("nope"), None).unwrap_err();
        assert!(err.contains("\"nope\" does not exist"), "{err}");
    }

    #[test]
    fn only_a_relative_url_needs_its_connection() {
        let t = task(json!({"method": "GET", "url": "/v1", "http_conn_id": "api"}));
        let req = t.http_request.as_ref().unwrap();
        assert_eq!(req.needed_connection(), Some("api"));
        let t = task(json!({"method": "GET", "url": "http://x/v1", "http_conn_id": "api"}));
        assert_eq!(t.http_request.unwrap().needed_connection(), None);
    }

    #[test]
    fn a_request_resolves_to_the_exact_call() {
        let t = task(json!({
            "method": "POST", "url": "/items", "http_conn_id": "api",
            "headers": {"X-Trace": "1"}, "body": {"n": 1}, "timeout_seconds": 90,
        }));
        let c = conn("x.test", None, Some(8080));
        let call = resolve_call(&t, Some(&c), Some(Duration::from_secs(30))).unwrap();
        assert_eq!(
            call,
            HttpCall {
                method: HttpMethod::Post,
                url: "http://x.test:8080/items".into(),
                headers: [("Content-Type", "application/json"), ("X-Trace", "1")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: Some(r#"{"n":1}"#.into()),
                timeout: Duration::from_secs(30),
                success_status_codes: vec![200, 201, 202, 204],
            }
        );
        assert_eq!(call.what(), "POST http://x.test:8080/items");

        // A string body goes as is, a body's own content type is kept, defaults apply.
        let t = task(json!({
            "method": "PUT", "url": "http://x/a", "body": "raw",
            "success_status_codes": [200],
        }));
        let call = resolve_call(&t, None, None).unwrap();
        assert_eq!(call.body.as_deref(), Some("raw"));
        assert!(call.headers.is_empty());
        assert_eq!(call.timeout, Duration::from_secs(60));
        assert_eq!(call.success_status_codes, vec![200]);
        let t = task(json!({
            "method": "POST", "url": "http://x/a", "body": [1],
            "headers": {"content-type": "application/vnd.x+json"},
        }));
        let call = resolve_call(&t, None, None).unwrap();
        assert_eq!(call.headers.len(), 1, "{:?}", call.headers);

        let t = task(json!({"method": "GET", "url": "/v1"}));
        let err = resolve_call(&t, None, None).unwrap_err();
        assert!(err.contains("relative"), "{err}");
        let mut t = task(json!({"method": "GET", "url": "/v1"}));
        t.http_request = None;
        let err = resolve_call(&t, None, None).unwrap_err();
        assert_eq!(err, "task \"call\" has no http_request");
    }

    #[test]
    fn success_codes_decide_and_the_body_becomes_the_return_value() {
        assert_eq!(
            judge(200, br#"{"ok": true}"#, &[200], "GET u"),
            Outcome::Success {
                return_value: Some(json!({"ok": true}))
            }
        );
        assert_eq!(
            judge(204, b"", &[204], "GET u"),
            Outcome::Success { return_value: None }
        );
        assert_eq!(
            judge(200, b"plain", &[200], "GET u"),
            Outcome::Success {
                return_value: Some(json!("plain"))
            }
        );
        let Outcome::Failed { message, .. } = judge(503, b"down", &[200, 201], "GET u") else {
            panic!("a 503 must fail");
        };
        assert_eq!(
            message,
            "GET u answered HTTP 503, expected one of 200, 201: down"
        );
        assert_eq!(
            summary("GET u", 200, Duration::from_millis(12), 5),
            "GET u → HTTP 200 in 12 ms, 5 bytes"
        );
    }
}
