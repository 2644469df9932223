//! Small builders shared by this crate's unit tests.

use leoflow_ports::dag::{DagSpec, TaskKind, TaskSpec, SCHEMA_VERSION};

/// A DAG of python tasks given as (task_id, upstream ids).
pub fn dag(tasks: &[(&str, &[&str])]) -> DagSpec {
    DagSpec {
        schema_version: SCHEMA_VERSION.into(),
        dag_id: "test_dag".into(),
        dag_version: "v1".into(),
        image: String::new(),
        description: None,
        owner: None,
        tags: vec![],
        schedule: None,
        schedule_timezone: None,
        start_date: None,
        end_date: None,
        catchup: false,
        max_active_runs: None,
        max_active_tasks: None,
        dagrun_timeout_seconds: None,
        default_args: None,
        params: std::collections::BTreeMap::default(),
        doc_md: None,
        fileloc: Some("dag.py".into()),
        staging: None,
        tasks: tasks
            .iter()
            .map(|(id, ups)| {
                let mut t = TaskSpec::new(*id, TaskKind::Python);
                t.entrypoint = Some(format!("dag.py:{id}"));
                t.depends_on = ups.iter().map(|s| (*s).to_string()).collect();
                t
            })
            .collect(),
        source: None,
    }
}
