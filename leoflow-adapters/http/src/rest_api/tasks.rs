//! `GET /api/v2/dags/{dag_id}/tasks` and `…/tasks/{task_id}`: the tasks of the DAG's
//! latest version in Airflow's `TaskResponse` shape. The listing also accepts
//! `limit`/`offset` (Airflow ignores them here; clients such as the benchmark driver send
//! them).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use leoflow_ports::dag::{DagSpec, TaskSpec};
use serde_json::{json, Value};

use super::dags::load;
use super::query::Params;
use super::{shapes, Api};
use crate::problem::Problem;

fn delta(seconds: Option<f64>) -> Value {
    seconds.map_or(Value::Null, |s| {
        let whole = s.trunc();
        json!({
            "__type": "TimeDelta",
            "days": (whole / 86400.0).floor() as i64,
            "seconds": (whole % 86400.0) as i64,
            "microseconds": ((s - whole) * 1e6).round() as i64,
        })
    })
}

fn task(spec: &DagSpec, t: &TaskSpec) -> Value {
    let mut downstream: Vec<&str> = spec
        .tasks
        .iter()
        .filter(|d| d.depends_on.contains(&t.task_id))
        .map(|d| d.task_id.as_str())
        .collect();
    downstream.sort_unstable();
    json!({
        "task_id": t.task_id,
        "task_display_name": t.task_id,
        "owner": spec.owner.clone().unwrap_or_else(|| "airflow".into()),
        "start_date": shapes::ts_opt(spec.start_date),
        "end_date": shapes::ts_opt(spec.end_date),
        "trigger_rule": t.trigger_rule.as_str(),
        "depends_on_past": false,
        "wait_for_downstream": false,
        "retries": t.retries.unwrap_or(0),
        "queue": "default",
        "pool": shapes::DEFAULT_POOL,
        "pool_slots": 1,
        "execution_timeout": delta(t.execution_timeout_seconds),
        "retry_delay": delta(Some(t.retry_delay_seconds.unwrap_or(300.0))),
        "retry_exponential_backoff": if t.retry_exponential_backoff.unwrap_or(false) { 2.0 } else { 0.0 },
        "priority_weight": 1,
        "weight_rule": "downstream",
        "ui_color": "#fff",
        "ui_fgcolor": "#000",
        "template_fields": [],
        "downstream_task_ids": downstream,
        "doc_md": null,
        "operator_name": t.operator_name(),
        "params": {},
        "class_ref": {"class_name": t.operator_name(), "module_path": null},
        "is_mapped": t.map.is_some(),
        "extra_links": [],
    })
}

/// `GET /api/v2/dags/{dag_id}/tasks` (ordered by `task_id`, or `order_by`).
pub async fn list(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(&["task_id"])?;
    let (_, spec) = load(&api, &dag_id).await?;
    let mut tasks: Vec<&TaskSpec> = spec.tasks.iter().collect();
    tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    if matches!(order, Some((_, true))) {
        tasks.reverse();
    }
    let total = tasks.len();
    let items = page
        .apply(tasks)
        .into_iter()
        .map(|t| task(&spec, t))
        .collect();
    Ok(Json(shapes::collection("tasks", items, total)))
}

/// `GET /api/v2/dags/{dag_id}/tasks/{task_id}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path((dag_id, task_id)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let (_, spec) = load(&api, &dag_id).await?;
    spec.tasks
        .iter()
        .find(|t| t.task_id == task_id)
        .map(|t| Json(task(&spec, t)))
        .ok_or_else(|| {
            Problem::not_found(format!(
                "task {task_id:?} is not in DAG {dag_id:?}; list its tasks with GET /api/v2/dags/{dag_id}/tasks"
            ))
        })
}
