//! `leoflow validate [path]`, and the checking pipeline `compile` shares: load and check
//! `leoflow.yaml`, run the parser, apply the overlays, run `leoflow_core::validate`, and
//! turn every problem into a `file:line: message` diagnostic.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use leoflow_core::validate::{validate, Limits, ValidationError};
use leoflow_ports::dag::DagSpec;
use leoflow_shim::{Compiled, Shim};

use crate::cli::ValidateArgs;
use crate::diagnostic::{shown, Diagnostic, Diagnostics};
use crate::overlay;
use crate::project::{self, KeyPath, Project};
use crate::source::Target;
use crate::Error;

/// A DAG that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedDag {
    pub spec: DagSpec,
    /// The DAG file as shown to the user.
    pub file: PathBuf,
}

/// The outcome of checking a target: the DAGs that are valid and every problem.
#[derive(Debug, Default)]
pub struct Checked {
    pub dags: Vec<CheckedDag>,
    pub diagnostics: Vec<Diagnostic>,
    /// How many DAG files were given to the parser.
    pub files: usize,
}

/// Compiles and checks everything `target` names. A project is all or nothing (no DAG
/// when anything is wrong); plain files keep every DAG that is valid on its own, as
/// Airflow's DagBag keeps the DAGs of files that import.
pub fn check(target: &Target, shim: &Shim, image: &str, version: &str) -> Result<Checked, Error> {
    let mut checked = match target {
        Target::Project(dir) => check_project(dir, shim)?,
        Target::Files { root, files } => check_files(root, files, shim)?,
    };
    for dag in &mut checked.dags {
        dag.spec.image = image.to_string();
        dag.spec.dag_version = version.to_string();
    }
    Ok(checked)
}

fn check_project(dir: &Path, shim: &Shim) -> Result<Checked, Error> {
    let yaml = shown(dir, Path::new(project::FILE_NAME));
    let at_yaml = |p: &project::Problem| Diagnostic::new(&yaml, p.line, p.to_string());
    let mut checked = Checked::default();
    let project = match Project::load(dir) {
        Ok(p) => p,
        Err(project::Error::Invalid(problems)) => {
            checked.diagnostics = problems.iter().map(at_yaml).collect();
            return Ok(checked);
        }
        Err(e @ project::Error::Read { .. }) => return Err(Error::Usage(e.to_string())),
    };
    checked.diagnostics = project.problems().iter().map(at_yaml).collect();

    let source = project.dag_source();
    let source_shown = shown(dir, &source);
    if !dir.join(&source).is_file() {
        let message = format!(
            "the DAG source {} does not exist; create it or set dag_source",
            source_shown.display()
        );
        checked.diagnostics.push(at_yaml(
            &project.problem(KeyPath::of(&["dag_source"]), message),
        ));
        return Ok(checked);
    }
    checked.files = 1;
    let compiled = shim.compile(dir, &[dir.join(&source)])?;
    forward_stderr(&compiled);
    checked
        .diagnostics
        .extend(compiled.errors.iter().map(|e| parser_diagnostic(dir, e)));
    if compiled.dags.is_empty() {
        if compiled.errors.is_empty() {
            checked.diagnostics.push(Diagnostic::new(
                &source_shown,
                None,
                "no DAG found; define one with `with DAG(...)` or `@dag` (from airflow.sdk)",
            ));
        }
        return Ok(checked);
    }
    let mut dag = match overlay::select(compiled.dags, &project) {
        Ok(dag) => dag,
        Err(problem) => {
            checked.diagnostics.push(at_yaml(&problem));
            return Ok(checked);
        }
    };
    let problems = overlay::apply(&mut dag.spec, &project);
    checked.diagnostics.extend(problems.iter().map(at_yaml));
    if let Err(errors) = validate(&dag.spec, &Limits::default()) {
        for e in &errors.0 {
            let d = match overlay::origin(&project, e) {
                Some(path) => at_yaml(&project.problem(path, e.message.clone())),
                None => dag_diagnostic(&source_shown, dag.spec.source.as_deref(), e),
            };
            checked.diagnostics.push(d);
        }
    }
    // A YAML value can break a schema rule and a dag.json rule with the same words.
    let mut seen = HashSet::new();
    checked.diagnostics.retain(|d| seen.insert(d.to_string()));
    if checked.diagnostics.is_empty() {
        checked.dags.push(CheckedDag {
            spec: dag.spec,
            file: source_shown,
        });
    }
    Ok(checked)
}

fn check_files(root: &Path, files: &[PathBuf], shim: &Shim) -> Result<Checked, Error> {
    let mut checked = Checked {
        files: files.len(),
        ..Checked::default()
    };
    if files.is_empty() {
        checked.diagnostics.push(Diagnostic::new(
            root,
            None,
            "no Python files found; pass a DAG file, a folder of DAG files, or a project with leoflow.yaml",
        ));
        return Ok(checked);
    }
    let compiled = shim.compile(root, files)?;
    forward_stderr(&compiled);
    checked
        .diagnostics
        .extend(compiled.errors.iter().map(|e| parser_diagnostic(root, e)));
    if compiled.dags.is_empty() && compiled.errors.is_empty() {
        checked.diagnostics.push(Diagnostic::new(
            root,
            None,
            "no DAG found (only files mentioning both \"airflow\" and \"dag\" are imported, as in Airflow)",
        ));
    }
    for dag in compiled.dags {
        let file = shown(root, &dag.file);
        match validate(&dag.spec, &Limits::default()) {
            Ok(()) => checked.dags.push(CheckedDag {
                spec: dag.spec,
                file,
            }),
            Err(errors) => checked.diagnostics.extend(
                errors
                    .0
                    .iter()
                    .map(|e| dag_diagnostic(&file, dag.spec.source.as_deref(), e)),
            ),
        }
    }
    Ok(checked)
}

/// What the DAG files printed while being imported, passed on as Airflow logs it.
fn forward_stderr(compiled: &Compiled) {
    if !compiled.stderr.trim().is_empty() {
        eprint!("{}", compiled.stderr);
        if !compiled.stderr.ends_with('\n') {
            eprintln!();
        }
    }
}

fn parser_diagnostic(root: &Path, e: &leoflow_shim::CompileError) -> Diagnostic {
    Diagnostic::new(shown(root, &e.file), e.line, e.message.clone())
}

/// A validation error reported against the DAG file, at the line that most likely defines
/// the task or field.
fn dag_diagnostic(file: &Path, source: Option<&str>, e: &ValidationError) -> Diagnostic {
    let line = source.and_then(|s| guess_line(s, e.task_id.as_deref(), &e.field));
    let what = match &e.task_id {
        Some(t) => format!("task {t:?}, field {}", e.field),
        None if e.field.is_empty() => String::new(),
        None => format!("field {}", e.field),
    };
    let message = if what.is_empty() {
        e.message.clone()
    } else {
        format!("{what}: {}", e.message)
    };
    Diagnostic::new(file, line, message)
}

/// Best effort: the line of `task_id="<id>"`, else `def <id>(`, else the quoted id, else
/// (DAG-level fields) `<field>=`.
fn guess_line(source: &str, task_id: Option<&str>, field: &str) -> Option<u32> {
    let find = |needle: &str| {
        source
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u32 + 1)
    };
    let Some(id) = task_id else {
        let name = field.split(['.', '[']).next().unwrap_or(field);
        return (!name.is_empty())
            .then(|| find(&format!("{name}=")))
            .flatten();
    };
    // Group prefixes and mapping suffixes are not in the source.
    let local = id.rsplit('.').next().unwrap_or(id);
    let local = local.split("__").next().unwrap_or(local);
    [
        format!("task_id=\"{local}\""),
        format!("task_id='{local}'"),
        format!("def {local}("),
        format!("\"{local}\""),
        format!("'{local}'"),
    ]
    .iter()
    .find_map(|n| find(n))
}

/// `leoflow validate`.
pub fn run(args: &ValidateArgs) -> Result<(), Error> {
    let target = Target::resolve(&args.path).map_err(|e| Error::Usage(e.to_string()))?;
    let shim = crate::shim(args.python.clone());
    let checked = check(&target, &shim, "", leoflow_shim::DEV_VERSION)?;
    for dag in &checked.dags {
        println!(
            "OK {}: DAG {:?} ({} task{})",
            dag.file.display(),
            dag.spec.dag_id,
            dag.spec.tasks.len(),
            if dag.spec.tasks.len() == 1 { "" } else { "s" }
        );
    }
    if checked.diagnostics.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(Diagnostics(checked.diagnostics)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"from airflow.sdk import DAG, task
with DAG("etl", schedule="@dayly"):
    @task
    def extract():
        return 1
    load = BashOperator(task_id="load", bash_command="x")
    g = EmptyOperator(task_id='inner')
"#;

    #[test]
    fn lines_are_guessed_from_task_ids_and_fields() {
        assert_eq!(guess_line(SOURCE, Some("load"), "depends_on"), Some(6));
        assert_eq!(guess_line(SOURCE, Some("extract"), "retries"), Some(4));
        assert_eq!(guess_line(SOURCE, Some("group.inner"), "retries"), Some(7));
        assert_eq!(guess_line(SOURCE, Some("extract__1"), "retries"), Some(4));
        assert_eq!(guess_line(SOURCE, None, "schedule"), Some(2));
        assert_eq!(guess_line(SOURCE, Some("nowhere"), "retries"), None);
        assert_eq!(guess_line(SOURCE, None, ""), None);
    }

    #[test]
    fn validation_errors_name_task_and_field() {
        let e = ValidationError {
            task_id: Some("load".into()),
            field: "depends_on".into(),
            message: "unknown upstream task \"x\"".into(),
        };
        assert_eq!(
            dag_diagnostic(Path::new("dag.py"), Some(SOURCE), &e).to_string(),
            "dag.py:6: task \"load\", field depends_on: unknown upstream task \"x\""
        );
        let e = ValidationError {
            task_id: None,
            field: "schedule".into(),
            message: "bad".into(),
        };
        assert_eq!(
            dag_diagnostic(Path::new("dag.py"), None, &e).to_string(),
            "dag.py: field schedule: bad"
        );
    }
}
