//! DAG versions: Airflow's `dagVersions` listing and lookup, and Leoflow's
//! `POST /api/v2/dags/{dag_id}/versions`, which registers a compiled `dag.json` (what
//! `leoflow push` and hot reload call). Registration is idempotent by content hash: the
//! same spec again answers 200 with the existing version, a new one 201.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leoflow_core::engine::Error as EngineError;
use leoflow_ports::dag::DagSpec;
use serde_json::{json, Value};

use super::dags::load;
use super::query::Params;
use super::{shapes, Api};
use crate::body::read_body;
use crate::problem::{datastore_problem, engine_problem, Problem};

/// `GET /api/v2/dags/{dag_id}/dagVersions`, newest first (`order_by=version_number` for
/// oldest first).
pub async fn list(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(&["id", "version_number", "created_at"])?;
    load(&api, &dag_id).await?;
    let mut versions = api
        .engine
        .datastore()
        .list_versions(&dag_id)
        .await
        .map_err(datastore_problem)?;
    if matches!(order, Some((_, false))) {
        versions.reverse();
    }
    let total = versions.len();
    let items = page.apply(versions).iter().map(shapes::version).collect();
    Ok(Json(shapes::collection("dag_versions", items, total)))
}

/// `GET /api/v2/dags/{dag_id}/dagVersions/{version_number}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path((dag_id, number)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let n: u32 = number.parse().map_err(|_| {
        Problem::bad_request(format!(
            "version_number must be a positive integer, got {number:?}"
        ))
    })?;
    let v = api
        .engine
        .datastore()
        .get_version(&dag_id, n)
        .await
        .map_err(datastore_problem)?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "DAG {dag_id:?} has no version {n}; list them with GET /api/v2/dags/{dag_id}/dagVersions"
            ))
        })?;
    Ok(Json(shapes::version(&v)))
}

/// `POST /api/v2/dags/{dag_id}/versions`: body = a compiled `dag.json`.
pub async fn register(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let bytes = read_body(body, api.max_body_bytes, "a dag.json").await?;
    let spec = DagSpec::from_json(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-dag-spec",
            format!("the body is not a valid dag.json: {e}"),
        )
    })?;
    if spec.dag_id != dag_id {
        return Err(Problem::bad_request(format!(
            "the path names DAG {dag_id:?} but the dag.json is for {:?}; POST it to /api/v2/dags/{}/versions",
            spec.dag_id, spec.dag_id
        )));
    }
    let registered = api.engine.register(spec).await.map_err(|e| match e {
        EngineError::Invalid(errors) => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-dag-spec",
            format!("the DAG is invalid:\n{errors}"),
        ),
        other => engine_problem(other),
    })?;
    let v = &registered.version;
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "dag_id": v.dag_id,
            "version": v.label,
            "version_number": v.version_number,
            "spec_hash": v.spec_hash,
            "created": registered.created,
        })),
    )
        .into_response())
}
