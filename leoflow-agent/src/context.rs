//! The parts of the start response (`context.json`) the agent itself reads. The whole
//! document is written to the work dir for the task runtime; unknown fields are ignored
//! here so a newer control plane can add to it.

// Field names mirror the wire format (`task.task_id`, `run.run_id`).
#![allow(clippy::struct_field_names)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::http::HttpCall;

#[derive(Debug, Clone, Deserialize)]
pub struct Context {
    pub attempt: Attempt,
    pub task: Task,
    pub dag: Dag,
    pub run: Run,
    #[serde(default)]
    pub mapped_kwargs: BTreeMap<String, Value>,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    pub heartbeat_interval_seconds: f64,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// An http_api task's call, resolved by the control plane.
    #[serde(default)]
    pub http_call: Option<HttpCall>,
    /// Why an http_api task's call could not be resolved.
    #[serde(default)]
    pub http_call_error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attempt {
    pub map_index: i32,
    pub try_number: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub task_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub entrypoint: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dag {
    pub dag_id: String,
    #[serde(default)]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub run_id: String,
    #[serde(default)]
    pub logical_date: Option<DateTime<Utc>>,
    pub run_after: DateTime<Utc>,
}

impl Run {
    /// The date `ds`/`ts` are rendered from: the logical date, or for a run without one
    /// (an Airflow 3 manual run) the moment it was due.
    pub fn date(&self) -> DateTime<Utc> {
        self.logical_date.unwrap_or(self.run_after)
    }
}

/// `ts`: Airflow's `logical_date.isoformat()`.
pub fn iso(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}
