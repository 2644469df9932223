//! The agent's side of the agent API (`/agent/v1/*`, ADR 0003): blocking JSON calls with
//! the attempt's bearer token, retried with backoff while the control plane cannot be
//! reached (never on a 4xx: the answer will not change).

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ureq::unversioned::transport::DefaultConnector;

use crate::resolve::RememberingResolver;

/// How long the calls that matter keep retrying an unreachable control plane.
pub const START_BUDGET: Duration = Duration::from_secs(60);
pub const FINISH_BUDGET: Duration = Duration::from_secs(120);
pub const XCOM_BUDGET: Duration = Duration::from_secs(60);
/// Log batches give up sooner: the task must not stall behind its own log.
pub const LOGS_BUDGET: Duration = Duration::from_secs(10);
pub const HEARTBEAT_BUDGET: Duration = Duration::from_secs(5);

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The control plane answered with an error (its problem `detail` when it sent one).
    Refused { status: u16, detail: String },
    /// It could not be reached within the retry budget.
    Unreachable(String),
    /// Its answer could not be read.
    BadResponse(String),
}

impl CallError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused { status, detail } => {
                write!(f, "the control plane refused the call ({status}): {detail}")
            }
            CallError::Unreachable(e) => write!(f, "the control plane is unreachable: {e}"),
            CallError::BadResponse(e) => write!(f, "unreadable answer from the control plane: {e}"),
        }
    }
}

/// One log line as the API takes it.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub at: String,
    pub stream: &'static str,
    pub message: String,
}

/// How an attempt ended, as reported to `finish`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finish {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub retryable: bool,
}

/// The body of `finish`: the report, plus what rides along with it.
#[derive(Serialize)]
struct FinishCall<'a> {
    #[serde(flatten)]
    report: &'a Finish,
    #[serde(skip_serializing_if = "<[LogLine]>::is_empty")]
    logs: &'a [LogLine],
    elapsed_seconds: f64,
}

/// The answer to `finish`.
#[derive(Debug, Clone, Deserialize)]
pub struct Finished {
    pub state: String,
}

#[derive(Deserialize)]
struct HeartbeatAnswer {
    action: String,
}

#[derive(Deserialize)]
struct ProblemBody {
    detail: Option<String>,
    title: Option<String>,
}

/// A client bound to one attempt's token.
#[derive(Clone)]
pub struct Client {
    http: ureq::Agent,
    base: String,
    auth: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        let http = ureq::Agent::with_parts(
            config,
            DefaultConnector::default(),
            RememberingResolver::default(),
        );
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth: format!("Bearer {token}"),
        }
    }

    /// `POST /agent/v1/start`: the raw context document.
    pub fn start(&self, hostname: Option<&str>) -> Result<Vec<u8>, CallError> {
        let body = serde_json::json!({ "hostname": hostname });
        self.post("start", &body, START_BUDGET)
    }

    /// `POST /agent/v1/heartbeat`: true when the control plane says to cancel.
    pub fn heartbeat(&self) -> Result<bool, CallError> {
        let bytes = self.post("heartbeat", &serde_json::json!({}), HEARTBEAT_BUDGET)?;
        let answer: HeartbeatAnswer =
            serde_json::from_slice(&bytes).map_err(|e| CallError::BadResponse(e.to_string()))?;
        Ok(answer.action == "cancel")
    }

    pub fn logs(&self, lines: &[LogLine]) -> Result<(), CallError> {
        self.post("logs", &serde_json::json!({ "lines": lines }), LOGS_BUDGET)
            .map(|_| ())
    }

    pub fn push_xcom(&self, key: &str, value: &Value) -> Result<(), CallError> {
        let body = serde_json::json!({ "key": key, "value": value });
        self.post("xcom", &body, XCOM_BUDGET).map(|_| ())
    }

    /// `POST /agent/v1/finish` with the log lines not shipped yet and the elapsed time:
    /// the server stores both with the outcome and writes the closing line.
    pub fn finish(
        &self,
        finish: &Finish,
        logs: &[LogLine],
        elapsed: Duration,
    ) -> Result<Finished, CallError> {
        let call = FinishCall {
            report: finish,
            logs,
            elapsed_seconds: elapsed.as_secs_f64(),
        };
        let bytes = self.post("finish", &call, FINISH_BUDGET)?;
        serde_json::from_slice(&bytes).map_err(|e| CallError::BadResponse(e.to_string()))
    }

    /// POSTs JSON, retrying transport failures and 502/503/504 with backoff until `budget`
    /// is spent. Returns the body of a 2xx answer.
    fn post<T: Serialize + ?Sized>(
        &self,
        endpoint: &str,
        body: &T,
        budget: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let url = format!("{}/agent/v1/{endpoint}", self.base);
        let payload =
            serde_json::to_vec(body).map_err(|e| CallError::BadResponse(e.to_string()))?;
        let began = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let outcome = self
                .http
                .post(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/json")
                .send(&payload[..]);
            let retry_reason = match outcome {
                Ok(mut res) => {
                    let status = res.status().as_u16();
                    let bytes = res
                        .body_mut()
                        .with_config()
                        .limit(64 * 1024 * 1024)
                        .read_to_vec()
                        .map_err(|e| CallError::BadResponse(e.to_string()))?;
                    if (200..300).contains(&status) {
                        return Ok(bytes);
                    }
                    if !matches!(status, 502..=504) {
                        return Err(CallError::Refused {
                            status,
                            detail: problem_detail(&bytes),
                        });
                    }
                    format!("{status}: {}", problem_detail(&bytes))
                }
                Err(e) if transient(&e) => e.to_string(),
                Err(e) => return Err(CallError::Unreachable(e.to_string())),
            };
            if began.elapsed() + delay > budget {
                return Err(CallError::Unreachable(retry_reason));
            }
            thread::sleep(delay);
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }
}

/// Failures worth another try: the server was not there or the connection broke.
fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

/// The `detail` of a problem body, else the body as text.
fn problem_detail(bytes: &[u8]) -> String {
    match serde_json::from_slice::<ProblemBody>(bytes) {
        Ok(ProblemBody {
            detail: Some(d), ..
        }) => d,
        Ok(ProblemBody { title: Some(t), .. }) => t,
        _ => String::from_utf8_lossy(bytes).chars().take(500).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_details_are_read_from_rfc_7807_bodies() {
        let body = br#"{"type":"urn:x","title":"Conflict","status":409,"detail":"gone"}"#;
        assert_eq!(problem_detail(body), "gone");
        assert_eq!(problem_detail(b"plain text"), "plain text");
    }
}
