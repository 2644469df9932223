//! The `/ui/*` endpoints for features Leoflow does not have — asset dependencies,
//! backfills, teams, deadlines and asset partitions — answering the empty value of the
//! shape the UI expects, so its screens render "nothing here" instead of an error.

use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

use crate::problem::Problem;

/// `GET /ui/dependencies`: no asset or cross-DAG dependencies.
pub async fn dependencies() -> Json<Value> {
    Json(json!({"edges": [], "nodes": []}))
}

/// `GET /ui/backfills`.
pub async fn backfills() -> Json<Value> {
    Json(json!({"backfills": [], "total_entries": 0}))
}

/// `GET /ui/teams`.
pub async fn teams() -> Json<Value> {
    Json(json!({"teams": [], "total_entries": 0}))
}

/// `GET /ui/next_run_assets/{dag_id}`: no asset-triggered schedules.
pub async fn next_run_assets() -> Json<Value> {
    Json(json!({}))
}

/// `GET /ui/dags/{dag_id}/dagRuns/{dag_run_id}/deadlines`.
pub async fn deadlines() -> Json<Value> {
    Json(json!({"deadlines": [], "total_entries": 0}))
}

/// `GET /ui/partitioned_dag_runs`.
pub async fn partitioned_dag_runs() -> Json<Value> {
    Json(json!({"partitioned_dag_runs": [], "total": 0, "asset_expressions": null}))
}

/// `GET /ui/pending_partitioned_dag_run/{dag_id}/{partition_key}`: there are none, so any
/// one asked for is not found (as in Airflow for an unknown key).
pub async fn pending_partitioned_dag_run(
    Path((dag_id, key)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    Err(Problem::not_found(format!(
        "DAG {dag_id:?} has no pending partitioned run {key:?}: Leoflow has no asset partitions"
    )))
}
