//! From an `http_request` (and its connection) to a URL, and from a response to the
//! attempt's outcome. Pure functions; the executor does the I/O.

use leoflow_ports::datastore::Connection;
use leoflow_ports::executor::Outcome;
use serde_json::Value;

/// How much of an error response's body the failure message quotes.
const QUOTED_BODY_CHARS: usize = 300;

/// The URL to call: `url` itself when absolute, else `url` relative to the connection's
/// host (Airflow's HttpHook rule: `schema` is the scheme, `http` by default; a host that
/// already has a scheme keeps it).
pub fn resolve_url(
    task_id: &str,
    url: &str,
    conn_id: Option<&str>,
    conn: Option<&Connection>,
) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
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

/// The outcome of a call that answered `status` with `body`.
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

#[cfg(test)]
mod tests {
    use leoflow_ports::datastore::Connection;
    use leoflow_ports::executor::Outcome;
    use serde_json::json;

    use super::{judge, resolve_url};

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
    }
}
