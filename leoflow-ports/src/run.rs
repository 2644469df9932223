//! DAG runs and task instances: the records the scheduler creates and moves through their
//! states, and the keys that identify them and their attempts.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::{RunState, TaskState};

/// Why a run exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunType {
    Scheduled,
    Manual,
    Backfill,
}

impl RunType {
    pub fn as_str(self) -> &'static str {
        match self {
            RunType::Scheduled => "scheduled",
            RunType::Manual => "manual",
            RunType::Backfill => "backfill",
        }
    }
}

/// Identifies a run: `(dag_id, run_id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunKey {
    pub dag_id: String,
    pub run_id: String,
}

impl RunKey {
    pub fn new(dag_id: impl Into<String>, run_id: impl Into<String>) -> RunKey {
        RunKey {
            dag_id: dag_id.into(),
            run_id: run_id.into(),
        }
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dag_id, self.run_id)
    }
}

/// One run of a DAG, pinned to the DAG version current when it was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagRun {
    pub dag_id: String,
    pub run_id: String,
    pub run_type: RunType,
    /// `None` for manual runs triggered without a logical date (Airflow 3).
    pub logical_date: Option<DateTime<Utc>>,
    pub data_interval_start: Option<DateTime<Utc>>,
    pub data_interval_end: Option<DateTime<Utc>>,
    /// The earliest time the run may start (the end of its data interval when scheduled).
    pub run_after: DateTime<Utc>,
    pub conf: Value,
    pub note: Option<String>,
    pub state: RunState,
    /// The 1-based version number of the DAG this run executes.
    pub version_number: u32,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub triggered_by: Option<String>,
}

impl DagRun {
    pub fn key(&self) -> RunKey {
        RunKey::new(self.dag_id.clone(), self.run_id.clone())
    }
}

/// Identifies a task instance: one task of one run, at one map index (−1 when unmapped).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskKey {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i32,
}

impl TaskKey {
    pub fn new(run: &RunKey, task_id: impl Into<String>, map_index: i32) -> TaskKey {
        TaskKey {
            dag_id: run.dag_id.clone(),
            run_id: run.run_id.clone(),
            task_id: task_id.into(),
            map_index,
        }
    }

    pub fn run(&self) -> RunKey {
        RunKey::new(self.dag_id.clone(), self.run_id.clone())
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.dag_id, self.run_id, self.task_id)?;
        if self.map_index >= 0 {
            write!(f, "[{}]", self.map_index)?;
        }
        Ok(())
    }
}

/// Identifies one attempt: a task instance at one try number. Launching the same attempt
/// twice must start one process or pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AttemptId {
    pub task: TaskKey,
    pub try_number: u32,
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.task, self.try_number)
    }
}

/// One task instance. There is one row per (run, task, map index); its attempts advance
/// `try_number` in place, and finished attempts are archived as tries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInstance {
    pub key: TaskKey,
    pub state: TaskState,
    /// Attempts started so far (0 before the first dispatch).
    pub try_number: u32,
    /// The highest try number that may still run (`retries` + 1 for a fresh instance).
    pub max_tries: u32,
    /// The operator name Airflow shows.
    pub operator: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// When an `up_for_retry` instance may be scheduled again.
    pub next_retry_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Executor-specific handle of the current attempt (pid, pod name…).
    pub executor_ref: Option<String>,
    pub hostname: Option<String>,
    pub exit_code: Option<i32>,
    pub error_message: Option<String>,
    pub note: Option<String>,
}

impl TaskInstance {
    /// A fresh instance in state `none`.
    pub fn new(key: TaskKey, operator: impl Into<String>, retries: u32) -> TaskInstance {
        TaskInstance {
            key,
            state: TaskState::None,
            try_number: 0,
            max_tries: retries + 1,
            operator: operator.into(),
            scheduled_at: None,
            queued_at: None,
            started_at: None,
            ended_at: None,
            next_retry_at: None,
            last_heartbeat_at: None,
            executor_ref: None,
            hostname: None,
            exit_code: None,
            error_message: None,
            note: None,
        }
    }

    /// The current attempt's id.
    pub fn attempt(&self) -> AttemptId {
        AttemptId {
            task: self.key.clone(),
            try_number: self.try_number,
        }
    }

    /// Seconds between start and end, when both are known.
    pub fn duration_seconds(&self) -> Option<f64> {
        match (self.started_at, self.ended_at) {
            (Some(s), Some(e)) => Some((e - s).num_microseconds().unwrap_or(0) as f64 / 1e6),
            _ => None,
        }
    }
}
