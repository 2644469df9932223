//! `GET /ui/structure/structure_data`, the graph view: the tasks of a DAG version as
//! nodes (nested by task group) and their dependencies as edges, optionally narrowed to a
//! root task with its upstream and/or downstream tasks.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::Json;
use leoflow_core::plan::DagPlan;
use serde_json::{json, Value};

use super::grid::{latest_plan, setup_teardown};
use super::task_groups::{tree, Node};
use crate::problem::{engine_problem, Problem};
use crate::rest_api::query::Params;
use crate::rest_api::Api;

fn node(plan: &DagPlan, n: &Node) -> Value {
    match n.task {
        Some(i) => {
            let t = &plan.spec.tasks[i];
            json!({
                "id": n.id,
                "label": n.label,
                "type": "task",
                "children": null,
                "is_mapped": t.map.is_some().then_some(true),
                "tooltip": null,
                "setup_teardown_type": setup_teardown(t.is_setup, t.is_teardown),
                "operator": t.operator.clone().unwrap_or_else(|| t.kind.as_str().to_string()),
                "asset_condition_type": null,
            })
        }
        None => json!({
            "id": n.id,
            "label": n.label,
            "type": "task",
            "children": n.children.iter().map(|c| node(plan, c)).collect::<Vec<_>>(),
            "is_mapped": null,
            "tooltip": null,
            "setup_teardown_type": null,
            "operator": null,
            "asset_condition_type": null,
        }),
    }
}

/// The tasks to draw: all of them, or `root` with its ancestors and/or descendants.
fn selection(plan: &DagPlan, q: &Params) -> Result<Vec<usize>, Problem> {
    let Some(root) = q.one("root").filter(|r| !r.is_empty()) else {
        return Ok(plan.order.clone());
    };
    let idx = plan.graph.idx(root).ok_or_else(|| {
        Problem::bad_request(format!(
            "root task {root:?} is not a task of DAG {:?}",
            plan.spec.dag_id
        ))
    })?;
    let mut keep: HashSet<usize> = HashSet::from([idx]);
    if q.flag("include_upstream")?.unwrap_or(false) {
        keep.extend(plan.graph.ancestors(idx));
    }
    if q.flag("include_downstream")?.unwrap_or(false) {
        keep.extend(plan.graph.descendants(idx));
    }
    Ok(plan
        .order
        .iter()
        .copied()
        .filter(|i| keep.contains(i))
        .collect())
}

/// `GET /ui/structure/structure_data?dag_id=`.
pub async fn structure_data(
    State(api): State<Arc<Api>>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let dag_id = q
        .one("dag_id")
        .ok_or_else(|| Problem::bad_request("query parameter `dag_id` is required"))?;
    let plan = match q.parsed::<u32>("version_number", "a DAG version number")? {
        Some(n) => {
            latest_plan(&api, dag_id).await?;
            api.engine.plan(dag_id, n).await.map_err(engine_problem)?
        }
        None => latest_plan(&api, dag_id).await?,
    };
    let chosen = selection(&plan, &q)?;
    let kept: HashSet<&str> = chosen
        .iter()
        .map(|&i| plan.spec.tasks[i].task_id.as_str())
        .collect();
    let nodes: Vec<Value> = tree(&plan.spec, &chosen)
        .iter()
        .map(|n| node(&plan, n))
        .collect();
    let mut edges = Vec::new();
    for &i in &chosen {
        let t = &plan.spec.tasks[i];
        for up in t.depends_on.iter().filter(|u| kept.contains(u.as_str())) {
            let up_setup = plan
                .graph
                .idx(up)
                .is_some_and(|u| plan.spec.tasks[u].is_setup);
            edges.push(json!({
                "source_id": up,
                "target_id": t.task_id,
                "is_setup_teardown": (up_setup && t.is_teardown).then_some(true),
                "label": null,
                "is_source_asset": null,
            }));
        }
    }
    Ok(Json(json!({"nodes": nodes, "edges": edges})))
}
