//! Small builders for the records the suites store: specs, runs, task instances and
//! attempts, all at whole-second times from a fixed epoch so every backend stores them
//! exactly.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::dag::{DagSpec, TaskKind, TaskSpec};
use crate::run::{AttemptId, DagRun, RunKey, RunType, TaskInstance, TaskKey};
use crate::state::{RunState, TaskState};

/// The fixed epoch every fixture time counts from (2023-11-14T22:13:20Z).
pub const EPOCH_SECONDS: i64 = 1_700_000_000;

/// `secs` seconds after the fixture epoch.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(EPOCH_SECONDS + secs, 0).expect("fixture times are in range")
}

/// A spec with one python task per id and no edges. Different `task_ids` give different
/// content hashes; `label` does not.
pub fn spec(dag_id: &str, label: &str, task_ids: &[&str]) -> DagSpec {
    DagSpec {
        schema_version: crate::dag::SCHEMA_VERSION.into(),
        dag_id: dag_id.into(),
        dag_version: label.into(),
        image: String::new(),
        description: None,
        owner: None,
        tags: Vec::new(),
        schedule: None,
        schedule_timezone: None,
        start_date: None,
        end_date: None,
        catchup: false,
        max_active_runs: None,
        max_active_tasks: None,
        dagrun_timeout_seconds: None,
        default_args: None,
        params: std::collections::BTreeMap::new(),
        doc_md: None,
        fileloc: None,
        staging: None,
        tasks: task_ids
            .iter()
            .map(|id| {
                let mut t = TaskSpec::new(*id, TaskKind::Python);
                t.entrypoint = Some(format!("dag.py:{id}"));
                t
            })
            .collect(),
        source: None,
    }
}

/// A queued scheduled run whose logical date is `run_after` minus one day.
pub fn run(dag_id: &str, run_id: &str, run_after: DateTime<Utc>) -> DagRun {
    DagRun {
        dag_id: dag_id.into(),
        run_id: run_id.into(),
        run_type: RunType::Scheduled,
        logical_date: Some(run_after - TimeDelta::days(1)),
        data_interval_start: Some(run_after - TimeDelta::days(1)),
        data_interval_end: Some(run_after),
        run_after,
        conf: json!({"source": "fixture"}),
        note: None,
        state: RunState::Queued,
        version_number: 1,
        queued_at: run_after,
        started_at: None,
        ended_at: None,
        triggered_by: None,
    }
}

/// A queued manual run with no logical date.
pub fn manual_run(dag_id: &str, run_id: &str, run_after: DateTime<Utc>) -> DagRun {
    DagRun {
        run_type: RunType::Manual,
        logical_date: None,
        data_interval_start: None,
        data_interval_end: None,
        triggered_by: Some("conformance".into()),
        ..run(dag_id, run_id, run_after)
    }
}

/// A fresh (`none`) instance with one retry.
pub fn task(run: &RunKey, task_id: &str, map_index: i32) -> TaskInstance {
    TaskInstance::new(TaskKey::new(run, task_id, map_index), "PythonOperator", 1)
}

/// Fresh unmapped instances, one per id.
pub fn tasks(run: &RunKey, task_ids: &[&str]) -> Vec<TaskInstance> {
    task_ids.iter().map(|id| task(run, id, -1)).collect()
}

/// `ti` moved to `state` at `try_number`, with the fields a scheduler would set.
pub fn moved(ti: &TaskInstance, state: TaskState, try_number: u32) -> TaskInstance {
    let mut next = ti.clone();
    next.state = state;
    next.try_number = try_number;
    match state {
        TaskState::Scheduled => next.scheduled_at = Some(at(1)),
        TaskState::Queued => next.queued_at = Some(at(2)),
        TaskState::Running => {
            next.started_at = Some(at(3));
            next.executor_ref = Some(format!("ref-{try_number}"));
            next.hostname = Some("host".into());
        }
        s if s.is_finished() || s == TaskState::UpForRetry => {
            next.ended_at = Some(at(4));
            next.exit_code = Some(i32::from(s != TaskState::Success));
        }
        _ => {}
    }
    next
}

/// The attempt `try_number` of an unmapped task.
pub fn attempt(run: &RunKey, task_id: &str, try_number: u32) -> AttemptId {
    AttemptId {
        task: TaskKey::new(run, task_id, -1),
        try_number,
    }
}
