//! DAG specs the scheduler benchmarks build in code: python tasks that do nothing (the
//! fake executor runs them), wired into chains and fan-outs.

use leoflow_ports::dag::DagSpec;
use serde_json::{json, Value};

/// A python task `id` depending on `deps`.
pub fn python(id: &str, deps: &[String]) -> Value {
    json!({"task_id": id, "type": "python", "entrypoint": format!("dag.py:{id}"), "depends_on": deps})
}

/// The DAG `dag_id` of `tasks`, version `bench`.
pub fn spec(dag_id: &str, tasks: Vec<Value>) -> DagSpec {
    let v = json!({"schema_version": "1.0", "dag_id": dag_id, "dag_version": "bench", "image": "", "tasks": tasks});
    DagSpec::from_json(v.to_string().as_bytes()).expect("benchmark DAGs are valid")
}

/// `chain_<len>`: `c00 → c01 → …`.
pub fn chain(len: usize) -> DagSpec {
    let tasks = (0..len)
        .map(|i| {
            let deps = if i == 0 {
                vec![]
            } else {
                vec![format!("c{:02}", i - 1)]
            };
            python(&format!("c{i:02}"), &deps)
        })
        .collect();
    spec(&format!("chain_{len}"), tasks)
}
