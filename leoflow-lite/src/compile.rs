//! `leoflow compile [path]`: checks the target like `validate`, then writes each valid DAG
//! as dag.json — a project to `./dag.json` (or `-o`), plain DAG files and folders to
//! `<output-dir>/<dag_id>.json` (default `./build`) — and, with `--build [--push]`, builds
//! and pushes the task image named by `--image` (see [`crate::image`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::CompileArgs;
use crate::diagnostic::Diagnostics;
use crate::image;
use crate::project::Project;
use crate::source::Target;
use crate::validate::{check, CheckedDag};
use crate::Error;

/// Where a project's dag.json goes without `-o` (like the Go CLI: the current directory).
const PROJECT_OUTPUT: &str = "dag.json";

/// Where plain DAG files are written without `--output-dir`.
const FILES_OUTPUT_DIR: &str = "build";

/// `leoflow compile`.
pub fn run(args: &CompileArgs) -> Result<(), Error> {
    if args.build && args.image.is_empty() {
        return Err(Error::Usage(
            "--build needs --image REGISTRY/NAME:TAG (the tag to build, push and record in dag.json)".into(),
        ));
    }
    let target = Target::resolve(&args.path).map_err(|e| Error::Usage(e.to_string()))?;
    // Resolved before compiling, so a missing Dockerfile fails fast.
    let plan = if args.build {
        Some(build_plan(args, &target)?)
    } else {
        None
    };
    let version = args
        .dag_version
        .clone()
        .unwrap_or_else(|| git_version(target.dir()));
    let shim = crate::shim(args.python.clone());
    let checked = check(&target, &shim, &args.image, &version)?;

    if let (Some(out), true) = (&args.output, checked.dags.len() > 1) {
        return Err(Error::Usage(format!(
            "-o {} names one file but {} defines {} DAGs; use --output-dir DIR to write each to DIR/<dag_id>.json",
            out.display(),
            args.path.display(),
            checked.dags.len()
        )));
    }
    for dag in &checked.dags {
        let out = output_path(args, &target, dag);
        write(&out, dag)?;
        println!(
            "Compiled {} -> {} (DAG {:?}, {} tasks, version {})",
            dag.file.display(),
            out.display(),
            dag.spec.dag_id,
            dag.spec.tasks.len(),
            dag.spec.dag_version
        );
    }
    if !checked.diagnostics.is_empty() {
        return Err(Error::Failed(Diagnostics(checked.diagnostics)));
    }
    if let Some(plan) = plan {
        return image::build_and_push(args.builder, &plan, shim.python_dir()?, args.push);
    }
    if !args.image.is_empty() {
        println!(
            "Note: image {} is recorded in dag.json but not built; add --build (and --push) to build it",
            args.image
        );
    }
    Ok(())
}

/// The image, Dockerfile and build context of `--build`: the project's (leoflow.yaml
/// `build`), or the folder's for plain DAG files.
fn build_plan(args: &CompileArgs, target: &Target) -> Result<image::Plan, Error> {
    let (dir, config) = match target {
        Target::Project(dir) => {
            let project = Project::load(dir).map_err(|e| Error::Usage(e.to_string()))?;
            (dir.clone(), project.config.build)
        }
        Target::Files { root, .. } if root.is_file() => (
            root.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            None,
        ),
        Target::Files { root, .. } => (root.clone(), None),
    };
    image::Plan::new(
        &args.image,
        &dir,
        args.dockerfile.as_deref(),
        config.as_ref(),
    )
}

fn output_path(args: &CompileArgs, target: &Target, dag: &CheckedDag) -> PathBuf {
    if let Some(out) = &args.output {
        return out.clone();
    }
    let per_dag = |dir: &Path| dir.join(format!("{}.json", dag.spec.dag_id));
    match (&args.output_dir, target) {
        (Some(dir), _) => per_dag(dir),
        (None, Target::Project(_)) => PathBuf::from(PROJECT_OUTPUT),
        (None, Target::Files { .. }) => per_dag(Path::new(FILES_OUTPUT_DIR)),
    }
}

fn write(out: &Path, dag: &CheckedDag) -> Result<(), Error> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| Error::Io {
            action: "create",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let mut json = serde_json::to_string_pretty(&dag.spec).map_err(|e| Error::Io {
        action: "serialise",
        path: out.to_path_buf(),
        source: e.into(),
    })?;
    json.push('\n');
    fs::write(out, json).map_err(|source| Error::Io {
        action: "write",
        path: out.to_path_buf(),
        source,
    })
}

/// `git describe --tags --always --dirty` in `dir`, else `"dev"`.
pub fn git_version(dir: &Path) -> String {
    let output = Command::new("git")
        .args(["describe", "--tags", "--always", "--dirty"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v.is_empty() {
                leoflow_shim::DEV_VERSION.to_string()
            } else {
                v
            }
        }
        _ => leoflow_shim::DEV_VERSION.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_git_the_version_is_dev() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(git_version(tmp.path()), "dev");
    }
}
