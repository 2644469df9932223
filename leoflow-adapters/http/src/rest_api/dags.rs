//! `/api/v2/dags`: list (Airflow's `dag_id_pattern`, `tags`, `paused`, `owners`,
//! `order_by` filters), get, details, pause/unpause, and delete — which clears the DAG's
//! run history and keeps the DAG and its versions (the UI's trash button, ADR 0020).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leoflow_core::engine::Error as EngineError;
use leoflow_ports::dag::DagSpec;
use leoflow_ports::state::RunState;
use leoflow_ports::version::DagRecord;
use serde::Deserialize;
use serde_json::Value;

use super::query::{like, Params};
use super::{shapes, Api};
use crate::problem::{datastore_problem, engine_problem, Problem};

/// A DAG and the spec of its latest version.
pub async fn load(api: &Api, dag_id: &str) -> Result<(DagRecord, Arc<DagSpec>), Problem> {
    let rec = api
        .engine
        .datastore()
        .get_dag(dag_id)
        .await
        .map_err(datastore_problem)?
        .ok_or_else(|| not_found(dag_id))?;
    let plan = api
        .engine
        .plan(dag_id, rec.latest_version)
        .await
        .map_err(engine_problem)?;
    Ok((rec, plan.spec.clone()))
}

pub fn not_found(dag_id: &str) -> Problem {
    Problem::not_found(format!(
        "DAG {dag_id:?} not found; list DAGs with GET /api/v2/dags or register it (leoflow push)"
    ))
}

/// `GET /api/v2/dags`.
pub async fn list(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(&["dag_id", "dag_display_name"])?;
    let paused = q.flag("paused")?;
    let exclude_stale = q.flag("exclude_stale")?.unwrap_or(true);
    if !exclude_stale {
        return Err(Problem::bad_request(
            "exclude_stale=false is not supported: Leoflow lists active DAGs only",
        ));
    }
    let tags = q.all("tags");
    let match_all = match q.one("tags_match_mode") {
        None | Some("any") => false,
        Some("all") => true,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "tags_match_mode must be any or all, got {other:?}"
            )))
        }
    };
    let owners = q.all("owners");
    let pattern = q
        .one("dag_id_pattern")
        .or(q.one("dag_display_name_pattern"));
    let records = api
        .engine
        .datastore()
        .list_dags()
        .await
        .map_err(datastore_problem)?;
    let mut rows = Vec::new();
    for rec in records {
        if paused.is_some_and(|p| p != rec.is_paused)
            || pattern.is_some_and(|p| !like(p, &rec.dag_id))
        {
            continue;
        }
        let (rec, spec) = load(&api, &rec.dag_id).await?;
        let has = |t: &&str| spec.tags.iter().any(|s| s == t);
        let tags_ok = tags.is_empty()
            || if match_all {
                tags.iter().all(has)
            } else {
                tags.iter().any(has)
            };
        let owner = spec.owner.as_deref().unwrap_or("airflow");
        if tags_ok && (owners.is_empty() || owners.contains(&owner)) {
            rows.push((rec, spec));
        }
    }
    if let Some((_, desc)) = order {
        // Both sort keys are the dag_id (display names are the ids).
        if desc {
            rows.reverse();
        }
    }
    let total = rows.len();
    let items = page
        .apply(rows)
        .iter()
        .map(|(rec, spec)| shapes::dag(rec, spec))
        .collect();
    Ok(Json(shapes::collection("dags", items, total)))
}

/// `GET /api/v2/dags/{dag_id}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let (rec, spec) = load(&api, &dag_id).await?;
    Ok(Json(shapes::dag(&rec, &spec)))
}

/// `GET /api/v2/dags/{dag_id}/details`.
pub async fn details(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let (rec, spec) = load(&api, &dag_id).await?;
    let latest = api
        .engine
        .datastore()
        .get_version(&dag_id, rec.latest_version)
        .await
        .map_err(datastore_problem)?;
    Ok(Json(shapes::dag_details(&rec, &spec, latest.as_ref())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    is_paused: bool,
}

/// `PATCH /api/v2/dags/{dag_id}`: body `{"is_paused": bool}`.
pub async fn patch(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    if let Some(mask) = q.one("update_mask") {
        if mask != "is_paused" {
            return Err(Problem::bad_request(format!(
                "update_mask {mask:?} is not supported; only is_paused can be updated"
            )));
        }
    }
    let body: PatchBody = api.json(body).await?;
    load(&api, &dag_id).await?;
    let rec = api
        .engine
        .datastore()
        .set_paused(&dag_id, body.is_paused)
        .await
        .map_err(datastore_problem)?;
    let (_, spec) = load(&api, &dag_id).await?;
    Ok(Json(shapes::dag(&rec, &spec)))
}

/// `DELETE /api/v2/dags/{dag_id}`: fails the DAG's unfinished runs (cancelling their
/// attempts), then deletes every run (with their task instances, XComs and logs); the DAG
/// and its versions stay. Answers 200 `{}` as
/// Airflow's document says.
/// Fails an unfinished run (stopping its attempts, so nothing reports into a deleted run).
/// The scheduler may move the run at the same moment (the mark is a compare-and-set): read
/// it again and retry, and stop once it has finished on its own.
async fn stop_run(api: &Api, key: &leoflow_ports::run::RunKey) -> Result<(), Problem> {
    const ATTEMPTS: usize = 10;
    for _ in 0..ATTEMPTS {
        let current = api
            .engine
            .datastore()
            .get_run(key)
            .await
            .map_err(datastore_problem)?;
        if current.is_none_or(|r| r.state.is_finished()) {
            return Ok(());
        }
        match api.engine.set_run_state(key, RunState::Failed).await {
            Ok(_) => return Ok(()),
            Err(EngineError::Conflict(_)) => tokio::task::yield_now().await,
            Err(e) => return Err(engine_problem(e)),
        }
    }
    Err(engine_problem(EngineError::Conflict(format!(
        "run {key} kept changing state while the DAG was being deleted; retry the delete"
    ))))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
) -> Result<Response, Problem> {
    load(&api, &dag_id).await?;
    let store = api.engine.datastore();
    let filter = leoflow_ports::datastore::RunFilter {
        dag_id: Some(dag_id.clone()),
        ..Default::default()
    };
    let (runs, _) = store.list_runs(&filter).await.map_err(datastore_problem)?;
    for r in &runs {
        let key = r.key();
        if !r.state.is_finished() {
            stop_run(&api, &key).await?;
        }
        let _ = api.engine.xcom().delete_for_run(&key).await;
        let _ = api.engine.logs().delete_for_run(&key).await;
    }
    store
        .clear_history(&dag_id)
        .await
        .map_err(datastore_problem)?;
    Ok((StatusCode::OK, Json(serde_json::json!({}))).into_response())
}
