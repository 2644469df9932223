//! `/api/v2/dags/{dag_id}/dagRuns`: trigger (`logical_date`, `conf`, `note`), list (the
//! `~` DAG id lists every DAG's runs), the batch listing `POST …/dagRuns/list`, get, patch
//! (state and note), clear and delete.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use leoflow_core::commands::{ClearRequest, Selection};
use leoflow_core::engine::TriggerRequest;
use leoflow_ports::datastore::RunFilter;
use leoflow_ports::run::{DagRun, RunKey};
use leoflow_ports::state::RunState;
use leoflow_ports::version::DagVersion;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::dags::load;
use super::identity::Principal;
use super::query::{like, order_field, Page, Params, Range};
use super::{shapes, task_instances, Api};
use crate::problem::{datastore_problem, engine_problem, Problem};

/// The fields runs can be ordered by.
const RUN_ORDER: &[&str] = &[
    "id",
    "run_after",
    "logical_date",
    "start_date",
    "end_date",
    "queued_at",
    "dag_run_id",
    "state",
];

/// Versions looked up once per response.
#[derive(Default)]
pub struct Versions(HashMap<(String, u32), Option<DagVersion>>);

impl Versions {
    pub async fn get(
        &mut self,
        api: &Api,
        dag_id: &str,
        n: u32,
    ) -> Result<Option<&DagVersion>, Problem> {
        let key = (dag_id.to_string(), n);
        if !self.0.contains_key(&key) {
            let v = api
                .engine
                .datastore()
                .get_version(dag_id, n)
                .await
                .map_err(datastore_problem)?;
            self.0.insert(key.clone(), v);
        }
        Ok(self.0.get(&key).and_then(Option::as_ref))
    }
}

/// The run, or a 404 naming it.
pub async fn load_run(api: &Api, dag_id: &str, run_id: &str) -> Result<DagRun, Problem> {
    api.engine
        .datastore()
        .get_run(&RunKey::new(dag_id, run_id))
        .await
        .map_err(datastore_problem)?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "DAG run {run_id:?} of DAG {dag_id:?} not found; list runs with GET /api/v2/dags/{dag_id}/dagRuns"
            ))
        })
}

pub async fn run_json(api: &Api, run: &DagRun, versions: &mut Versions) -> Result<Value, Problem> {
    let v = versions.get(api, &run.dag_id, run.version_number).await?;
    Ok(shapes::run(run, v))
}

async fn page_json(api: &Api, runs: &[DagRun], total: usize) -> Result<Json<Value>, Problem> {
    let mut versions = Versions::default();
    let mut items = Vec::with_capacity(runs.len());
    for r in runs {
        items.push(run_json(api, r, &mut versions).await?);
    }
    Ok(Json(shapes::collection("dag_runs", items, total)))
}

fn sort_key(r: &DagRun, field: &str) -> (Option<DateTime<Utc>>, String) {
    match field {
        "logical_date" => (r.logical_date, r.run_id.clone()),
        "start_date" => (r.started_at, r.run_id.clone()),
        "end_date" => (r.ended_at, r.run_id.clone()),
        "queued_at" => (Some(r.queued_at), r.run_id.clone()),
        "dag_run_id" => (None, r.run_id.clone()),
        "state" => (None, r.state.as_str().to_string()),
        _ => (Some(r.run_after), r.run_id.clone()),
    }
}

/// Runs of `dag_id` (`None`: every DAG) in `states`, ordered and paged.
async fn query_runs(
    api: &Api,
    dag_id: Option<String>,
    states: Vec<RunState>,
    order: Option<(String, bool)>,
    page: Page,
    keep: impl Fn(&DagRun) -> bool,
) -> Result<(Vec<DagRun>, usize), Problem> {
    let store = api.engine.datastore();
    let newest_first = order
        .as_ref()
        .is_none_or(|(f, desc)| *desc && matches!(f.as_str(), "id" | "run_after"));
    let filter = RunFilter {
        dag_id,
        states,
        limit: None,
        offset: 0,
    };
    let (mut runs, _) = store.list_runs(&filter).await.map_err(datastore_problem)?;
    runs.retain(|r| keep(r));
    if !newest_first {
        let (field, desc) = order.unwrap_or_default();
        runs.sort_by_key(|r| sort_key(r, &field));
        if desc {
            runs.reverse();
        }
    }
    let total = runs.len();
    Ok((page.apply(runs), total))
}

/// The timestamp bounds a run listing may set.
#[derive(Debug, Default)]
struct RunRanges {
    run_after: Range,
    logical_date: Range,
    start_date: Range,
    end_date: Range,
}

impl RunRanges {
    fn from_params(q: &Params) -> Result<RunRanges, Problem> {
        Ok(RunRanges {
            run_after: Range::from_params(q, "run_after")?,
            logical_date: Range::from_params(q, "logical_date")?,
            start_date: Range::from_params(q, "start_date")?,
            end_date: Range::from_params(q, "end_date")?,
        })
    }

    fn contains(&self, r: &DagRun) -> bool {
        self.run_after.contains(Some(r.run_after))
            && self.logical_date.contains(r.logical_date)
            && self.start_date.contains(r.started_at)
            && self.end_date.contains(r.ended_at)
    }
}

fn dag_filter(dag_id: &str) -> Option<String> {
    (dag_id != "~").then(|| dag_id.to_string())
}

/// `GET /api/v2/dags/{dag_id}/dagRuns` (newest first unless `order_by` says otherwise).
pub async fn list(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(RUN_ORDER)?;
    let states: Vec<RunState> = q.parsed_all("state", "a DAG run state")?;
    let run_types = q.all("run_type");
    let ranges = RunRanges::from_params(&q)?;
    let run_pattern = q.one("run_id_pattern");
    let dag_pattern = q.one("dag_id_pattern");
    if dag_id != "~" {
        load(&api, &dag_id).await?;
    }
    let (runs, total) = query_runs(&api, dag_filter(&dag_id), states, order, page, |r| {
        (run_types.is_empty() || run_types.contains(&r.run_type.as_str()))
            && ranges.contains(r)
            && run_pattern.is_none_or(|p| like(p, &r.run_id))
            && dag_pattern.is_none_or(|p| like(p, &r.dag_id))
    })
    .await?;
    page_json(&api, &runs, total).await
}

/// Airflow's `DAGRunsBatchBody` (without the `duration_*` and `conf_contains` filters).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // Airflow's field names.
struct BatchBody {
    #[serde(default)]
    dag_ids: Option<Vec<String>>,
    #[serde(default)]
    states: Option<Vec<Option<RunState>>>,
    #[serde(default)]
    page_offset: usize,
    #[serde(default = "default_batch_limit")]
    page_limit: usize,
    #[serde(default)]
    order_by: Option<String>,
    #[serde(default)]
    run_after_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    run_after_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    run_after_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    run_after_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    logical_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    logical_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    logical_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    logical_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    start_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    start_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    start_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    start_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    end_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    end_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    end_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    end_date_lt: Option<DateTime<Utc>>,
}

impl BatchBody {
    fn ranges(&self) -> RunRanges {
        RunRanges {
            run_after: Range {
                gte: self.run_after_gte,
                gt: self.run_after_gt,
                lte: self.run_after_lte,
                lt: self.run_after_lt,
            },
            logical_date: Range {
                gte: self.logical_date_gte,
                gt: self.logical_date_gt,
                lte: self.logical_date_lte,
                lt: self.logical_date_lt,
            },
            start_date: Range {
                gte: self.start_date_gte,
                gt: self.start_date_gt,
                lte: self.start_date_lte,
                lt: self.start_date_lt,
            },
            end_date: Range {
                gte: self.end_date_gte,
                gt: self.end_date_gt,
                lte: self.end_date_lte,
                lt: self.end_date_lt,
            },
        }
    }
}

fn default_batch_limit() -> usize {
    100
}

/// `POST /api/v2/dags/~/dagRuns/list`.
pub async fn batch(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    body: Body,
) -> Result<Json<Value>, Problem> {
    if dag_id != "~" {
        return Err(Problem::bad_request(
            "the batch listing is POST /api/v2/dags/~/dagRuns/list; name DAGs in `dag_ids`",
        ));
    }
    let body: BatchBody = api.json(body).await?;
    let ranges = body.ranges();
    let order = body
        .order_by
        .as_deref()
        .map(|o| order_field(o, RUN_ORDER))
        .transpose()?;
    let states: Vec<RunState> = body
        .states
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    let dag_ids = body.dag_ids.unwrap_or_default();
    let single = (dag_ids.len() == 1).then(|| dag_ids[0].clone());
    let (runs, total) = query_runs(
        &api,
        single,
        states,
        order,
        Page::new(body.page_limit, body.page_offset),
        |r| (dag_ids.is_empty() || dag_ids.contains(&r.dag_id)) && ranges.contains(r),
    )
    .await?;
    page_json(&api, &runs, total).await
}

/// `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let run = load_run(&api, &dag_id, &run_id).await?;
    Ok(Json(run_json(&api, &run, &mut Versions::default()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    #[serde(default)]
    dag_run_id: Option<String>,
    #[serde(default)]
    logical_date: Option<DateTime<Utc>>,
    #[serde(default)]
    conf: Option<Map<String, Value>>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    data_interval_start: Option<DateTime<Utc>>,
    #[serde(default)]
    data_interval_end: Option<DateTime<Utc>>,
    #[serde(default)]
    run_after: Option<DateTime<Utc>>,
    #[serde(default)]
    partition_key: Option<String>,
}

/// `POST /api/v2/dags/{dag_id}/dagRuns`: triggers a manual run (200, as Airflow).
pub async fn trigger(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    Extension(principal): Extension<Principal>,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let body: TriggerBody = api.json(body).await?;
    if body.data_interval_start.is_some()
        || body.data_interval_end.is_some()
        || body.run_after.is_some()
        || body.partition_key.is_some()
    {
        return Err(Problem::bad_request(
            "data_interval_start, data_interval_end, run_after and partition_key are not supported by Leoflow; send logical_date, conf, note and dag_run_id only",
        ));
    }
    if let Some(id) = &body.dag_run_id {
        check_run_id(id)?;
    }
    load(&api, &dag_id).await?;
    let run = api
        .engine
        .trigger(
            &dag_id,
            TriggerRequest {
                run_id: body.dag_run_id,
                logical_date: body.logical_date,
                conf: body.conf.map(Value::Object),
                note: body.note,
                triggered_by: Some(principal.username),
            },
        )
        .await
        .map_err(engine_problem)?;
    Ok(Json(run_json(&api, &run, &mut Versions::default()).await?))
}

/// Run ids are path segments: keep them printable and slash-free.
fn check_run_id(id: &str) -> Result<(), Problem> {
    if id.is_empty() || id.len() > 250 || id.chars().any(|c| c == '/' || c.is_control()) {
        return Err(Problem::bad_request(format!(
            "dag_run_id {id:?} is not usable: use 1 to 250 printable characters without `/`"
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    state: Option<RunState>,
    #[serde(default)]
    note: Option<String>,
}

/// `PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`: `state` (queued, success, failed)
/// and/or `note`; `update_mask` limits which.
pub async fn patch(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    q: RawQuery,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let mask = q.all("update_mask");
    if let Some(bad) = mask.iter().find(|m| !matches!(**m, "state" | "note")) {
        return Err(Problem::bad_request(format!(
            "update_mask {bad:?} is not supported; use state and/or note"
        )));
    }
    let wants = |f: &str| mask.is_empty() || mask.contains(&f);
    let body: PatchBody = api.json(body).await?;
    let key = RunKey::new(dag_id.as_str(), run_id.as_str());
    let mut run = load_run(&api, &dag_id, &run_id).await?;
    if let Some(state) = body.state.filter(|_| wants("state")) {
        if state == RunState::Running {
            return Err(Problem::bad_request(
                "a run's state can be set to queued, success or failed, not running",
            ));
        }
        run = api
            .engine
            .set_run_state(&key, state)
            .await
            .map_err(engine_problem)?;
    }
    if wants("note") && (body.note.is_some() || mask.contains(&"note")) {
        let mut new = run.clone();
        new.note = body.note;
        let store = api.engine.datastore();
        if !store
            .update_run(run.state, &new, None)
            .await
            .map_err(datastore_problem)?
        {
            return Err(Problem::conflict(
                "the run changed while its note was being set; read it again and retry",
            ));
        }
        run = new;
    }
    Ok(Json(run_json(&api, &run, &mut Versions::default()).await?))
}

/// `DELETE /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`.
pub async fn delete(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let run = load_run(&api, &dag_id, &run_id).await?;
    if !run.state.is_finished() {
        // Stop its attempts first, so nothing reports into a deleted run.
        api.engine
            .set_run_state(&run.key(), RunState::Failed)
            .await
            .map_err(engine_problem)?;
    }
    let key = run.key();
    api.engine
        .datastore()
        .delete_run(&key)
        .await
        .map_err(datastore_problem)?;
    let _ = api.engine.xcom().delete_for_run(&key).await;
    let _ = api.engine.logs().delete_for_run(&key).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearBody {
    #[serde(default = "yes")]
    dry_run: bool,
    #[serde(default)]
    only_failed: bool,
    #[serde(default)]
    run_on_latest_version: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear`: a dry run (the default) lists
/// the task instances that would be cleared; otherwise clears them and returns the run.
pub async fn clear(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let body: ClearBody = api.json(body).await?;
    if body.run_on_latest_version {
        return Err(Problem::bad_request(
            "run_on_latest_version is not supported: a cleared run keeps its DAG version",
        ));
    }
    let run = load_run(&api, &dag_id, &run_id).await?;
    let req = ClearRequest {
        selection: Selection::default(),
        only_failed: body.only_failed,
        dry_run: body.dry_run,
    };
    let tis = api
        .engine
        .clear_task_instances(&run.key(), &req)
        .await
        .map_err(engine_problem)?;
    if body.dry_run {
        return Ok(Json(task_instances::collection_json(&api, tis).await?));
    }
    let run = load_run(&api, &dag_id, &run_id).await?;
    Ok(Json(run_json(&api, &run, &mut Versions::default()).await?))
}
