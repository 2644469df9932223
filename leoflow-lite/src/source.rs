//! What a path given to `validate` / `compile` names: a Leoflow project (a directory with
//! `leoflow.yaml`), or plain Airflow DAG code (one `.py` file, or a folder searched
//! recursively for `.py` files, as Airflow's `dags/` folder is).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::project::{self, Project};

/// Directory names never searched for DAG files.
const SKIPPED_DIRS: &[&str] = &["__pycache__", "node_modules", "site-packages"];

/// The DAG code a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A project directory (holding `leoflow.yaml`), as the user typed it.
    Project(PathBuf),
    /// Plain DAG files: `root` (as typed; file paths are shown relative to it) and the files.
    Files { root: PathBuf, files: Vec<PathBuf> },
}

/// Why a path names no DAG code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} does not exist", .0.display())]
    NotFound(PathBuf),
    #[error("{} is neither a directory nor a Python (.py) file", .0.display())]
    NotDagCode(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Target {
    /// Resolves `path`: a directory with `leoflow.yaml` (or that file itself) is a project;
    /// any other directory or `.py` file is plain DAG code.
    pub fn resolve(path: &Path) -> Result<Target, Error> {
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(path.to_path_buf()),
            _ => Error::Read {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        if meta.is_dir() {
            if Project::is_project(path) {
                return Ok(Target::Project(path.to_path_buf()));
            }
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            return Ok(Target::Files {
                root: path.to_path_buf(),
                files,
            });
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        if path.file_name().is_some_and(|n| n == project::FILE_NAME) {
            return Ok(Target::Project(parent));
        }
        if path.extension().is_some_and(|e| e == "py") {
            return Ok(Target::Files {
                root: parent,
                files: vec![path.to_path_buf()],
            });
        }
        Err(Error::NotDagCode(path.to_path_buf()))
    }

    /// The directory `git describe` runs in and relative paths are shown from.
    pub fn dir(&self) -> &Path {
        match self {
            Target::Project(dir) => dir,
            Target::Files { root, .. } => root,
        }
    }
}

/// Every `.py` file under `dir` (sorted), skipping hidden entries, caches and virtualenvs.
pub fn python_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    Ok(files)
}

/// Every `.py` file under `dir`, skipping hidden entries, caches and virtualenvs.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Error> {
    let read = |e| Error::Read {
        path: dir.to_path_buf(),
        source: e,
    };
    for entry in fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follow symlinks, as Airflow does for its DAG folder.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_ref()) && !path.join("pyvenv.cfg").exists() {
                walk(&path, files)?;
            }
        } else if path.extension().is_some_and(|e| e == "py") {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_leoflow_yaml_is_a_project() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("leoflow.yaml"), "").unwrap();
        assert_eq!(
            Target::resolve(tmp.path()).unwrap(),
            Target::Project(tmp.path().to_path_buf())
        );
        assert_eq!(
            Target::resolve(&tmp.path().join("leoflow.yaml")).unwrap(),
            Target::Project(tmp.path().to_path_buf())
        );
    }

    #[test]
    fn a_folder_is_searched_recursively_for_python_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for f in [
            "a.py",
            "sub/b.py",
            "notes.txt",
            ".hidden/c.py",
            "__pycache__/d.py",
            "venv/lib/e.py",
        ] {
            let p = root.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, "").unwrap();
        }
        fs::write(root.join("venv/pyvenv.cfg"), "").unwrap();
        let Target::Files { files, .. } = Target::resolve(root).unwrap() else {
            panic!("not plain files");
        };
        assert_eq!(files, [root.join("a.py"), root.join("sub/b.py")]);
    }

    #[test]
    fn a_single_file_is_rooted_at_its_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("etl.py");
        fs::write(&file, "").unwrap();
        assert_eq!(
            Target::resolve(&file).unwrap(),
            Target::Files {
                root: tmp.path().to_path_buf(),
                files: vec![file.clone()]
            }
        );
        let txt = tmp.path().join("x.txt");
        fs::write(&txt, "").unwrap();
        assert!(matches!(Target::resolve(&txt), Err(Error::NotDagCode(_))));
        assert!(matches!(
            Target::resolve(&tmp.path().join("missing")),
            Err(Error::NotFound(_))
        ));
    }
}
