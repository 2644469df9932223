//! `GET /ui/dags`, the DAG list page: each DAG in Airflow's `DAGWithLatestDagRunsResponse`
//! shape with its most recent runs, filtered and ordered the way the page asks; and
//! `GET /ui/dags/{dag_id}/latest_run`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::RunFilter;
use leoflow_ports::run::DagRun;
use leoflow_ports::version::DagRecord;
use serde_json::{json, Value};

use super::light_run;
use crate::problem::{datastore_problem, Problem};
use crate::rest_api::dags::load;
use crate::rest_api::query::{like, order_field, Params};
use crate::rest_api::{shapes, Api};

/// How many recent runs each DAG row carries when the page does not say.
const DEFAULT_RUNS: usize = 10;

/// One row before rendering.
struct Row {
    rec: DagRecord,
    spec: Arc<DagSpec>,
    runs: Vec<DagRun>,
}

impl Row {
    fn latest(&self) -> Option<&DagRun> {
        self.runs.first()
    }
}

async fn recent_runs(api: &Api, dag_id: &str, n: usize) -> Result<Vec<DagRun>, Problem> {
    let filter = RunFilter {
        dag_id: Some(dag_id.to_string()),
        states: Vec::new(),
        limit: Some(n.max(1)),
        offset: 0,
    };
    let (runs, _) = api
        .engine
        .datastore()
        .list_runs(&filter)
        .await
        .map_err(datastore_problem)?;
    Ok(runs)
}

/// Whether the row passes the page's filters.
fn keep(q: &Params, row: &Row) -> Result<bool, Problem> {
    let spec = &row.spec;
    if q.flag("paused")?.is_some_and(|p| p != row.rec.is_paused)
        || q.flag("is_favorite")? == Some(true)
        || q.flag("has_import_errors")? == Some(true)
        || q.flag("has_asset_schedule")? == Some(true)
        || q.flag("has_pending_actions")? == Some(true)
    {
        return Ok(false);
    }
    if let Some(p) = q
        .one("dag_id_pattern")
        .or(q.one("dag_display_name_pattern"))
    {
        if !like(p, &row.rec.dag_id) {
            return Ok(false);
        }
    }
    let ids = q.all("dag_ids");
    if !ids.is_empty() && !ids.contains(&row.rec.dag_id.as_str()) {
        return Ok(false);
    }
    let tags = q.all("tags");
    let has = |t: &&str| spec.tags.iter().any(|s| s == t);
    let tags_ok = tags.is_empty()
        || if q.one("tags_match_mode") == Some("all") {
            tags.iter().all(has)
        } else {
            tags.iter().any(has)
        };
    let owners = q.all("owners");
    let owner = spec.owner.as_deref().unwrap_or("airflow");
    let states = q.all("last_dag_run_state");
    let state_ok = states.is_empty()
        || row
            .latest()
            .is_some_and(|r| states.contains(&r.state.as_str()));
    Ok(tags_ok && (owners.is_empty() || owners.contains(&owner)) && state_ok)
}

fn sort(rows: &mut [Row], order: Option<&str>) -> Result<(), Problem> {
    let Some(raw) = order else {
        return Ok(());
    };
    let (field, desc) = order_field(
        raw,
        &[
            "dag_id",
            "dag_display_name",
            "last_run_state",
            "last_run_start_date",
            "next_dagrun",
        ],
    )?;
    match field.as_str() {
        "last_run_state" => rows.sort_by(|a, b| {
            let s = |r: &Row| r.latest().map(|r| r.state.as_str());
            s(a).cmp(&s(b))
                .then_with(|| a.rec.dag_id.cmp(&b.rec.dag_id))
        }),
        "last_run_start_date" => rows.sort_by(|a, b| {
            let s = |r: &Row| r.latest().and_then(|r| r.started_at);
            s(a).cmp(&s(b))
                .then_with(|| a.rec.dag_id.cmp(&b.rec.dag_id))
        }),
        _ => rows.sort_by(|a, b| a.rec.dag_id.cmp(&b.rec.dag_id)),
    }
    if desc {
        rows.reverse();
    }
    Ok(())
}

/// `GET /ui/dags`.
pub async fn list(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let runs_limit = q
        .parsed::<usize>("dag_runs_limit", "a non-negative integer")?
        .unwrap_or(DEFAULT_RUNS);
    if q.flag("exclude_stale")? == Some(false) {
        return Err(Problem::bad_request(
            "exclude_stale=false is not supported: Leoflow lists active DAGs only",
        ));
    }
    let records = api
        .engine
        .datastore()
        .list_dags()
        .await
        .map_err(datastore_problem)?;
    let mut rows = Vec::new();
    for rec in records.into_iter().filter(|r| r.is_active) {
        let (rec, spec) = load(&api, &rec.dag_id).await?;
        let runs = recent_runs(&api, &rec.dag_id, runs_limit).await?;
        let row = Row { rec, spec, runs };
        if keep(&q, &row)? {
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| a.rec.dag_id.cmp(&b.rec.dag_id));
    sort(&mut rows, q.one("order_by"))?;
    let total = rows.len();
    let now = api.engine.clock().now();
    let items = page
        .apply(rows)
        .into_iter()
        .map(|row| {
            let mut v = shapes::dag(&row.rec, &row.spec);
            let runs: Vec<Value> = row
                .runs
                .iter()
                .take(runs_limit)
                .map(|r| light_run(r, now))
                .collect();
            if let Value::Object(m) = &mut v {
                m.insert("asset_expression".into(), Value::Null);
                m.insert("latest_dag_runs".into(), Value::Array(runs));
                m.insert("pending_actions".into(), json!([]));
                m.insert("is_favorite".into(), json!(false));
            }
            v
        })
        .collect();
    Ok(Json(shapes::collection("dags", items, total)))
}

/// `GET /ui/dags/{dag_id}/latest_run`: the newest run, or `null` when there is none.
pub async fn latest_run(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    load(&api, &dag_id).await?;
    let runs = recent_runs(&api, &dag_id, 1).await?;
    let now = api.engine.clock().now();
    Ok(Json(
        runs.first().map_or(Value::Null, |r| light_run(r, now)),
    ))
}
