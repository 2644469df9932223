//! Property tests: random DAGs keep the validation and topological-order guarantees.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use leoflow_core::graph::TaskGraph;
use leoflow_core::validate::{validate, Limits};
use leoflow_ports::dag::{DagSpec, TaskKind, TaskSpec, SCHEMA_VERSION};
use proptest::prelude::*;

/// A DAG of `n` tasks whose edges only go from a lower to a higher index (so it is
/// acyclic), listed in a shuffled order.
fn acyclic() -> impl Strategy<Value = DagSpec> {
    (1usize..40)
        .prop_flat_map(|n| {
            let edges = proptest::collection::vec((0..n, 0..n), 0..n * 3);
            (
                Just(n),
                edges,
                Just(()).prop_perturb(move |(), mut rng| {
                    let mut order: Vec<usize> = (0..n).collect();
                    for i in (1..n).rev() {
                        order.swap(i, rng.random_range(0..=i));
                    }
                    order
                }),
            )
        })
        .prop_map(|(n, edges, order)| {
            let mut ups: Vec<Vec<String>> = vec![Vec::new(); n];
            for (a, b) in edges {
                let (lo, hi) = (a.min(b), a.max(b));
                let id = format!("t{lo}");
                if lo != hi && !ups[hi].contains(&id) {
                    ups[hi].push(id);
                }
            }
            let tasks = order
                .into_iter()
                .map(|i| {
                    let mut t = TaskSpec::new(format!("t{i}"), TaskKind::Empty);
                    t.depends_on.clone_from(&ups[i]);
                    t
                })
                .collect();
            spec(tasks)
        })
}

fn spec(tasks: Vec<TaskSpec>) -> DagSpec {
    let mut s: DagSpec = serde_json::from_value(serde_json::json!({
        "schema_version": SCHEMA_VERSION, "dag_id": "prop", "dag_version": "v", "image": "", "tasks": []
    }))
    .unwrap();
    s.tasks = tasks;
    s
}

proptest! {
    #[test]
    fn acyclic_dags_validate_and_order_respects_every_edge(dag in acyclic()) {
        prop_assert!(validate(&dag, &Limits::default()).is_ok());
        let g = TaskGraph::new(&dag);
        let order = g.topological_order().unwrap();
        prop_assert_eq!(order.len(), dag.tasks.len());
        let mut pos = vec![0; order.len()];
        for (p, &i) in order.iter().enumerate() {
            pos[i] = p;
        }
        for (i, t) in dag.tasks.iter().enumerate() {
            for up in &t.depends_on {
                let u = g.idx(up).unwrap();
                prop_assert!(pos[u] < pos[i], "{} before {}", up, t.task_id);
            }
        }
    }

    #[test]
    fn closing_a_path_into_a_cycle_is_always_reported(dag in acyclic()) {
        // Find an edge u -> v and add v -> u: a cycle through both.
        let Some((v, u)) = dag.tasks.iter().enumerate().find_map(|(i, t)| t.depends_on.first().map(|u| (i, u.clone()))) else {
            return Ok(());
        };
        let mut cyclic = dag.clone();
        let down = cyclic.tasks[v].task_id.clone();
        let ui = cyclic.tasks.iter().position(|t| t.task_id == u).unwrap();
        cyclic.tasks[ui].depends_on.push(down);
        let errs = validate(&cyclic, &Limits::default()).unwrap_err().0;
        prop_assert_eq!(errs.len(), 1);
        prop_assert!(errs[0].message.contains("dependency cycle"), "{}", errs[0].message);
        prop_assert!(TaskGraph::new(&cyclic).topological_order().is_err());
    }

    #[test]
    fn each_unknown_upstream_is_one_error_naming_its_task(dag in acyclic(), ghosts in proptest::collection::vec(0usize..40, 1..5)) {
        let mut broken = dag.clone();
        let mut expected = 0;
        for g in ghosts {
            let i = g % broken.tasks.len();
            let ghost = format!("ghost{g}");
            if !broken.tasks[i].depends_on.contains(&ghost) {
                broken.tasks[i].depends_on.push(ghost);
                expected += 1;
            }
        }
        let errs = validate(&broken, &Limits::default()).unwrap_err().0;
        prop_assert_eq!(errs.len(), expected);
        for e in errs {
            prop_assert_eq!(e.field.as_str(), "depends_on");
            prop_assert!(e.task_id.is_some());
            prop_assert!(e.message.contains("unknown upstream task \"ghost"));
        }
    }
}
