//! `http_api` tasks in pod mode: the agent makes the one HTTP call the control plane
//! resolved for it (`http_call` in the start context: method, absolute URL, headers, body,
//! timeout, success codes and body cap; connections are read by the server, never here)
//! with a blocking ureq client, and turns the answer into the attempt's outcome exactly as
//! the inline executor does (`leoflow_ports::http_call`, mirrored here because the agent
//! depends on no other Leoflow crate): a success code makes the body the return value
//! (JSON when it parses, else text), anything else fails, retryably, quoting the body.
//! One summary line per call goes to the log.
//!
//! HTTPS uses rustls on ring with Mozilla's roots compiled in (`webpki-roots`), so it works
//! in images without a CA bundle; `SSL_CERT_FILE` (a PEM file) replaces them, e.g. with
//! the system bundle or a private CA.

use std::collections::BTreeMap;
use std::fs;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use ureq::config::AutoHeaderValue;
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
use ureq::typestate::{WithBody, WithoutBody};
use ureq::RequestBuilder;

use crate::api::Finish;
use crate::logs::Shipper;
use crate::process::Stop;
use crate::task::{failed, success};

/// How much of an error response's body the failure message quotes.
const QUOTED_BODY_CHARS: usize = 300;
/// How often stop requests and the log are looked at while the call runs.
const POLL: Duration = Duration::from_millis(100);
/// How long past its own timeout a call may hang (e.g. in name resolution) before the
/// agent gives up on it.
const TIMEOUT_SLACK: Duration = Duration::from_secs(5);

/// The call, as the control plane resolved it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HttpCall {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    pub timeout_seconds: f64,
    pub success_status_codes: Vec<u16>,
    pub max_response_bytes: u64,
}

impl HttpCall {
    /// `GET https://…`: how logs and failure messages name the call.
    fn what(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout_seconds)
            .ok()
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(60))
    }
}

/// Why a call got no usable answer.
#[derive(Debug, PartialEq)]
enum CallFailure {
    /// The body is larger than `max_response_bytes`.
    TooLarge,
    TimedOut,
    /// Could not connect (refused, unknown host).
    Connect(String),
    /// The TLS handshake failed (most often: a certificate the agent does not trust).
    Tls(String),
    /// Anything else, including a call the agent could not even build.
    Other(String),
    /// Not worth retrying (an unusable `SSL_CERT_FILE`, an unknown method).
    Setup(String),
}

/// Makes `call` for task `task_id` while honouring `stop` (cancel, SIGTERM); logs one
/// summary line and returns the outcome to report.
pub fn run(call: &HttpCall, task_id: &str, stop: &Stop, log: &mut Shipper) -> Finish {
    let what = call.what();
    let timeout = call.timeout();
    let began = Instant::now();
    let (tx, rx) = mpsc::channel();
    {
        let call = call.clone();
        // On a cancel the agent reports and exits; the thread goes with the process.
        thread::spawn(move || {
            let _ = tx.send(perform(&call));
        });
    }
    let give_up = began + timeout + TIMEOUT_SLACK;
    let answer = loop {
        match rx.recv_timeout(POLL) {
            Ok(answer) => break answer,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break Err(CallFailure::Other(
                    "the HTTP call ended without an answer".into(),
                ))
            }
        }
        log.flush_if_due();
        if let Some(reason) = stop.reason() {
            log.system(summary_of_failure(
                &format!("{what}: {reason}"),
                began.elapsed(),
            ));
            return failed(reason, None, true);
        }
        if Instant::now() >= give_up {
            break Err(CallFailure::TimedOut);
        }
    };
    let took = began.elapsed();
    match answer {
        Ok((status, body)) => {
            log.system(summary(&what, status, took, body.len()));
            judge(status, &body, &call.success_status_codes, &what)
        }
        Err(failure) => {
            let retryable = !matches!(failure, CallFailure::Setup(_));
            let message = describe(&failure, task_id, call, timeout);
            log.system(summary_of_failure(&message, took));
            failed(message, None, retryable)
        }
    }
}

/// Sends the request and reads the answer's status and body (at most the cap).
fn perform(call: &HttpCall) -> Result<(u16, Vec<u8>), CallFailure> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(call.timeout()))
        // The inline executor (reqwest) sends no User-Agent either.
        .user_agent(AutoHeaderValue::None);
    match tls_config() {
        Ok(Some(tls)) => config = config.tls_config(tls),
        Ok(None) => {}
        // Only an HTTPS call (or one redirected to HTTPS) needs the roots.
        Err(e) if call.url.starts_with("https://") => return Err(CallFailure::Setup(e)),
        Err(_) => {}
    }
    let agent: ureq::Agent = config.build().into();
    let url = call.url.as_str();
    let body = call.body.as_deref();
    let sent = match call.method.as_str() {
        "GET" => without_body(headers(agent.get(url), call), body),
        "DELETE" => without_body(headers(agent.delete(url), call), body),
        "HEAD" => without_body(headers(agent.head(url), call), body),
        "POST" => with_body(headers(agent.post(url), call), body),
        "PUT" => with_body(headers(agent.put(url), call), body),
        "PATCH" => with_body(headers(agent.patch(url), call), body),
        other => return Err(unsupported_method(other)),
    };
    let mut response = sent.map_err(failure)?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(call.max_response_bytes)
        .read_to_vec()
        .map_err(failure)?;
    Ok((status, bytes))
}

fn unsupported_method(method: &str) -> CallFailure {
    CallFailure::Setup(format!(
        "the HTTP method {method:?} is not supported; use GET, POST, PUT, PATCH, DELETE or HEAD"
    ))
}

fn headers<B>(mut req: RequestBuilder<B>, call: &HttpCall) -> RequestBuilder<B> {
    for (k, v) in &call.headers {
        req = req.header(k, v);
    }
    req
}

fn without_body(
    req: RequestBuilder<WithoutBody>,
    body: Option<&str>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match body {
        // Allowed, if unusual; the inline executor sends it too.
        Some(b) => req.force_send_body().send(b),
        None => req.call(),
    }
}

fn with_body(
    req: RequestBuilder<WithBody>,
    body: Option<&str>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match body {
        Some(b) => req.send(b),
        None => req.send_empty(),
    }
}

fn failure(e: ureq::Error) -> CallFailure {
    match e {
        ureq::Error::BodyExceedsLimit(_) => CallFailure::TooLarge,
        ureq::Error::Timeout(_) => CallFailure::TimedOut,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => CallFailure::TimedOut,
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            CallFailure::Connect(e.to_string())
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            CallFailure::Connect(io.to_string())
        }
        ureq::Error::Rustls(tls) => CallFailure::Tls(tls.to_string()),
        // rustls reports a failed handshake through the connection's reads and writes.
        ureq::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
        {
            CallFailure::Tls(io.to_string())
        }
        other => CallFailure::Other(other.to_string()),
    }
}

/// The failure message, in the inline executor's words where it has them.
fn describe(failure: &CallFailure, task_id: &str, call: &HttpCall, timeout: Duration) -> String {
    let what = call.what();
    match failure {
        CallFailure::TooLarge => format!(
            "task {task_id:?}: {what}: the response body exceeds the {}-byte limit of http_api tasks (the body becomes the task's return value); ask the endpoint for less (a smaller page, fewer fields), or fetch it in a python task that stores it and returns its location",
            call.max_response_bytes
        ),
        CallFailure::TimedOut => format!(
            "{what} timed out after {:.1}s (the task's timeout_seconds, capped by execution_timeout)",
            timeout.as_secs_f64()
        ),
        CallFailure::Connect(e) => format!("{what}: could not connect: {e}"),
        CallFailure::Tls(e) => format!(
            "{what}: could not connect: TLS: {e} (the agent trusts Mozilla's root certificates, or only those in SSL_CERT_FILE when it is set; for a private CA set SSL_CERT_FILE to a PEM file holding it)"
        ),
        CallFailure::Other(e) => format!("{what} failed: {e}"),
        CallFailure::Setup(e) => format!("{what}: {e}"),
    }
}

/// The roots HTTPS calls trust when `SSL_CERT_FILE` names a PEM file: its certificates,
/// instead of Mozilla's built-in ones (`None`: no such file is set).
fn tls_config() -> Result<Option<TlsConfig>, String> {
    let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let shown = path.to_string_lossy().into_owned();
    let pem = fs::read(&path).map_err(|e| {
        format!("SSL_CERT_FILE={shown:?} cannot be read ({e}); point it at a PEM file of CA certificates, or unset it to trust the built-in Mozilla roots")
    })?;
    roots_from_pem(&pem)
        .map(|roots| Some(TlsConfig::builder().root_certs(roots).build()))
        .map_err(|e| format!("SSL_CERT_FILE={shown:?}: {e}"))
}

/// The certificates of a PEM bundle (other items, such as keys, are skipped).
fn roots_from_pem(pem: &[u8]) -> Result<RootCerts, String> {
    let mut certs = Vec::new();
    for item in parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("not a valid PEM file: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The outcome of a call (`what`) that answered `status` with `body`: a success code makes
/// the body the return value (JSON when it parses, else text, none when empty); anything
/// else is a retryable failure quoting the body. Mirrors `leoflow_ports::http_call::judge`.
fn judge(status: u16, body: &[u8], success_codes: &[u16], what: &str) -> Finish {
    if success_codes.contains(&status) {
        let return_value = (!body.is_empty()).then(|| {
            serde_json::from_slice::<Value>(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        });
        return success(return_value);
    }
    let text = String::from_utf8_lossy(body);
    let quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
    let more = if text.chars().count() > QUOTED_BODY_CHARS {
        "…"
    } else {
        ""
    };
    let expected: Vec<String> = success_codes.iter().map(u16::to_string).collect();
    failed(
        format!(
            "{what} answered HTTP {status}, expected one of {}: {quoted}{more}",
            expected.join(", ")
        ),
        None,
        true,
    )
}

/// The log line of a call that was answered (`leoflow_ports::http_call::summary`).
fn summary(what: &str, status: u16, elapsed: Duration, bytes: usize) -> String {
    format!(
        "{what} → HTTP {status} in {} ms, {bytes} bytes",
        elapsed.as_millis()
    )
}

/// The log line of a call that got no usable answer.
fn summary_of_failure(message: &str, elapsed: Duration) -> String {
    format!("{message} (after {} ms)", elapsed.as_millis())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use serde_json::json;

    use super::*;

    fn call(method: &str, url: &str) -> HttpCall {
        HttpCall {
            method: method.into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            timeout_seconds: 5.0,
            success_status_codes: vec![200, 201, 202, 204],
            max_response_bytes: 16,
        }
    }

    /// A one-request server on 127.0.0.1: answers `response` and returns what it was sent.
    fn serve_once(response: &'static str) -> (String, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            reader.get_mut().write_all(response.as_bytes()).unwrap();
            head + &String::from_utf8(body).unwrap()
        });
        (url, handle)
    }

    #[test]
    fn answers_are_judged_like_the_inline_executor_does() {
        assert_eq!(
            judge(200, br#"{"ok": true}"#, &[200], "GET u"),
            success(Some(json!({"ok": true})))
        );
        assert_eq!(judge(204, b"", &[204], "GET u"), success(None));
        assert_eq!(
            judge(200, b"plain", &[200], "GET u"),
            success(Some(json!("plain")))
        );
        assert_eq!(
            judge(503, b"down", &[200, 201], "GET u"),
            failed(
                "GET u answered HTTP 503, expected one of 200, 201: down",
                None,
                true
            )
        );
        let long = "é".repeat(400);
        let Finish { error, .. } = judge(500, long.as_bytes(), &[200], "GET u");
        let error = error.unwrap();
        assert!(error.ends_with(&format!("{}…", "é".repeat(300))), "{error}");
        assert_eq!(
            summary("GET u", 200, Duration::from_millis(12), 5),
            "GET u → HTTP 200 in 12 ms, 5 bytes"
        );
        assert_eq!(
            summary_of_failure("GET u timed out", Duration::from_millis(7)),
            "GET u timed out (after 7 ms)"
        );
    }

    #[test]
    fn failures_name_the_call_and_what_to_do() {
        let c = call("GET", "http://127.0.0.1:1/big");
        let t = Duration::from_millis(1500);
        let msg = describe(&CallFailure::TooLarge, "fetch", &c, t);
        assert!(
            msg.starts_with("task \"fetch\": GET http://127.0.0.1:1/big: the response body exceeds the 16-byte limit of http_api tasks"),
            "{msg}"
        );
        assert!(msg.contains("python task"), "{msg}");
        assert_eq!(
            describe(&CallFailure::TimedOut, "fetch", &c, t),
            "GET http://127.0.0.1:1/big timed out after 1.5s (the task's timeout_seconds, capped by execution_timeout)"
        );
    }

    #[test]
    fn the_call_is_sent_as_resolved_and_its_answer_read() {
        let (url, server) = serve_once(
            "HTTP/1.1 201 Created\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"id\": 7}\r\n",
        );
        let mut c = call("POST", &format!("{url}/items"));
        c.headers
            .insert("Content-Type".into(), "application/json".into());
        c.headers.insert("X-Trace".into(), "abc".into());
        c.body = Some(r#"{"n":1}"#.into());
        let (status, body) = perform(&c).unwrap();
        assert_eq!(status, 201);
        assert_eq!(body, b"{\"id\": 7}\r\n");
        let sent = server.join().unwrap().to_ascii_lowercase();
        assert!(sent.starts_with("post /items http/1.1\r\n"), "{sent}");
        assert!(
            sent.contains("content-type: application/json\r\n"),
            "{sent}"
        );
        assert!(sent.contains("x-trace: abc\r\n"), "{sent}");
        assert!(!sent.contains("user-agent"), "{sent}");
        assert!(sent.ends_with("\r\n\r\n{\"n\":1}"), "{sent}");
    }

    #[test]
    fn a_body_at_the_cap_is_read_and_one_byte_more_is_refused() {
        let (url, server) = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n\r\n0123456789abcdef",
        );
        assert_eq!(
            perform(&call("GET", &url)),
            Ok((200, b"0123456789abcdef".to_vec()))
        );
        server.join().unwrap();
        let (url, server) = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Length: 17\r\nConnection: close\r\n\r\n0123456789abcdefg",
        );
        assert_eq!(perform(&call("GET", &url)), Err(CallFailure::TooLarge));
        server.join().unwrap();
    }

    #[test]
    fn unknown_methods_and_unreachable_servers_fail_clearly() {
        assert!(matches!(
            perform(&call("TRACE", "http://127.0.0.1:1/")),
            Err(CallFailure::Setup(m)) if m.contains("TRACE")
        ));
        // Nothing listens on a port that was just released.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(matches!(
            perform(&call("GET", &format!("http://127.0.0.1:{port}/"))),
            Err(CallFailure::Connect(_))
        ));
    }

    #[test]
    fn ssl_cert_file_must_hold_certificates() {
        assert!(roots_from_pem(b"")
            .unwrap_err()
            .contains("no PEM certificate"));
        let key =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        assert!(roots_from_pem(key)
            .unwrap_err()
            .contains("no PEM certificate"));
    }
}
