//! Task instances: list (`~` for every DAG or run), the batch listing, get (unmapped or by
//! map index), mark state (with upstream/downstream, and its dry run), tries, and
//! `POST /api/v2/dags/{dag_id}/clearTaskInstances`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use chrono::{DateTime, Utc};
use leoflow_core::commands::{ClearRequest, Selection};
use leoflow_ports::datastore::{RunFilter, TaskFilter};
use leoflow_ports::run::{DagRun, RunKey, TaskInstance, TaskKey};
use leoflow_ports::state::TaskState;
use serde::Deserialize;
use serde_json::Value;

use super::dag_runs::{load_run, Versions};
use super::dags::load;
use super::query::{order_field, Page, Params, Range};
use super::{shapes, Api};
use crate::problem::{datastore_problem, engine_problem, Problem};

const TI_ORDER: &[&str] = &[
    "id",
    "task_id",
    "map_index",
    "state",
    "start_date",
    "end_date",
    "try_number",
    "dag_id",
    "run_id",
    "run_after",
];

/// Each run's `run_after`, for the filters and the order that use it.
type RunAfter = HashMap<(String, String), DateTime<Utc>>;

/// `TaskInstanceCollectionResponse` of `tis` (every one of them, no paging).
pub async fn collection_json(api: &Api, tis: Vec<TaskInstance>) -> Result<Value, Problem> {
    let total = tis.len();
    Ok(shapes::collection(
        "task_instances",
        render(api, &tis).await?,
        total,
    ))
}

/// `TaskInstanceResponse`s, looking each run and version up once.
async fn render(api: &Api, tis: &[TaskInstance]) -> Result<Vec<Value>, Problem> {
    let mut runs: HashMap<RunKey, DagRun> = HashMap::new();
    let mut versions = Versions::default();
    let mut out = Vec::with_capacity(tis.len());
    for ti in tis {
        let key = ti.key.run();
        if !runs.contains_key(&key) {
            let run = load_run(api, &key.dag_id, &key.run_id).await?;
            runs.insert(key.clone(), run);
        }
        let run = &runs[&key];
        let v = versions.get(api, &run.dag_id, run.version_number).await?;
        out.push(shapes::task_instance(ti, run, v));
    }
    Ok(out)
}

fn parse_state(s: &str) -> Result<TaskState, String> {
    // Airflow's `no_status` filter is our `none`.
    match s {
        "no_status" | "none" | "null" => Ok(TaskState::None),
        other => other.parse().map_err(|e| format!("{e}")),
    }
}

fn sort(tis: &mut [TaskInstance], order: Option<(String, bool)>, run_after: Option<&RunAfter>) {
    let Some((field, desc)) = order else {
        return;
    };
    tis.sort_by(|a, b| {
        let k = |t: &TaskInstance| match field.as_str() {
            "run_after" => (
                String::new(),
                run_after.and_then(|m| {
                    m.get(&(t.key.dag_id.clone(), t.key.run_id.clone()))
                        .copied()
                }),
                t.key.clone(),
            ),
            "state" => (t.state.as_str().to_string(), None, t.key.clone()),
            "start_date" => (String::new(), t.started_at, t.key.clone()),
            "end_date" => (String::new(), t.ended_at, t.key.clone()),
            "try_number" => (format!("{:010}", t.try_number), None, t.key.clone()),
            "map_index" => (
                format!("{:011}", i64::from(t.key.map_index) + 1),
                None,
                t.key.clone(),
            ),
            _ => (String::new(), None, t.key.clone()),
        };
        k(a).cmp(&k(b))
    });
    if desc {
        tis.reverse();
    }
}

/// Instances matching the filter, filtered further by `keep`, ordered and paged.
async fn query(
    api: &Api,
    filter: TaskFilter,
    order: Option<(String, bool)>,
    page: Page,
    run_after: Option<&RunAfter>,
    keep: impl Fn(&TaskInstance) -> bool,
) -> Result<Json<Value>, Problem> {
    let (mut tis, _) = api
        .engine
        .datastore()
        .list_task_instances(&filter)
        .await
        .map_err(datastore_problem)?;
    tis.retain(|t| keep(t));
    sort(&mut tis, order, run_after);
    let total = tis.len();
    let items = render(api, &page.apply(tis)).await?;
    Ok(Json(shapes::collection("task_instances", items, total)))
}

fn wildcard(v: &str) -> Option<String> {
    (v != "~").then(|| v.to_string())
}

/// `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`.
pub async fn list(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(TI_ORDER)?;
    let states = q
        .all("state")
        .into_iter()
        .map(|s| {
            parse_state(s)
                .map_err(|e| Problem::bad_request(format!("query parameter `state`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let map_index: Option<i32> = q.parsed("map_index", "an integer")?;
    let try_numbers: Vec<u32> = q.parsed_all("try_number", "a non-negative integer")?;
    let started = Range::from_params(&q, "start_date")?;
    let ended = Range::from_params(&q, "end_date")?;
    let run_after = Range::from_params(&q, "run_after")?;
    if dag_id != "~" && run_id != "~" {
        load_run(&api, &dag_id, &run_id).await?;
    } else if dag_id != "~" {
        load(&api, &dag_id).await?;
    }
    // The UI's grid bounds and orders task instances by their run's `run_after`.
    let by_run_after = order.as_ref().is_some_and(|(f, _)| f == "run_after");
    let runs_after: Option<RunAfter> = if run_after == Range::default() && !by_run_after {
        None
    } else {
        let filter = RunFilter {
            dag_id: wildcard(&dag_id),
            ..RunFilter::default()
        };
        let (runs, _) = api
            .engine
            .datastore()
            .list_runs(&filter)
            .await
            .map_err(datastore_problem)?;
        Some(
            runs.into_iter()
                .map(|r| ((r.dag_id, r.run_id), r.run_after))
                .collect(),
        )
    };
    let filter = TaskFilter {
        dag_id: wildcard(&dag_id),
        run_id: wildcard(&run_id),
        task_id: q.one("task_id").map(str::to_string),
        states,
        limit: None,
        offset: 0,
    };
    query(&api, filter, order, page, runs_after.as_ref(), |t| {
        runs_after.as_ref().is_none_or(|m| {
            run_after.contains(
                m.get(&(t.key.dag_id.clone(), t.key.run_id.clone()))
                    .copied(),
            )
        }) && map_index.is_none_or(|m| t.key.map_index == m)
            && (try_numbers.is_empty() || try_numbers.contains(&t.try_number))
            && started.contains(t.started_at)
            && ended.contains(t.ended_at)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    #[serde(default)]
    dag_ids: Option<Vec<String>>,
    #[serde(default)]
    dag_run_ids: Option<Vec<String>>,
    #[serde(default)]
    task_ids: Option<Vec<String>>,
    #[serde(default)]
    state: Option<Vec<Option<String>>>,
    #[serde(default)]
    page_offset: usize,
    #[serde(default = "default_batch_limit")]
    page_limit: usize,
    #[serde(default)]
    order_by: Option<String>,
}

fn default_batch_limit() -> usize {
    100
}

/// `POST /api/v2/dags/~/dagRuns/~/taskInstances/list`.
pub async fn batch(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let body: BatchBody = api.json(body).await?;
    let order = body
        .order_by
        .as_deref()
        .map(|o| order_field(o, TI_ORDER))
        .transpose()?;
    let states = body
        .state
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            parse_state(s.as_deref().unwrap_or("none"))
                .map_err(|e| Problem::bad_request(format!("`state`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dag_ids = body.dag_ids.unwrap_or_default();
    let run_ids = body.dag_run_ids.unwrap_or_default();
    let task_ids = body.task_ids.unwrap_or_default();
    let one = |path: &str, list: &[String]| {
        wildcard(path).or_else(|| (list.len() == 1).then(|| list[0].clone()))
    };
    let filter = TaskFilter {
        dag_id: one(&dag_id, &dag_ids),
        run_id: one(&run_id, &run_ids),
        task_id: (task_ids.len() == 1).then(|| task_ids[0].clone()),
        states,
        limit: None,
        offset: 0,
    };
    query(
        &api,
        filter,
        order,
        Page::new(body.page_limit, body.page_offset),
        None,
        |t| {
            (dag_ids.is_empty() || dag_ids.contains(&t.key.dag_id))
                && (run_ids.is_empty() || run_ids.contains(&t.key.run_id))
                && (task_ids.is_empty() || task_ids.contains(&t.key.task_id))
        },
    )
    .await
}

/// The instance, or a 404 naming it.
async fn load_ti(api: &Api, key: &TaskKey) -> Result<TaskInstance, Problem> {
    api.engine
        .datastore()
        .get_task_instance(key)
        .await
        .map_err(datastore_problem)?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "task instance {key} not found; list the run's task instances with GET /api/v2/dags/{}/dagRuns/{}/taskInstances",
                key.dag_id, key.run_id
            ))
        })
}

async fn one(api: &Api, key: TaskKey) -> Result<Json<Value>, Problem> {
    let ti = load_ti(api, &key).await?;
    let mut items = render(api, &[ti]).await?;
    Ok(Json(items.pop().unwrap_or(Value::Null)))
}

/// `GET …/taskInstances/{task_id}` (the unmapped instance).
pub async fn get(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, Problem> {
    let run = RunKey::new(dag_id, run_id);
    one(&api, TaskKey::new(&run, task_id, -1)).await
}

/// `GET …/taskInstances/{task_id}/{map_index}`.
pub async fn get_mapped(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id, map_index)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, Problem> {
    let m: i32 = map_index.parse().map_err(|_| {
        Problem::bad_request(format!("map_index must be an integer, got {map_index:?}"))
    })?;
    let run = RunKey::new(dag_id, run_id);
    one(&api, TaskKey::new(&run, task_id, m)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    new_state: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    include_upstream: bool,
    #[serde(default)]
    include_downstream: bool,
    #[serde(default)]
    include_future: bool,
    #[serde(default)]
    include_past: bool,
}

async fn patch_inner(
    api: &Api,
    dag_id: String,
    run_id: String,
    task_id: String,
    q: RawQuery,
    body: Body,
    dry_run: bool,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let map_index: Option<i32> = q.parsed("map_index", "an integer")?;
    let mask = q.all("update_mask");
    if let Some(bad) = mask.iter().find(|m| !matches!(**m, "new_state" | "note")) {
        return Err(Problem::bad_request(format!(
            "update_mask {bad:?} is not supported; use new_state and/or note"
        )));
    }
    let wants = |f: &str| mask.is_empty() || mask.contains(&f);
    let body: PatchBody = api.json(body).await?;
    if body.include_future || body.include_past {
        return Err(Problem::bad_request(
            "include_future and include_past are not supported; mark each run separately",
        ));
    }
    let run = RunKey::new(dag_id, run_id);
    let key = TaskKey::new(&run, task_id.clone(), map_index.unwrap_or(-1));
    let ti = load_ti(api, &key).await?;
    let mut changed = vec![ti.clone()];
    if let Some(state) = body.new_state.as_deref().filter(|_| wants("new_state")) {
        let state: TaskState = state.parse().map_err(|_| {
            Problem::bad_request(format!(
                "new_state must be success, failed or skipped, got {state:?}"
            ))
        })?;
        let selection = Selection {
            task_ids: vec![task_id],
            map_index,
            include_downstream: body.include_downstream,
            include_upstream: body.include_upstream,
        };
        changed = api
            .engine
            .set_task_instance_state(&run, &selection, state, dry_run)
            .await
            .map_err(engine_problem)?;
    }
    if !dry_run && wants("note") && (body.note.is_some() || mask.contains(&"note")) {
        api.engine
            .datastore()
            .set_task_note(&key, body.note.clone())
            .await
            .map_err(datastore_problem)?;
        if changed.is_empty() {
            changed.push(load_ti(api, &key).await?);
        } else {
            for t in changed.iter_mut().filter(|t| t.key == key) {
                t.note.clone_from(&body.note);
            }
        }
    }
    Ok(Json(collection_json(api, changed).await?))
}

/// `PATCH …/taskInstances/{task_id}`: `new_state` and/or `note`; answers the changed
/// instances.
pub async fn patch(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    q: RawQuery,
    body: Body,
) -> Result<Json<Value>, Problem> {
    patch_inner(&api, dag_id, run_id, task_id, q, body, false).await
}

/// `PATCH …/taskInstances/{task_id}/dry_run`: what `patch` would change.
pub async fn patch_dry_run(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    q: RawQuery,
    body: Body,
) -> Result<Json<Value>, Problem> {
    patch_inner(&api, dag_id, run_id, task_id, q, body, true).await
}

async fn tries_of(api: &Api, key: &TaskKey) -> Result<Vec<TaskInstance>, Problem> {
    load_ti(api, key).await?;
    api.engine
        .datastore()
        .tries(key)
        .await
        .map_err(datastore_problem)
}

/// `GET …/taskInstances/{task_id}/tries`.
pub async fn tries(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let m: i32 = q.parsed("map_index", "an integer")?.unwrap_or(-1);
    let key = TaskKey::new(&RunKey::new(dag_id, run_id), task_id, m);
    let tries = tries_of(&api, &key).await?;
    let run = load_run(&api, &key.dag_id, &key.run_id).await?;
    let mut versions = Versions::default();
    let v = versions.get(&api, &run.dag_id, run.version_number).await?;
    let total = tries.len();
    let items = tries
        .iter()
        .map(|t| shapes::task_instance_try(t, v))
        .collect();
    Ok(Json(shapes::collection("task_instances", items, total)))
}

/// `GET …/taskInstances/{task_id}/tries/{task_try_number}`.
pub async fn try_detail(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id, raw_try)): Path<(String, String, String, String)>,
    query: RawQuery,
) -> Result<Json<Value>, Problem> {
    let query = Params::from(query);
    let map_index: i32 = query.parsed("map_index", "an integer")?.unwrap_or(-1);
    let try_number: u32 = raw_try.parse().map_err(|_| {
        Problem::bad_request(format!(
            "task_try_number must be a positive integer, got {raw_try:?}"
        ))
    })?;
    let key = TaskKey::new(&RunKey::new(dag_id, run_id), task_id, map_index);
    let tries = tries_of(&api, &key).await?;
    let found = tries
        .iter()
        .find(|t| t.try_number == try_number)
        .ok_or_else(|| {
            Problem::not_found(format!("task instance {key} has no try {try_number}"))
        })?;
    let run = load_run(&api, &key.dag_id, &key.run_id).await?;
    let mut versions = Versions::default();
    let v = versions.get(&api, &run.dag_id, run.version_number).await?;
    Ok(Json(shapes::task_instance_try(found, v)))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TaskRef {
    Id(String),
    /// `[task_id, map_index]`, as the 3.2.1 UI sends.
    Mapped(String, i32),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearBody {
    #[serde(default = "yes")]
    dry_run: bool,
    #[serde(default = "yes")]
    only_failed: bool,
    #[serde(default)]
    only_running: bool,
    #[serde(default = "yes")]
    reset_dag_runs: bool,
    #[serde(default)]
    task_ids: Option<Vec<TaskRef>>,
    #[serde(default)]
    dag_run_id: Option<String>,
    #[serde(default)]
    include_upstream: bool,
    #[serde(default)]
    include_downstream: bool,
    #[serde(default)]
    include_future: bool,
    #[serde(default)]
    include_past: bool,
    #[serde(default)]
    run_on_latest_version: bool,
    #[serde(default)]
    prevent_running_task: bool,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
}

fn yes() -> bool {
    true
}

/// `POST /api/v2/dags/{dag_id}/clearTaskInstances`: clears task instances of one run
/// (`dag_run_id`), with their upstream/downstream; a dry run (the default) only lists them.
pub async fn clear(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let body: ClearBody = api.json(body).await?;
    let unsupported = [
        (body.include_future, "include_future"),
        (body.include_past, "include_past"),
        (body.only_running, "only_running"),
        (body.run_on_latest_version, "run_on_latest_version"),
        (!body.reset_dag_runs, "reset_dag_runs=false"),
        (body.start_date.is_some(), "start_date"),
        (body.end_date.is_some(), "end_date"),
    ];
    if let Some((_, name)) = unsupported.iter().find(|(on, _)| *on) {
        return Err(Problem::bad_request(format!(
            "{name} is not supported by Leoflow; clear one run at a time with dag_run_id"
        )));
    }
    // Running instances are never cleared, so `prevent_running_task` always holds.
    let _ = body.prevent_running_task;
    let Some(run_id) = body.dag_run_id else {
        return Err(Problem::bad_request(
            "dag_run_id is required: Leoflow clears task instances of one run at a time",
        ));
    };
    let run = load_run(&api, &dag_id, &run_id).await?;
    let mut task_ids = Vec::new();
    let mut map_index = None;
    for r in body.task_ids.unwrap_or_default() {
        match r {
            TaskRef::Id(id) => task_ids.push(id),
            TaskRef::Mapped(id, m) => {
                task_ids.push(id);
                map_index = Some(m);
            }
        }
    }
    let req = ClearRequest {
        selection: Selection {
            task_ids,
            map_index,
            include_downstream: body.include_downstream,
            include_upstream: body.include_upstream,
        },
        only_failed: body.only_failed,
        dry_run: body.dry_run,
    };
    let tis = api
        .engine
        .clear_task_instances(&run.key(), &req)
        .await
        .map_err(engine_problem)?;
    Ok(Json(collection_json(&api, tis).await?))
}
