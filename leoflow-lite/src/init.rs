//! `leoflow init <dir>`: scaffolds a project — `leoflow.yaml` and a `dag.py` written in
//! plain Airflow 3 that compiles and runs — with the dag_id taken from the directory name.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::project;
use crate::Error;

/// The dag_id used when the directory name has nothing usable.
const FALLBACK_ID: &str = "my_dag";

/// `leoflow init`.
pub fn run(args: &InitArgs) -> Result<(), Error> {
    let dir = &args.dir;
    let dag_id = dag_id_for(dir);
    let files = [
        (PathBuf::from(project::FILE_NAME), leoflow_yaml(&dag_id)),
        (PathBuf::from(project::DEFAULT_DAG_SOURCE), dag_py(&dag_id)),
    ];
    if !args.force {
        let existing: Vec<String> = files
            .iter()
            .map(|(name, _)| dir.join(name))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(Error::Usage(format!(
                "{} already exist{}; pass --force to overwrite",
                existing.join(" and "),
                if existing.len() == 1 { "s" } else { "" }
            )));
        }
    }
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create",
        path: dir.clone(),
        source,
    })?;
    for (name, text) in &files {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| Error::Io {
            action: "write",
            path,
            source,
        })?;
    }
    println!(
        "Initialized Leoflow project {dag_id:?} in {}\n  validate: leoflow validate {0}\n  compile:  leoflow compile {0}",
        dir.display()
    );
    Ok(())
}

/// The directory's name made into a valid dag_id (letters, digits, `_`, `-`; ≤ 200).
pub fn dag_id_for(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| {
            std::path::absolute(dir)
                .ok()
                .and_then(|p| fs::canonicalize(&p).ok().or(Some(p)))
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_default();
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.starts_with('-') {
        id.insert(0, '_');
    }
    id.truncate(200);
    if id.is_empty() || id.chars().all(|c| c == '_') {
        FALLBACK_ID.to_string()
    } else {
        id
    }
}

fn leoflow_yaml(dag_id: &str) -> String {
    format!(
        r#"# Leoflow project file. `leoflow validate` checks it; `leoflow compile` applies it to the DAG.
schema_version: "1.0"
dag_id: "{dag_id}"
description: "{dag_id}: a new Leoflow DAG"
python_version: "3.11"
# pip packages your tasks import (imported inside the task functions).
dependencies: []

# DAG-wide defaults for every task (a task's own settings win):
# defaults:
#   retries: 2
#   retry_delay_seconds: 60
#   execution_timeout_seconds: 3600

# Per-task overrides, by task id:
# tasks:
#   hello:
#     retries: 3
#     env:
#       GREETING: hi
"#
    )
}

fn dag_py(dag_id: &str) -> String {
    format!(
        r#""""{dag_id}: a starter DAG. This is plain Airflow 3 code: it also runs on Airflow."""
from datetime import datetime

from airflow.sdk import dag, task


@dag(
    dag_id="{dag_id}",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
)
def pipeline():
    @task
    def hello() -> str:
        return "hello from Leoflow"

    @task
    def shout(message: str) -> str:
        print(message.upper())
        return message.upper()

    shout(hello())


pipeline()
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dag_ids_come_from_the_directory_name() {
        assert_eq!(dag_id_for(Path::new("projects/etl")), "etl");
        assert_eq!(dag_id_for(Path::new("my project.v2")), "my_project_v2");
        assert_eq!(dag_id_for(Path::new("-x")), "_-x");
        assert_eq!(dag_id_for(Path::new("ünï")), "_n_");
        assert_eq!(dag_id_for(Path::new("...")), FALLBACK_ID);
        assert_eq!(dag_id_for(&PathBuf::from("a".repeat(300))).len(), 200);
        let here = dag_id_for(Path::new("."));
        assert!(project::is_valid_dag_id(&here), "{here}");
    }

    #[test]
    fn the_template_yaml_is_a_valid_project() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(project::FILE_NAME), leoflow_yaml("0123")).unwrap();
        let p = project::Project::load(tmp.path()).unwrap();
        assert_eq!(p.problems(), []);
        assert_eq!(p.config.dag_id.as_deref(), Some("0123"));
    }
}
