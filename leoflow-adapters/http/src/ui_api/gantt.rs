//! `GET /ui/gantt/{dag_id}/{run_id}`: every try of every task instance of a run with its
//! start and end, for the run's Gantt chart.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::problem::{datastore_problem, Problem};
use crate::rest_api::dag_runs::load_run;
use crate::rest_api::{shapes, Api};

/// `GET /ui/gantt/{dag_id}/{run_id}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let run = load_run(&api, &dag_id, &run_id).await?;
    let store = api.engine.datastore();
    let tis = store
        .task_instances(&run.key())
        .await
        .map_err(datastore_problem)?;
    let mut rows = Vec::new();
    for ti in tis {
        let tries = store.tries(&ti.key).await.map_err(datastore_problem)?;
        let tries = if tries.is_empty() { vec![ti] } else { tries };
        for t in tries {
            rows.push(json!({
                "task_id": t.key.task_id,
                "task_display_name": t.key.task_id,
                "try_number": t.try_number,
                "state": shapes::task_state(t.state),
                "start_date": shapes::ts_opt(t.started_at),
                "end_date": shapes::ts_opt(t.ended_at),
                "is_group": false,
                "is_mapped": t.key.map_index >= 0,
            }));
        }
    }
    Ok(Json(
        json!({"dag_id": dag_id, "run_id": run_id, "task_instances": rows}),
    ))
}
