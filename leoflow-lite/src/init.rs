//! `leoflow init <dir>`: scaffolds a project — `leoflow.yaml`, a `dag.py` written in plain
//! Airflow 3 that compiles and runs, and the `Dockerfile` (+ `.dockerignore`) of its task
//! image for `leoflow compile --build` — with the dag_id taken from the directory name.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::project;
use crate::Error;

/// The dag_id used when the directory name has nothing usable.
const FALLBACK_ID: &str = "my_dag";

/// The task image's build file, read by `leoflow compile --build`.
const DOCKERFILE: &str = "Dockerfile";
const DOCKERIGNORE: &str = ".dockerignore";
const DOCKERIGNORE_TEXT: &str = "# Kept out of the task image's build context.\n.git/\n**/__pycache__/\n*.pyc\n.venv/\nbuild/\ndag.json\n";

/// `leoflow init`.
pub fn run(args: &InitArgs) -> Result<(), Error> {
    let dir = &args.dir;
    let dag_id = dag_id_for(dir);
    let files = [
        (PathBuf::from(project::FILE_NAME), leoflow_yaml(&dag_id)),
        (PathBuf::from(project::DEFAULT_DAG_SOURCE), dag_py(&dag_id)),
    ];
    // The image files are only written where missing: an existing Dockerfile is the
    // user's (unless --force).
    let image_files: Vec<(PathBuf, String)> = [
        (PathBuf::from(DOCKERFILE), dockerfile(&dag_id)),
        (PathBuf::from(DOCKERIGNORE), DOCKERIGNORE_TEXT.to_string()),
    ]
    .into_iter()
    .filter(|(name, _)| args.force || !dir.join(name).exists())
    .collect();
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
    for (name, text) in files.iter().chain(&image_files) {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| Error::Io {
            action: "write",
            path,
            source,
        })?;
    }
    println!(
        "Initialized Leoflow project {dag_id:?} in {}\n  validate: leoflow validate {0}\n  compile:  leoflow compile {0}\n  ship:     leoflow compile {0} --image REGISTRY/{dag_id}:TAG --build --push",
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

/// The task image: Python, the shim (written into `.leoflow/shim` by `compile --build`), the
/// project at the path the Kubernetes executor runs it from, a non-root user. The agent is
/// not in it: the executor's init container injects it into every pod.
fn dockerfile(dag_id: &str) -> String {
    format!(
        r#"# Task image of the Leoflow DAG "{dag_id}". `leoflow compile --image IMG --build --push`
# builds it from this file (the project directory is the build context) and pushes it; the
# Kubernetes executor runs each task attempt in a pod of this image, with the leoflow-agent
# binary injected by an init container (nothing of Leoflow needs installing here).
FROM python:3.11-slim-bookworm

# The Airflow API shim and task runtime, copied here by `leoflow compile --build`.
COPY {shim} /opt/leoflow/shim
ENV PYTHONPATH=/opt/leoflow/shim \
    PYTHONDONTWRITEBYTECODE=1

# pip packages your tasks import (keep in step with leoflow.yaml `dependencies`), e.g.
# RUN pip install --no-cache-dir requests==2.32.3

# The project, where the executor expects it (LEOFLOW_EXECUTOR_PROJECT_DIR).
COPY . /opt/leoflow/project
WORKDIR /opt/leoflow/project

# Pods run as this non-root user (runAsNonRoot).
USER 65532:65532
"#,
        shim = crate::image::SHIM_DIR
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
    fn init_writes_the_image_files_but_keeps_a_dockerfile_of_the_users() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etl");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(DOCKERFILE), "FROM mine\n").unwrap();
        run(&InitArgs {
            dir: dir.clone(),
            force: false,
        })
        .unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(DOCKERFILE)).unwrap(),
            "FROM mine\n"
        );
        assert!(fs::read_to_string(dir.join(DOCKERIGNORE))
            .unwrap()
            .contains(".git/"));
        run(&InitArgs {
            dir: dir.clone(),
            force: true,
        })
        .unwrap();
        let text = fs::read_to_string(dir.join(DOCKERFILE)).unwrap();
        assert!(
            text.contains("COPY .leoflow/shim /opt/leoflow/shim"),
            "{text}"
        );
        assert!(text.contains("USER 65532:65532"), "{text}");
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
