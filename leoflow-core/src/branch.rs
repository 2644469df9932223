//! Which downstream tasks a branching task skips, from its return value: `@task.branch`
//! follows the returned task ids, `@task.short_circuit` stops on a falsy value.

use std::collections::BTreeSet;

use leoflow_ports::dag::{BranchKind, DagSpec};
use serde_json::Value;

use crate::graph::{TaskGraph, TaskIdx};

/// The tasks to mark skipped because `task` returned `value`, or why the value is invalid.
pub fn skipped_by(
    spec: &DagSpec,
    graph: &TaskGraph,
    task: TaskIdx,
    value: Option<&Value>,
) -> Result<Vec<TaskIdx>, String> {
    let t = &spec.tasks[task];
    match t.branch {
        Some(BranchKind::Branch) => follow_only(spec, graph, task, value),
        Some(BranchKind::ShortCircuit) => {
            if value.is_some_and(is_truthy) {
                Ok(Vec::new())
            } else if t.ignore_downstream_trigger_rules.unwrap_or(true) {
                Ok(graph.descendants(task))
            } else {
                Ok(graph.downstream(task).to_vec())
            }
        }
        Some(BranchKind::LatestOnly) | None => Ok(Vec::new()),
    }
}

fn follow_only(
    spec: &DagSpec,
    graph: &TaskGraph,
    task: TaskIdx,
    value: Option<&Value>,
) -> Result<Vec<TaskIdx>, String> {
    let mut chosen = BTreeSet::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => {
            chosen.insert(id.as_str());
        }
        Some(Value::Array(ids)) => {
            for id in ids {
                match id {
                    Value::String(s) => {
                        chosen.insert(s.as_str());
                    }
                    other => {
                        return Err(format!(
                            "a branch must return task ids (strings), got {other}"
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "a branch must return a task id or a list of task ids, got {other}"
            ))
        }
    }
    let downstream = graph.downstream(task);
    let follows = |i: TaskIdx, id: &str| {
        let t = &spec.tasks[i];
        t.task_id == id
            || t.task_group
                .as_deref()
                .is_some_and(|g| g == id || g.starts_with(&format!("{id}.")))
    };
    let invalid: Vec<&str> = chosen
        .iter()
        .copied()
        .filter(|id| !downstream.iter().any(|&d| follows(d, id)))
        .collect();
    if !invalid.is_empty() {
        let valid: Vec<&str> = downstream
            .iter()
            .map(|&d| spec.tasks[d].task_id.as_str())
            .collect();
        return Err(format!(
            "the branch returned {invalid:?}, which are not direct downstream tasks; valid choices are {valid:?}"
        ));
    }
    Ok(downstream
        .iter()
        .copied()
        .filter(|&d| !chosen.iter().any(|id| follows(d, id)))
        .collect())
}

/// Python truthiness of a JSON value.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::names;
    use crate::testing::dag;
    use serde_json::json;

    fn setup(kind: BranchKind) -> (DagSpec, TaskGraph) {
        let mut spec = dag(&[
            ("pick", &[]),
            ("left", &["pick"]),
            ("right", &["pick"]),
            ("after", &["left"]),
        ]);
        spec.tasks[0].branch = Some(kind);
        let g = TaskGraph::new(&spec);
        (spec, g)
    }

    #[test]
    fn branch_skips_the_direct_downstream_not_chosen() {
        let (spec, g) = setup(BranchKind::Branch);
        let skipped = skipped_by(&spec, &g, 0, Some(&json!("left"))).unwrap();
        assert_eq!(names(&spec, &skipped), ["right"]);
        let skipped = skipped_by(&spec, &g, 0, Some(&json!(["left", "right"]))).unwrap();
        assert!(skipped.is_empty());
        let skipped = skipped_by(&spec, &g, 0, None).unwrap();
        assert_eq!(names(&spec, &skipped), ["left", "right"]);
    }

    #[test]
    fn branch_to_a_task_that_is_not_downstream_is_an_error() {
        let (spec, g) = setup(BranchKind::Branch);
        let err = skipped_by(&spec, &g, 0, Some(&json!("after"))).unwrap_err();
        assert!(err.contains("\"after\"") && err.contains("left"), "{err}");
        assert!(skipped_by(&spec, &g, 0, Some(&json!(3))).is_err());
    }

    #[test]
    fn short_circuit_skips_everything_downstream_on_a_falsy_value() {
        let (spec, g) = setup(BranchKind::ShortCircuit);
        for falsy in [
            json!(false),
            json!(0),
            json!(""),
            json!([]),
            json!({}),
            json!(null),
        ] {
            let skipped = skipped_by(&spec, &g, 0, Some(&falsy)).unwrap();
            assert_eq!(
                names(&spec, &skipped),
                ["left", "right", "after"],
                "{falsy}"
            );
        }
        assert!(skipped_by(&spec, &g, 0, Some(&json!(true)))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn short_circuit_can_respect_downstream_trigger_rules() {
        let (mut spec, _) = setup(BranchKind::ShortCircuit);
        spec.tasks[0].ignore_downstream_trigger_rules = Some(false);
        let g = TaskGraph::new(&spec);
        let skipped = skipped_by(&spec, &g, 0, Some(&json!(false))).unwrap();
        assert_eq!(names(&spec, &skipped), ["left", "right"]);
    }
}
