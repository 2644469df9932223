//! The `/api/v2` reads the web UI makes that the REST API proper does not serve: DAG
//! tags and DAG source code, and empty collections for what Leoflow has no equivalent of
//! (plugins, providers, jobs, assets and their events, DAG warnings, human-in-the-loop
//! requests, extra links, task dependencies), so those panels render "nothing here"; and
//! the tries of a task instance addressed with its map index in the path.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use crate::problem::{datastore_problem, engine_problem, Problem};
use crate::rest_api::dags::load;
use crate::rest_api::query::{like, order_field, Params};
use crate::rest_api::{shapes, task_instances, Api};

/// An empty `{<field>: [], total_entries: 0}` collection.
pub fn empty(field: &'static str) -> Json<Value> {
    Json(shapes::collection(field, Vec::new(), 0))
}

/// `GET /api/v2/dagTags`: every tag of an active DAG, by name.
pub async fn dag_tags(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let desc = match q.one("order_by") {
        Some(raw) => order_field(raw, &["name"])?.1,
        None => false,
    };
    let pattern = q.one("tag_name_pattern").filter(|p| !p.is_empty());
    let dags = api
        .engine
        .datastore()
        .list_dags()
        .await
        .map_err(datastore_problem)?;
    let mut tags = BTreeSet::new();
    for d in dags.iter().filter(|d| d.is_active) {
        let (_, spec) = load(&api, &d.dag_id).await?;
        tags.extend(
            spec.tags
                .iter()
                .filter(|t| pattern.is_none_or(|p| like(p, t)))
                .cloned(),
        );
    }
    let mut tags: Vec<String> = tags.into_iter().collect();
    if desc {
        tags.reverse();
    }
    let total = tags.len();
    Ok(Json(
        json!({"tags": page.apply(tags), "total_entries": total}),
    ))
}

/// `GET /api/v2/dagSources/{dag_id}`: the DAG file a version was compiled from.
pub async fn dag_source(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let (rec, _) = load(&api, &dag_id).await?;
    let n = q
        .parsed::<u32>("version_number", "a DAG version number")?
        .unwrap_or(rec.latest_version);
    let plan = api.engine.plan(&dag_id, n).await.map_err(engine_problem)?;
    Ok(Json(json!({
        "content": plan.spec.source,
        "dag_id": dag_id,
        "version_number": n,
        "dag_display_name": dag_id,
    })))
}

/// `GET …/taskInstances/{task_id}/dependencies`: Leoflow does not explain why a task
/// waits, so the list is empty.
pub async fn task_dependencies() -> Json<Value> {
    Json(json!({"dependencies": []}))
}

/// `GET …/taskInstances/{task_id}/{map_index}/hitlDetails`: there are no human-in-the-loop
/// tasks in Leoflow.
pub async fn hitl_detail(
    Path((dag_id, run_id, task_id, _)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, Problem> {
    Err(Problem::not_found(format!(
        "task {task_id:?} of run {run_id:?} of DAG {dag_id:?} has no human-in-the-loop request: Leoflow has no such tasks"
    )))
}

/// `GET …/taskInstances/{task_id}/{map_index}/tries`: the REST API's tries listing, with
/// the map index in the path as the UI sends it.
pub async fn mapped_tries(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id, map_index)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, Problem> {
    let query = RawQuery(Some(format!("map_index={}", map_index_of(&map_index)?)));
    task_instances::tries(State(api), Path((dag_id, run_id, task_id)), query).await
}

/// `GET …/taskInstances/{task_id}/{map_index}/tries/{task_try_number}`.
pub async fn mapped_try(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id, map_index, try_number)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
) -> Result<Json<Value>, Problem> {
    let query = RawQuery(Some(format!("map_index={}", map_index_of(&map_index)?)));
    task_instances::try_detail(
        State(api),
        Path((dag_id, run_id, task_id, try_number)),
        query,
    )
    .await
}

fn map_index_of(raw: &str) -> Result<i32, Problem> {
    raw.parse().map_err(|_| {
        Problem::bad_request(format!(
            "map_index must be an integer (-1 for an unmapped task), got {raw:?}"
        ))
    })
}
