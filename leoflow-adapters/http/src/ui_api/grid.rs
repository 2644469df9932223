//! The grid view: `GET /ui/grid/runs/{dag_id}` (the run columns),
//! `GET /ui/grid/structure/{dag_id}` (the task rows, nested by task group) and
//! `GET /ui/grid/ti_summaries/{dag_id}` (one NDJSON line of cell states per run, with
//! mapped tasks and groups summarised by their children's states).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leoflow_core::plan::DagPlan;
use leoflow_ports::datastore::RunFilter;
use leoflow_ports::run::{DagRun, RunKey, TaskInstance};
use leoflow_ports::state::TaskState;
use serde_json::{json, Value};

use super::duration;
use super::task_groups::{tree, Node};
use crate::problem::{datastore_problem, engine_problem, Problem};
use crate::rest_api::dag_runs::Versions;
use crate::rest_api::dags::load;
use crate::rest_api::query::{order_field, Params, Range};
use crate::rest_api::{shapes, Api};

/// The latest version's plan of a DAG (404 when the DAG does not exist).
pub async fn latest_plan(api: &Api, dag_id: &str) -> Result<Arc<DagPlan>, Problem> {
    let (rec, _) = load(api, dag_id).await?;
    api.engine
        .plan(dag_id, rec.latest_version)
        .await
        .map_err(engine_problem)
}

/// Whether a run passes the grid's filters.
fn run_filter(q: &Params) -> Result<impl Fn(&DagRun) -> bool, Problem> {
    let run_after = Range::from_params(q, "run_after")?;
    let types: Vec<String> = q.all("run_type").into_iter().map(str::to_string).collect();
    let states: Vec<String> = q.all("state").into_iter().map(str::to_string).collect();
    let users: Vec<String> = q
        .all("triggering_user")
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(move |r: &DagRun| {
        run_after.contains(Some(r.run_after))
            && (types.is_empty() || types.iter().any(|t| t == r.run_type.as_str()))
            && (states.is_empty() || states.iter().any(|s| s == r.state.as_str()))
            && (users.is_empty()
                || r.triggered_by
                    .as_ref()
                    .is_some_and(|u| users.iter().any(|x| x == u)))
    })
}

/// `GET /ui/grid/runs/{dag_id}`: newest first unless `order_by` says otherwise.
pub async fn runs(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    load(&api, &dag_id).await?;
    let page = q.page()?;
    let keep = run_filter(&q)?;
    let filter = RunFilter {
        dag_id: Some(dag_id.clone()),
        ..RunFilter::default()
    };
    let (mut runs, _) = api
        .engine
        .datastore()
        .list_runs(&filter)
        .await
        .map_err(datastore_problem)?;
    runs.retain(|r| keep(r));
    if let Some(raw) = q.one("order_by") {
        let (field, desc) = order_field(
            raw,
            &[
                "run_after",
                "logical_date",
                "start_date",
                "end_date",
                "id",
                "run_id",
            ],
        )?;
        runs.sort_by(|a, b| {
            let k = |r: &DagRun| match field.as_str() {
                "logical_date" => r.logical_date,
                "start_date" => r.started_at,
                "end_date" => r.ended_at,
                _ => Some(r.run_after),
            };
            k(a).cmp(&k(b)).then_with(|| a.run_id.cmp(&b.run_id))
        });
        if desc {
            runs.reverse();
        }
    }
    let now = api.engine.clock().now();
    let mut versions = Versions::default();
    let mut out = Vec::new();
    for r in page.apply(runs) {
        let v = versions.get(&api, &r.dag_id, r.version_number).await?;
        out.push(json!({
            "dag_id": r.dag_id,
            "run_id": r.run_id,
            "queued_at": shapes::ts(r.queued_at),
            "start_date": shapes::ts_opt(r.started_at),
            "end_date": shapes::ts_opt(r.ended_at),
            "run_after": shapes::ts(r.run_after),
            "state": r.state.as_str(),
            "run_type": r.run_type.as_str(),
            "dag_versions": v.map(shapes::version).into_iter().collect::<Vec<_>>(),
            "has_missed_deadline": false,
            "duration": duration(r.started_at, r.ended_at, now).as_f64().unwrap_or(0.0),
        }));
    }
    Ok(Json(Value::Array(out)))
}

fn grid_node(plan: &DagPlan, n: &Node) -> Value {
    let spec = &plan.spec;
    match n.task {
        Some(i) => {
            let t = &spec.tasks[i];
            json!({
                "id": n.id,
                "label": n.label,
                "children": null,
                "is_mapped": t.map.is_some(),
                "setup_teardown_type": setup_teardown(t.is_setup, t.is_teardown),
            })
        }
        None => json!({
            "id": n.id,
            "label": n.label,
            "children": n.children.iter().map(|c| grid_node(plan, c)).collect::<Vec<_>>(),
            "is_mapped": false,
            "setup_teardown_type": null,
        }),
    }
}

pub fn setup_teardown(setup: bool, teardown: bool) -> Value {
    if setup {
        json!("setup")
    } else if teardown {
        json!("teardown")
    } else {
        Value::Null
    }
}

/// `GET /ui/grid/structure/{dag_id}`: the latest version's tasks.
pub async fn structure(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let plan = latest_plan(&api, &dag_id).await?;
    let nodes: Vec<Value> = tree(&plan.spec, &plan.order)
        .iter()
        .map(|n| grid_node(&plan, n))
        .collect();
    Ok(Json(Value::Array(nodes)))
}

/// Airflow's order of precedence when one cell stands for several instances: the first
/// state present in this list is the cell's state.
const PRECEDENCE: [TaskState; 11] = [
    TaskState::Failed,
    TaskState::UpstreamFailed,
    TaskState::UpForRetry,
    TaskState::Queued,
    TaskState::Scheduled,
    TaskState::Deferred,
    TaskState::Running,
    TaskState::None,
    TaskState::Success,
    TaskState::Skipped,
    TaskState::Removed,
];

fn state_key(s: TaskState) -> &'static str {
    match s {
        TaskState::None => "no_status",
        other => other.as_str(),
    }
}

/// One `LightGridTaskInstanceSummary` for `tis` (one unmapped instance, the instances of
/// a mapped task, or every instance inside a group).
fn summary(id: &str, label: &str, tis: &[&TaskInstance], single: bool, version: u32) -> Value {
    let state = if single {
        tis.first().map_or(TaskState::None, |t| t.state)
    } else {
        PRECEDENCE
            .into_iter()
            .find(|s| tis.iter().any(|t| t.state == *s))
            .unwrap_or(TaskState::None)
    };
    let child_states = (!single).then(|| {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for t in tis {
            *counts.entry(state_key(t.state)).or_default() += 1;
        }
        counts
    });
    json!({
        "task_id": id,
        "task_display_name": label,
        "state": shapes::task_state(state),
        "child_states": child_states,
        "min_start_date": shapes::ts_opt(tis.iter().filter_map(|t| t.started_at).min()),
        "max_end_date": shapes::ts_opt(tis.iter().filter_map(|t| t.ended_at).max()),
        "dag_version_number": version,
    })
}

fn summaries(
    plan: &DagPlan,
    nodes: &[Node],
    by_task: &HashMap<&str, Vec<&TaskInstance>>,
    version: u32,
    out: &mut Vec<Value>,
) {
    for n in nodes {
        if let Some(i) = n.task {
            let t = &plan.spec.tasks[i];
            let tis = by_task.get(t.task_id.as_str()).cloned().unwrap_or_default();
            let single = t.map.is_none();
            out.push(summary(&n.id, &n.label, &tis, single, version));
        } else {
            let tis: Vec<&TaskInstance> = n
                .tasks()
                .into_iter()
                .filter_map(|i| by_task.get(plan.spec.tasks[i].task_id.as_str()))
                .flatten()
                .copied()
                .collect();
            out.push(summary(&n.id, &n.label, &tis, false, version));
            summaries(plan, &n.children, by_task, version, out);
        }
    }
}

/// `GET /ui/grid/ti_summaries/{dag_id}?run_ids=…`: one JSON line per requested run that
/// exists, in request order.
pub async fn ti_summaries(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
) -> Result<Response, Problem> {
    let q = Params::from(q);
    load(&api, &dag_id).await?;
    let store = api.engine.datastore();
    let mut body = String::new();
    for run_id in q.all("run_ids") {
        let key = RunKey::new(&dag_id, run_id);
        let Some(run) = store.get_run(&key).await.map_err(datastore_problem)? else {
            continue;
        };
        let plan = api
            .engine
            .plan(&dag_id, run.version_number)
            .await
            .map_err(engine_problem)?;
        let tis = store
            .task_instances(&key)
            .await
            .map_err(datastore_problem)?;
        let mut by_task: HashMap<&str, Vec<&TaskInstance>> = HashMap::new();
        for ti in &tis {
            by_task.entry(ti.key.task_id.as_str()).or_default().push(ti);
        }
        let mut cells = Vec::new();
        summaries(
            &plan,
            &tree(&plan.spec, &plan.order),
            &by_task,
            run.version_number,
            &mut cells,
        );
        let line = json!({"run_id": run.run_id, "dag_id": dag_id, "task_instances": cells});
        body.push_str(&line.to_string());
        body.push('\n');
    }
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

#[cfg(test)]
mod tests {
    use leoflow_ports::run::{RunKey, TaskKey};

    use super::*;

    fn ti(map_index: i32, state: TaskState) -> TaskInstance {
        let mut t = TaskInstance::new(TaskKey::new(&RunKey::new("d", "r"), "t", map_index), "x", 0);
        t.state = state;
        t
    }

    fn cell(states: &[TaskState], single: bool) -> Value {
        let tis: Vec<TaskInstance> = (0..).zip(states).map(|(i, s)| ti(i, *s)).collect();
        let refs: Vec<&TaskInstance> = tis.iter().collect();
        summary("t", "t", &refs, single, 1)
    }

    #[test]
    fn a_cell_of_many_instances_shows_the_most_urgent_state_and_the_counts() {
        use TaskState::{Failed, None, Running, Success};
        let c = cell(&[Success, Failed, Running, Success], false);
        assert_eq!(c["state"], "failed");
        assert_eq!(
            c["child_states"],
            json!({"failed": 1, "running": 1, "success": 2})
        );
        assert_eq!(cell(&[Success, None], false)["state"], Value::Null);
        assert_eq!(cell(&[Success, Running], false)["state"], "running");
        assert_eq!(cell(&[], false)["child_states"], json!({}));
    }

    #[test]
    fn an_unmapped_task_is_its_instance() {
        let c = cell(&[TaskState::UpForRetry], true);
        assert_eq!(c["state"], "up_for_retry");
        assert_eq!(c["child_states"], Value::Null);
        assert_eq!(c["dag_version_number"], 1);
        assert_eq!(cell(&[], true)["state"], Value::Null);
    }
}
