//! Everything the scheduler precomputes once per DAG version: the task graph, its
//! topological order, the parsed schedule, each task's retry policy and the leaf tasks
//! that decide a run's final state.

use std::sync::Arc;

use leoflow_ports::dag::DagSpec;
use leoflow_ports::version::DagVersion;

use crate::graph::{TaskGraph, TaskIdx};
use crate::retry::RetryPolicy;
use crate::schedule::Schedule;

/// A DAG version ready for scheduling.
#[derive(Debug, Clone)]
pub struct DagPlan {
    pub version_number: u32,
    pub spec: Arc<DagSpec>,
    pub graph: TaskGraph,
    pub order: Vec<TaskIdx>,
    pub schedule: Schedule,
    pub policies: Vec<RetryPolicy>,
    /// Tasks whose outcome decides the run's state (Airflow's leaves; a teardown leaf is
    /// replaced by its work upstreams).
    pub leaves: Vec<TaskIdx>,
}

/// A stored version that cannot be scheduled (it bypassed validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DAG {dag_id:?} version {version_number} cannot be scheduled: {reason}")]
pub struct PlanError {
    pub dag_id: String,
    pub version_number: u32,
    pub reason: String,
}

impl DagPlan {
    pub fn new(version: &DagVersion) -> Result<DagPlan, PlanError> {
        Self::from_spec(version.spec.clone(), version.version_number)
    }

    pub fn from_spec(spec: Arc<DagSpec>, version_number: u32) -> Result<DagPlan, PlanError> {
        let err = |reason: String| PlanError {
            dag_id: spec.dag_id.clone(),
            version_number,
            reason,
        };
        let graph = TaskGraph::new(&spec);
        let order = graph
            .topological_order()
            .map_err(|_| err("it has a dependency cycle".into()))?;
        let schedule = Schedule::parse(spec.schedule.as_deref()).map_err(|e| err(e.to_string()))?;
        let defaults = spec.defaults();
        let policies = spec
            .tasks
            .iter()
            .map(|t| RetryPolicy::of(t, &defaults))
            .collect();
        let leaves = leaves(&spec, &graph);
        Ok(DagPlan {
            version_number,
            spec,
            graph,
            order,
            schedule,
            policies,
            leaves,
        })
    }
}

fn leaves(spec: &DagSpec, graph: &TaskGraph) -> Vec<TaskIdx> {
    let mut out = Vec::new();
    for i in 0..graph.len() {
        if !graph.downstream(i).is_empty() {
            continue;
        }
        if spec.tasks[i].is_teardown {
            out.extend(graph.upstream(i).iter().copied().filter(|&u| {
                let t = &spec.tasks[u];
                !t.is_setup && !t.is_teardown
            }));
        } else {
            out.push(i);
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        (0..graph.len()).collect()
    } else {
        out
    }
}
