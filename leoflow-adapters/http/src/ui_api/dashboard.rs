//! The home page's numbers: `GET /ui/dashboard/dag_stats` (DAGs by their latest run's
//! state) and `GET /ui/dashboard/historical_metrics_data` (runs and task instances by
//! state over a time window).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::{DateTime, Utc};
use leoflow_ports::datastore::{RunFilter, TaskFilter};
use leoflow_ports::state::{RunState, TaskState};
use serde_json::{json, Value};

use crate::problem::{datastore_problem, Problem};
use crate::rest_api::query::Params;
use crate::rest_api::Api;

/// The most runs the historical metrics count (Airflow reports its own cap the same way).
const STATE_COUNT_LIMIT: usize = 5000;

/// `GET /ui/dashboard/dag_stats`.
pub async fn dag_stats(State(api): State<Arc<Api>>) -> Result<Json<Value>, Problem> {
    let store = api.engine.datastore();
    let dags = store.list_dags().await.map_err(datastore_problem)?;
    let (mut active, mut failed, mut running, mut queued) = (0, 0, 0, 0);
    for d in dags.iter().filter(|d| d.is_active) {
        if !d.is_paused {
            active += 1;
        }
        let filter = RunFilter {
            dag_id: Some(d.dag_id.clone()),
            states: Vec::new(),
            limit: Some(1),
            offset: 0,
        };
        let (runs, _) = store.list_runs(&filter).await.map_err(datastore_problem)?;
        match runs.first().map(|r| r.state) {
            Some(RunState::Failed) => failed += 1,
            Some(RunState::Running) => running += 1,
            Some(RunState::Queued) => queued += 1,
            _ => {}
        }
    }
    Ok(Json(json!({
        "active_dag_count": active,
        "failed_dag_count": failed,
        "running_dag_count": running,
        "queued_dag_count": queued,
    })))
}

/// Airflow's name for a task state in the counts (`none` is `no_status`).
fn count_key(s: TaskState) -> &'static str {
    match s {
        TaskState::None => "no_status",
        other => other.as_str(),
    }
}

/// `GET /ui/dashboard/historical_metrics_data?start_date=&end_date=`: runs whose
/// `run_after` falls in the window, and their task instances.
pub async fn historical_metrics(
    State(api): State<Arc<Api>>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let when = "an RFC 3339 timestamp such as 2024-01-31T00:00:00Z (encode `+` as %2B)";
    let start = q
        .parsed::<DateTime<Utc>>("start_date", when)?
        .ok_or_else(|| {
            Problem::bad_request("query parameter `start_date` is required (an RFC 3339 time)")
        })?;
    let end = q
        .parsed::<DateTime<Utc>>("end_date", when)?
        .unwrap_or_else(|| api.engine.clock().now());
    let store = api.engine.datastore();
    let (runs, _) = store
        .list_runs(&RunFilter::default())
        .await
        .map_err(datastore_problem)?;
    let mut run_states: BTreeMap<&str, usize> =
        RunState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut ti_states: BTreeMap<&str, usize> = [
        "no_status",
        "removed",
        "scheduled",
        "queued",
        "running",
        "success",
        "restarting",
        "failed",
        "up_for_retry",
        "up_for_reschedule",
        "upstream_failed",
        "skipped",
        "deferred",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    // One task-instance query per DAG with runs in the window (not one per run).
    let mut window: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.run_after >= start && r.run_after <= end)
        .take(STATE_COUNT_LIMIT)
    {
        *run_states.entry(r.state.as_str()).or_default() += 1;
        window.entry(&r.dag_id).or_default().insert(&r.run_id);
    }
    for (dag_id, run_ids) in window {
        let filter = TaskFilter {
            dag_id: Some(dag_id.to_string()),
            ..TaskFilter::default()
        };
        let (tis, _) = store
            .list_task_instances(&filter)
            .await
            .map_err(datastore_problem)?;
        for ti in tis
            .iter()
            .filter(|t| run_ids.contains(t.key.run_id.as_str()))
        {
            *ti_states.entry(count_key(ti.state)).or_default() += 1;
        }
    }
    Ok(Json(json!({
        "dag_run_states": run_states,
        "task_instance_states": ti_states,
        "state_count_limit": STATE_COUNT_LIMIT,
    })))
}
