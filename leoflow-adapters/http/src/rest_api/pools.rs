//! `/api/v2/pools`, read-only: Leoflow has one pool, `default_pool`, whose slots are not
//! limited (concurrency is bounded by `max_active_tasks` and the executor instead). Its
//! running and queued counts are live.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use leoflow_ports::state::TaskState;
use serde_json::{json, Value};

use super::{shapes, Api};
use crate::problem::{datastore_problem, Problem};

/// The slots Airflow shows for an unlimited pool.
const UNLIMITED: i64 = -1;

async fn default_pool(api: &Api) -> Result<Value, Problem> {
    let in_flight = api
        .engine
        .datastore()
        .in_flight()
        .await
        .map_err(datastore_problem)?;
    let running = in_flight
        .iter()
        .filter(|t| t.state == TaskState::Running)
        .count();
    let queued = in_flight.len() - running;
    Ok(json!({
        "name": shapes::DEFAULT_POOL,
        "slots": UNLIMITED,
        "description": "Leoflow's only pool; slots are unlimited (concurrency comes from max_active_tasks and the executor)",
        "include_deferred": false,
        "occupied_slots": running + queued,
        "running_slots": running,
        "queued_slots": queued,
        "scheduled_slots": 0,
        "open_slots": UNLIMITED,
        "deferred_slots": 0,
        "team_name": null,
    }))
}

/// `GET /api/v2/pools`.
pub async fn list(State(api): State<Arc<Api>>) -> Result<Json<Value>, Problem> {
    Ok(Json(shapes::collection(
        "pools",
        vec![default_pool(&api).await?],
        1,
    )))
}

/// `GET /api/v2/pools/{pool_name}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    if name != shapes::DEFAULT_POOL {
        return Err(Problem::not_found(format!(
            "pool {name:?} not found; Leoflow has one pool, {}",
            shapes::DEFAULT_POOL
        )));
    }
    Ok(Json(default_pool(&api).await?))
}
