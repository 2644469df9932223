//! XCom entries of a task instance: list (`…/xcomEntries`, `~` for every task of the
//! run) and get one value (`…/xcomEntries/{xcom_key}`, Airflow's `XComResponseNative`).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use leoflow_ports::run::{DagRun, TaskKey};
use leoflow_ports::xcom::XComEntry;
use serde_json::{json, Value};

use super::dag_runs::load_run;
use super::query::Params;
use super::{shapes, Api};
use crate::problem::{xcom_problem, Problem};

fn entry(e: &XComEntry, run: &DagRun) -> Value {
    json!({
        "key": e.key,
        "timestamp": shapes::ts(e.created_at),
        "logical_date": shapes::ts_opt(run.logical_date),
        "map_index": e.task.map_index,
        "task_id": e.task.task_id,
        "dag_id": e.task.dag_id,
        "run_id": e.task.run_id,
        "dag_display_name": e.task.dag_id,
        "task_display_name": e.task.task_id,
        "run_after": shapes::ts(run.run_after),
    })
}

/// `GET …/taskInstances/{task_id}/xcomEntries`.
pub async fn list(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let map_index: Option<i32> = q.parsed("map_index", "an integer")?;
    let key = q.one("xcom_key");
    let run = load_run(&api, &dag_id, &run_id).await?;
    let task = (task_id != "~").then_some(task_id.as_str());
    let mut entries = api
        .engine
        .xcom()
        .list(&run.key(), task)
        .await
        .map_err(|e| xcom_problem(&e))?;
    entries.retain(|e| {
        map_index.is_none_or(|m| e.task.map_index == m) && key.is_none_or(|k| e.key == k)
    });
    let total = entries.len();
    let items = page.apply(entries).iter().map(|e| entry(e, &run)).collect();
    Ok(Json(shapes::collection("xcom_entries", items, total)))
}

/// `GET …/taskInstances/{task_id}/xcomEntries/{xcom_key}`: the value as JSON.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id, key)): Path<(String, String, String, String)>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let map_index: i32 = q.parsed("map_index", "an integer")?.unwrap_or(-1);
    let stringify = q.flag("stringify")?.unwrap_or(false);
    let run = load_run(&api, &dag_id, &run_id).await?;
    let task = TaskKey::new(&run.key(), task_id, map_index);
    let e = api
        .engine
        .xcom()
        .get(&task, &key)
        .await
        .map_err(|e| xcom_problem(&e))?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "task instance {task} has no XCom {key:?}; list its XComs with GET …/xcomEntries"
            ))
        })?;
    let mut v = entry(&e, &run);
    v["value"] = if stringify {
        Value::String(e.value.to_string())
    } else {
        e.value.clone()
    };
    Ok(Json(v))
}
