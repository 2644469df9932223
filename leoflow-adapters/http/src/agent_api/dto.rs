//! The agent API's wire types (JSON bodies of `/agent/v1/*`). They stay in this adapter and
//! are converted to and from domain records by the handlers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use leoflow_ports::http_call::{HttpCall, MAX_RESPONSE_BYTES};
use leoflow_ports::log::LogStream;
use leoflow_ports::run::{AttemptId, RunType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /agent/v1/start` request (optional body).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    #[serde(default)]
    pub hostname: Option<String>,
}

/// Which attempt this is.
#[derive(Debug, Serialize)]
pub struct AttemptDto {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i32,
    pub try_number: u32,
}

impl From<&AttemptId> for AttemptDto {
    fn from(a: &AttemptId) -> AttemptDto {
        AttemptDto {
            dag_id: a.task.dag_id.clone(),
            run_id: a.task.run_id.clone(),
            task_id: a.task.task_id.clone(),
            map_index: a.task.map_index,
            try_number: a.try_number,
        }
    }
}

/// The DAG an attempt belongs to.
#[derive(Debug, Serialize)]
pub struct DagDto {
    pub dag_id: String,
    pub fileloc: Option<String>,
    pub dag_version: String,
    pub version_number: u32,
    pub owner: Option<String>,
    /// Declared parameters with their defaults.
    pub params: BTreeMap<String, Value>,
}

/// The run an attempt belongs to.
#[derive(Debug, Serialize)]
pub struct RunDto {
    pub run_id: String,
    pub run_type: RunType,
    pub logical_date: Option<DateTime<Utc>>,
    pub data_interval_start: Option<DateTime<Utc>>,
    pub data_interval_end: Option<DateTime<Utc>>,
    pub run_after: DateTime<Utc>,
    pub conf: Value,
}

/// `POST /agent/v1/start` response: everything the agent and the task runtime need, written
/// as is to the attempt's `context.json`.
#[derive(Debug, Serialize)]
pub struct StartResponse {
    pub attempt: AttemptDto,
    /// The task's `dag.json` entry.
    pub task: Value,
    pub dag: DagDto,
    pub run: RunDto,
    /// `xcom_input` resolved: parameter → value (`null` when the upstream pushed nothing).
    pub inputs: BTreeMap<String, Value>,
    pub call_args: BTreeMap<String, Value>,
    /// This map instance's expanded arguments (empty for unmapped tasks).
    pub mapped_kwargs: BTreeMap<String, Value>,
    /// DAG parameter defaults overlaid with the run's conf.
    pub params: BTreeMap<String, Value>,
    pub heartbeat_interval_seconds: f64,
    pub timeout_seconds: Option<f64>,
    /// For an http_api task: the call to make, resolved by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_call: Option<HttpCallDto>,
    /// For an http_api task whose call cannot be resolved (a relative URL without a
    /// usable connection): why, to be reported as a failure not worth retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_call_error: Option<String>,
}

/// The call an http_api task makes in pod mode, resolved exactly as the inline executor
/// resolves it (`leoflow_ports::http_call`): the agent sends it as is.
#[derive(Debug, Serialize)]
pub struct HttpCallDto {
    pub method: &'static str,
    /// Absolute, the connection already applied.
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// The exact body to send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The task's timeout, capped by the execution timeout.
    pub timeout_seconds: f64,
    pub success_status_codes: Vec<u16>,
    /// A larger response body fails the attempt.
    pub max_response_bytes: usize,
}

impl From<HttpCall> for HttpCallDto {
    fn from(c: HttpCall) -> HttpCallDto {
        HttpCallDto {
            method: c.method.as_str(),
            url: c.url,
            headers: c.headers,
            body: c.body,
            timeout_seconds: c.timeout.as_secs_f64(),
            success_status_codes: c.success_status_codes,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}

/// `POST /agent/v1/heartbeat` response.
#[derive(Debug, Serialize)]
pub struct HeartbeatResponse {
    pub action: HeartbeatAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatAction {
    Continue,
    Cancel,
}

/// `POST /agent/v1/logs` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    pub lines: Vec<LogLineDto>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLineDto {
    /// When the line was read; the server's time when absent.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    pub stream: LogStream,
    pub message: String,
}

/// `POST /agent/v1/xcom` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XComPush {
    pub key: String,
    pub value: Value,
}

/// `GET /agent/v1/xcom` query.
#[derive(Debug, Deserialize)]
pub struct XComQuery {
    pub task_id: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub map_index: Option<i32>,
}

/// `GET /agent/v1/xcom` response.
#[derive(Debug, Serialize)]
pub struct XComValue {
    /// `null` when nothing was pushed under that key.
    pub value: Value,
}

/// How an attempt ended, as the agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishStatus {
    Success,
    Failed,
    Skipped,
}

/// `POST /agent/v1/finish` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    pub status: FinishStatus,
    #[serde(default)]
    pub return_value: Option<Value>,
    /// The failure's cause or the skip's message.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// False for `AirflowFailException`: no retry. Defaults to true.
    #[serde(default)]
    pub retryable: Option<bool>,
    /// Log lines the agent had not shipped yet; appended with the outcome, so a short
    /// attempt needs no separate `logs` call.
    #[serde(default)]
    pub logs: Vec<LogLineDto>,
    /// How long the attempt took as the agent saw it. When given, the server writes the
    /// closing line (`✓ task succeeded in 0.02s`, `✗ task failed (exit 2) in …: cause`)
    /// after recording the outcome.
    #[serde(default)]
    pub elapsed_seconds: Option<f64>,
}

/// `POST /agent/v1/finish` response.
#[derive(Debug, Serialize)]
pub struct FinishResponse {
    /// The task instance's state after the report (`success`, `failed`, `up_for_retry`…).
    pub state: String,
    /// Why the attempt failed, when it did (including a success the engine refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
