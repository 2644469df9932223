//! What `leoflow lite PATH` runs: PATH is one project (leoflow.yaml + dag.py), a workspace
//! whose sub-directories are projects (and whose loose `.py` files are plain DAG files), or
//! a plain Airflow `dags/` folder. Each project or plain file is a [`Unit`], compiled on its
//! own, so a change recompiles only its unit and a broken unit never hides the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use leoflow_core::Engine;
use leoflow_ports::dag::{DagSpec, TaskKind};
use leoflow_ports::datastore::ImportError;
use leoflow_shim::Shim;
use sha2::{Digest, Sha256};

use crate::project::Project;
use crate::source::Target;
use crate::validate::check;
use crate::Error;

/// One compiled-on-its-own piece of the PATH.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// A project directory (absolute).
    Project(PathBuf),
    /// A plain DAG file (absolute).
    File(PathBuf),
}

/// The units under the lite root.
#[derive(Debug, Clone)]
pub struct Dags {
    root: PathBuf,
    units: Vec<Unit>,
    /// Where each registered DAG file's source is kept, by content hash.
    snapshots: PathBuf,
}

/// The outcome of compiling and registering one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// `(dag_id, version_number, created)` per DAG.
    Registered(Vec<(String, u32, bool)>),
    /// The unit's import error, recorded in the datastore.
    Failed(String),
    /// A plain file that defines no DAG (a helper module): nothing to do.
    Empty,
}

impl Dags {
    /// Finds the units under `path` (made absolute); registered sources are kept under
    /// `snapshots`.
    pub fn discover(path: &Path, snapshots: &Path) -> Result<Dags, Error> {
        if !path.exists() {
            return Err(Error::Usage(format!(
                "{} does not exist; pass a project directory (leoflow.yaml + dag.py, see `leoflow init`), a folder of projects, or an Airflow dags/ folder",
                path.display()
            )));
        }
        let root = std::fs::canonicalize(path).map_err(|source| Error::Io {
            action: "resolve",
            path: path.to_path_buf(),
            source,
        })?;
        let mut dags = Dags {
            root,
            units: Vec::new(),
            snapshots: snapshots.to_path_buf(),
        };
        dags.rescan()?;
        Ok(dags)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Re-reads the tree (new projects or files appear as units).
    pub fn rescan(&mut self) -> Result<(), Error> {
        let root = &self.root;
        let mut units = Vec::new();
        if root.is_file() || Project::is_project(root) {
            units.push(if root.is_file() {
                Unit::File(root.clone())
            } else {
                Unit::Project(root.clone())
            });
        } else {
            let projects: Vec<PathBuf> = std::fs::read_dir(root)
                .map_err(|source| Error::Io {
                    action: "read",
                    path: root.clone(),
                    source,
                })?
                .flatten()
                .map(|e| e.path())
                .filter(|p| Project::is_project(p))
                .collect();
            let files = match Target::resolve(root).map_err(|e| Error::Usage(e.to_string()))? {
                Target::Files { files, .. } => files,
                Target::Project(_) => Vec::new(),
            };
            units.extend(
                files
                    .into_iter()
                    .filter(|f| !projects.iter().any(|p| f.starts_with(p)))
                    .map(Unit::File),
            );
            units.extend(projects.into_iter().map(Unit::Project));
        }
        units.sort();
        self.units = units;
        Ok(())
    }

    /// The unit a changed path belongs to.
    pub fn unit_of(&self, changed: &Path) -> Option<&Unit> {
        self.units.iter().find(|u| match u {
            Unit::Project(dir) => changed.starts_with(dir),
            Unit::File(file) => changed == file,
        })
    }

    /// The file an import error of `unit` is recorded under.
    pub fn error_file(unit: &Unit) -> PathBuf {
        match unit {
            Unit::Project(dir) => {
                Project::load(dir).map_or_else(|_| dir.join("dag.py"), |p| dir.join(p.dag_source()))
            }
            Unit::File(file) => file.clone(),
        }
    }

    /// Compiles `unit` (blocking: runs the Python parser).
    pub fn compile(&self, unit: &Unit, shim: &Shim) -> Result<Vec<DagSpec>, String> {
        let target = match unit {
            Unit::Project(dir) => Target::Project(dir.clone()),
            Unit::File(file) => Target::Files {
                root: self.root_of(file),
                files: vec![file.clone()],
            },
        };
        let checked =
            check(&target, shim, "", leoflow_shim::DEV_VERSION).map_err(|e| e.to_string())?;
        if !checked.diagnostics.is_empty() {
            return Err(checked
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"));
        }
        let prefix = match unit {
            Unit::Project(dir) => dir.strip_prefix(self.base()).ok().map(Path::to_path_buf),
            Unit::File(_) => None,
        };
        checked
            .dags
            .into_iter()
            .map(|dag| {
                let spec = match &prefix {
                    Some(p) if !p.as_os_str().is_empty() => relocate(dag.spec, p),
                    _ => dag.spec,
                };
                self.pin(spec, unit)
            })
            .collect()
    }

    /// Python tasks re-import their DAG file when they run. So that a run keeps the code
    /// of its version even after the files changed (or broke), the code is kept under the
    /// snapshots directory by content hash and the tasks point there: the DAG file as
    /// compiled and, for a project, every other `.py` file of the project (the modules
    /// `dag.py` imports from its own directory), so a helper's change is a new version too.
    fn pin(&self, mut spec: DagSpec, unit: &Unit) -> Result<DagSpec, String> {
        let (Some(fileloc), Some(source)) = (spec.fileloc.clone(), spec.source.clone()) else {
            return Ok(spec);
        };
        let dag_file = self.base().join(&fileloc);
        // (path in the snapshot, content); the DAG file first, as it was compiled.
        let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        match unit {
            Unit::Project(dir) => {
                let rel = dag_file
                    .strip_prefix(dir)
                    .map_or_else(|_| PathBuf::from(file_name(&fileloc)), Path::to_path_buf);
                files.push((rel.clone(), source.into_bytes()));
                let others = crate::source::python_files(dir).map_err(|e| e.to_string())?;
                for path in others {
                    let Ok(inner) = path.strip_prefix(dir) else {
                        continue;
                    };
                    if inner == rel {
                        continue;
                    }
                    let content = std::fs::read(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    files.push((inner.to_path_buf(), content));
                }
            }
            Unit::File(_) => files.push((PathBuf::from(file_name(&fileloc)), source.into_bytes())),
        }
        let mut hasher = Sha256::new();
        for (path, content) in &files {
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update([0]);
            hasher.update((content.len() as u64).to_le_bytes());
            hasher.update(content);
        }
        let hash = hex::encode(hasher.finalize());
        let dir = self.snapshots.join(&hash[..16]);
        if !dir.is_dir() {
            // Written aside and renamed: a snapshot directory is always complete.
            let tmp =
                self.snapshots
                    .join(format!(".{}.writing-{}", &hash[..16], std::process::id()));
            let written = files.iter().try_for_each(|(path, content)| {
                let target = tmp.join(path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(target, content)
            });
            let renamed = written.and_then(|()| match std::fs::rename(&tmp, &dir) {
                // Another reload wrote the same snapshot meanwhile.
                Err(_) if dir.is_dir() => Ok(()),
                other => other,
            });
            let _ = std::fs::remove_dir_all(&tmp);
            renamed.map_err(|e| {
                format!("cannot keep a copy of {fileloc} in {}: {e}", dir.display())
            })?;
        }
        let pinned = dir.join(&files[0].0).display().to_string();
        for task in &mut spec.tasks {
            if task.kind != TaskKind::Python {
                continue;
            }
            if let Some((f, name)) = task.entrypoint.as_deref().and_then(|ep| ep.split_once(':')) {
                if f == fileloc {
                    task.entrypoint = Some(format!("{pinned}:{name}"));
                }
            }
        }
        spec.fileloc = Some(pinned);
        Ok(spec)
    }

    /// Where agents run (the subprocess executor's project directory): the project, or the
    /// folder of projects and DAG files.
    pub fn base(&self) -> PathBuf {
        if self.root.is_file() {
            self.root_of(&self.root)
        } else {
            self.root.clone()
        }
    }

    fn root_of(&self, file: &Path) -> PathBuf {
        if self.root.is_dir() {
            self.root.clone()
        } else {
            file.parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
        }
    }

    /// Compiles `unit` and registers its DAGs, recording or clearing its import error.
    pub async fn load(&self, unit: &Unit, shim: &Arc<Shim>, engine: &Engine) -> Loaded {
        let file = Dags::error_file(unit).display().to_string();
        let compiled = {
            let dags = self.clone();
            let unit = unit.clone();
            let shim = shim.clone();
            tokio::task::spawn_blocking(move || dags.compile(&unit, &shim))
                .await
                .unwrap_or_else(|e| Err(format!("the compile task failed: {e}")))
        };
        let store = engine.datastore();
        let specs = match compiled {
            Ok(specs) => specs,
            Err(message) => return record(engine, file, message).await,
        };
        if specs.is_empty() {
            let _ = store.delete_import_error(&file).await;
            return Loaded::Empty;
        }
        let mut out = Vec::new();
        for spec in specs {
            let dag_id = spec.dag_id.clone();
            match engine.register(spec).await {
                Ok(r) => out.push((dag_id, r.version.version_number, r.created)),
                Err(e) => return record(engine, file, format!("DAG {dag_id:?}: {e}")).await,
            }
        }
        if let Err(e) = store.delete_import_error(&file).await {
            tracing::warn!(error = %e, file, "cannot clear an import error");
        }
        Loaded::Registered(out)
    }
}

fn file_name(fileloc: &str) -> String {
    Path::new(fileloc)
        .file_name()
        .map_or_else(|| "dag.py".into(), |n| n.to_string_lossy().into_owned())
}

async fn record(engine: &Engine, filename: String, message: String) -> Loaded {
    let err = ImportError {
        filename,
        message: message.clone(),
        at: Utc::now(),
    };
    if let Err(e) = engine.datastore().put_import_error(&err).await {
        tracing::warn!(error = %e, "cannot record an import error");
    }
    Loaded::Failed(message)
}

/// A project compiled on its own names its file relative to itself; agents run from the
/// workspace, so python entrypoints and `fileloc` get the project's relative path.
fn relocate(mut spec: DagSpec, prefix: &Path) -> DagSpec {
    let join = |f: &str| prefix.join(f).display().to_string();
    spec.fileloc = spec.fileloc.as_deref().map(join);
    for task in &mut spec.tasks {
        if task.kind == TaskKind::Python {
            if let Some(ep) = &task.entrypoint {
                if let Some((file, name)) = ep.split_once(':') {
                    if Path::new(file).extension().is_some_and(|e| e == "py") {
                        task.entrypoint = Some(format!("{}:{name}", join(file)));
                    }
                }
            }
        }
    }
    spec
}

/// A summary line per loaded unit, for the console.
pub fn describe(results: &BTreeMap<Unit, Loaded>) -> Vec<String> {
    let mut lines = Vec::new();
    for (unit, loaded) in results {
        let name = match unit {
            Unit::Project(p) | Unit::File(p) => p.display().to_string(),
        };
        match loaded {
            Loaded::Registered(dags) => {
                for (id, version, _) in dags {
                    lines.push(format!("✓ DAG {id:?} version {version} ({name})"));
                }
            }
            Loaded::Failed(message) => {
                lines.push(format!(
                    "✗ {name}: import error (the last good version keeps running):\n{message}"
                ));
            }
            Loaded::Empty => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }

    #[test]
    fn a_workspace_holds_projects_and_loose_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        touch(&root.join("a/leoflow.yaml"));
        touch(&root.join("a/dag.py"));
        touch(&root.join("b/leoflow.yaml"));
        touch(&root.join("loose.py"));
        let dags = Dags::discover(root, &root.join("snap")).unwrap();
        let root = std::fs::canonicalize(root).unwrap();
        assert_eq!(
            dags.units(),
            [
                Unit::Project(root.join("a")),
                Unit::Project(root.join("b")),
                Unit::File(root.join("loose.py")),
            ]
        );
        assert_eq!(
            dags.unit_of(&root.join("a/dag.py")),
            Some(&Unit::Project(root.join("a")))
        );
        assert_eq!(dags.unit_of(&root.join("other.txt")), None);
    }

    #[test]
    fn a_project_is_one_unit() {
        let tmp = tempfile::tempdir().unwrap();
        touch(&tmp.path().join("leoflow.yaml"));
        let dags = Dags::discover(tmp.path(), tmp.path()).unwrap();
        assert_eq!(dags.units().len(), 1);
        assert!(matches!(dags.units()[0], Unit::Project(_)));
    }

    #[test]
    fn a_missing_path_says_what_to_pass() {
        let err = Dags::discover(Path::new("/nonexistent/x"), Path::new("/tmp"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("leoflow init"), "{err}");
    }
}
