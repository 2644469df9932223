//! Embeds the Python Airflow shim and parser (`python/`) and runs them with a Python
//! interpreter to compile Airflow DAG files to typed [`DagSpec`]s or structured errors.
//!
//! The Python sources are compiled into the binary and written once to a cache directory
//! keyed by their content hash (see [`Shim::python_dir`]), so no `pip install` is needed:
//! only a `python3` ≥ 3.9 with its standard library.

mod cache;
mod wire;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use leoflow_ports::dag::DagSpec;

/// `dag_version` given to compiled DAGs; callers replace it with the real label.
pub const DEV_VERSION: &str = "dev";

/// The oldest interpreter the shim supports.
pub const MIN_PYTHON: (u32, u32) = (3, 9);

/// The content hash of the embedded Python files (names the cache directory).
pub fn content_hash() -> &'static str {
    cache::HASH
}

/// A handle on the embedded shim and the interpreter that runs it. Cheap to create; the
/// Python files are materialised on first use.
#[derive(Debug)]
pub struct Shim {
    python: PathBuf,
    cache_root: PathBuf,
    dir: OnceLock<PathBuf>,
}

/// What compiling a set of DAG files produced: every DAG found and every problem.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Compiled {
    pub dags: Vec<CompiledDag>,
    pub errors: Vec<CompileError>,
    /// What the DAG files and the parser wrote to stderr while importing (their `print`s).
    pub stderr: String,
}

/// One DAG found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledDag {
    /// `dag_version` is [`DEV_VERSION`], `image` is empty and `source` is the file's text.
    pub spec: DagSpec,
    /// The DAG file, relative to the root given to [`Shim::compile`].
    pub file: PathBuf,
}

/// A problem in a DAG file, found while importing or compiling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Relative to the root given to [`Shim::compile`].
    pub file: PathBuf,
    pub line: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Why the shim could not run at all (problems in DAG files are [`CompileError`]s instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("Python interpreter `{}` not found: install python3 ≥ 3.9, or pass --python (or set LEOFLOW_PYTHON) to choose another interpreter", python.display())]
    PythonNotFound { python: PathBuf },
    #[error("`{}` is Python {version}; the Leoflow shim needs Python ≥ 3.9: install a newer python3 or pass --python", python.display())]
    PythonTooOld { python: PathBuf, version: String },
    #[error("could not run `{}`: {source}", python.display())]
    Spawn {
        python: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not write the Python shim to {}: {source}; set LEOFLOW_HOME to a writable directory", path.display())]
    Materialise {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the DAG parser (`{} -m leoflow_shim`) failed with {status}:\n{stderr}", python.display())]
    ParserFailed {
        python: PathBuf,
        status: String,
        /// The last lines the parser wrote to stderr.
        stderr: String,
    },
    #[error("the DAG parser printed something that is not its JSON document ({message}); this is a Leoflow bug:\n{excerpt}")]
    BadOutput { message: String, excerpt: String },
}

impl Shim {
    /// A shim run by `python`, else `$LEOFLOW_PYTHON`, else `python3` (looked up on `PATH`).
    pub fn new(python: Option<PathBuf>) -> Shim {
        let python = python
            .or_else(|| {
                std::env::var_os("LEOFLOW_PYTHON")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from("python3"));
        Shim {
            python,
            cache_root: cache::default_root(),
            dir: OnceLock::new(),
        }
    }

    /// Materialise the Python files under `<root>/<hash>` instead of the default cache
    /// (`$LEOFLOW_HOME/shim`, `$XDG_CACHE_HOME/leoflow/shim` or `~/.cache/leoflow/shim`).
    pub fn with_cache_root(mut self, root: impl Into<PathBuf>) -> Shim {
        self.cache_root = root.into();
        self.dir = OnceLock::new();
        self
    }

    /// The interpreter this shim runs.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The directory holding the `airflow` and `leoflow_shim` packages (what goes on
    /// `PYTHONPATH`), written on first call.
    pub fn python_dir(&self) -> Result<&Path, Error> {
        if let Some(dir) = self.dir.get() {
            return Ok(dir);
        }
        let dir = cache::materialise(&self.cache_root).map_err(|source| Error::Materialise {
            path: self.cache_root.join(cache::HASH),
            source,
        })?;
        Ok(self.dir.get_or_init(|| dir))
    }

    /// A command running `python -m leoflow_shim <args>` with the shim on `PYTHONPATH`
    /// (ahead of any inherited entries, so `import airflow` finds the shim).
    pub fn command(&self) -> Result<Command, Error> {
        let dir = self.python_dir()?;
        let mut paths = vec![dir.to_path_buf()];
        if let Some(existing) = std::env::var_os("PYTHONPATH") {
            paths.extend(std::env::split_paths(&existing));
        }
        let joined = std::env::join_paths(paths).map_err(|e| Error::Materialise {
            path: dir.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        let mut cmd = Command::new(&self.python);
        cmd.arg("-m")
            .arg("leoflow_shim")
            .env("PYTHONPATH", joined)
            .env("PYTHONIOENCODING", "utf-8");
        Ok(cmd)
    }

    /// Imports every file under the shim and returns the DAGs they define. `files` may be
    /// absolute or relative to the current directory; `CompiledDag::file` and
    /// `CompileError::file` are relative to `root`. DAG files run with `root` as their
    /// working directory.
    pub fn compile(&self, root: &Path, files: &[PathBuf]) -> Result<Compiled, Error> {
        if files.is_empty() {
            return Ok(Compiled::default());
        }
        let root = absolute(root);
        let files: Vec<PathBuf> = files.iter().map(|f| absolute(f)).collect();
        // Read the sources first, so `source` is exactly the text that was compiled.
        let sources: HashMap<String, String> = files
            .iter()
            .filter_map(|f| {
                let text = fs::read(f).ok()?;
                Some((
                    fileloc(f, &root),
                    String::from_utf8_lossy(&text).into_owned(),
                ))
            })
            .collect();

        let mut cmd = self.command()?;
        cmd.arg("compile")
            .arg("--root")
            .arg(&root)
            .args(&files)
            .current_dir(&root)
            .stdin(Stdio::null());
        let output = cmd.output().map_err(|source| self.spawn_error(source))?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            self.check_version()?;
            return Err(Error::ParserFailed {
                python: self.python.clone(),
                status: output.status.to_string(),
                stderr: tail(&stderr, 20),
            });
        }
        let document = wire::Document::parse(&output.stdout)?;
        let mut compiled = Compiled {
            dags: Vec::new(),
            errors: document.errors,
            stderr,
        };
        for dag in document.dags {
            match dag.into_spec(&sources) {
                Ok(compiled_dag) => compiled.dags.push(compiled_dag),
                Err(e) => compiled.errors.push(e),
            }
        }
        Ok(compiled)
    }

    /// The shim's own version (`python -m leoflow_shim version`).
    pub fn version(&self) -> Result<String, Error> {
        let mut cmd = self.command()?;
        let output = cmd
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| self.spawn_error(source))?;
        if !output.status.success() {
            self.check_version()?;
            return Err(Error::ParserFailed {
                python: self.python.clone(),
                status: output.status.to_string(),
                stderr: tail(&String::from_utf8_lossy(&output.stderr), 20),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn spawn_error(&self, source: io::Error) -> Error {
        if source.kind() == io::ErrorKind::NotFound {
            Error::PythonNotFound {
                python: self.python.clone(),
            }
        } else {
            Error::Spawn {
                python: self.python.clone(),
                source,
            }
        }
    }

    /// After a failure, says whether the interpreter is simply too old (or not Python 3).
    fn check_version(&self) -> Result<(), Error> {
        let probe = Command::new(&self.python)
            .args([
                "-c",
                "import sys; print('%d.%d' % tuple(sys.version_info[:2]))",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        let Ok(probe) = probe else { return Ok(()) };
        let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
        let parsed = version
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
        match parsed {
            Some(v) if v < MIN_PYTHON => Err(Error::PythonTooOld {
                python: self.python.clone(),
                version,
            }),
            _ => Ok(()),
        }
    }
}

/// `path` made absolute against the current directory, with `.`/`..` folded lexically.
fn absolute(path: &Path) -> PathBuf {
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `file` relative to `root`, `/`-separated, as the Python side writes `fileloc`.
fn fileloc(file: &Path, root: &Path) -> String {
    let file: Vec<Component> = file.components().collect();
    let root: Vec<Component> = root.components().collect();
    let common = file.iter().zip(&root).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); root.len() - common];
    parts.extend(
        file[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shim(tmp: &Path) -> Shim {
        Shim::new(None).with_cache_root(tmp.join("cache"))
    }

    #[test]
    fn filelocs_are_relative_and_slash_separated() {
        assert_eq!(
            fileloc(Path::new("/p/dags/etl.py"), Path::new("/p")),
            "dags/etl.py"
        );
        assert_eq!(fileloc(Path::new("/p/dag.py"), Path::new("/p")), "dag.py");
        assert_eq!(
            fileloc(Path::new("/q/dag.py"), Path::new("/p/x")),
            "../../q/dag.py"
        );
        assert_eq!(
            absolute(Path::new("/p/./a/../b.py")),
            PathBuf::from("/p/b.py")
        );
    }

    #[test]
    fn a_missing_interpreter_says_what_to_install() {
        let tmp = tempfile::tempdir().unwrap();
        let shim = Shim::new(Some("/nonexistent/python3".into()))
            .with_cache_root(tmp.path().join("cache"));
        let err = shim
            .compile(tmp.path(), &[tmp.path().join("dag.py")])
            .unwrap_err();
        assert!(matches!(err, Error::PythonNotFound { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/python3"), "{text}");
        assert!(text.contains("python3 ≥ 3.9"), "{text}");
        assert!(text.contains("--python"), "{text}");
    }

    /// A fake interpreter: answers the version probe with `version`, and runs `body` otherwise.
    #[cfg(unix)]
    fn fake_python(dir: &Path, version: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-python");
        let script =
            format!("#!/bin/sh\nif [ \"$1\" = \"-c\" ]; then echo {version}; exit 0; fi\n{body}\n");
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[cfg(unix)]
    #[test]
    fn an_old_interpreter_is_named_with_its_version() {
        let tmp = tempfile::tempdir().unwrap();
        let python = fake_python(tmp.path(), "2.7", "echo 'SyntaxError' >&2; exit 1");
        let shim = Shim::new(Some(python)).with_cache_root(tmp.path().join("cache"));
        let err = shim
            .compile(tmp.path(), &[tmp.path().join("d.py")])
            .unwrap_err();
        assert!(
            matches!(&err, Error::PythonTooOld { version, .. } if version == "2.7"),
            "{err:?}"
        );
        assert!(err.to_string().contains("Python ≥ 3.9"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_crashing_parser_shows_the_end_of_its_stderr() {
        let tmp = tempfile::tempdir().unwrap();
        let python = fake_python(
            tmp.path(),
            "3.11",
            "i=0; while [ $i -lt 30 ]; do echo line$i >&2; i=$((i+1)); done; exit 3",
        );
        let shim = Shim::new(Some(python)).with_cache_root(tmp.path().join("cache"));
        let err = shim
            .compile(tmp.path(), &[tmp.path().join("d.py")])
            .unwrap_err();
        let Error::ParserFailed { stderr, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(stderr.lines().count(), 20);
        assert!(stderr.ends_with("line29"), "{stderr}");
        assert!(!stderr.contains("line9\n"), "{stderr}");
    }

    #[cfg(unix)]
    #[test]
    fn output_that_is_not_the_document_is_a_bad_output_error() {
        let tmp = tempfile::tempdir().unwrap();
        let python = fake_python(tmp.path(), "3.11", "echo 'hello from a DAG'; exit 0");
        let shim = Shim::new(Some(python)).with_cache_root(tmp.path().join("cache"));
        let err = shim
            .compile(tmp.path(), &[tmp.path().join("d.py")])
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadOutput { excerpt, .. } if excerpt.contains("hello from a DAG")),
            "{err:?}"
        );
    }

    #[test]
    fn no_files_compile_to_nothing_without_running_python() {
        let shim = Shim::new(Some("/nonexistent/python3".into()));
        assert_eq!(
            shim.compile(Path::new("."), &[]).unwrap(),
            Compiled::default()
        );
    }

    #[test]
    fn an_explicit_interpreter_wins_over_the_default() {
        let shim = Shim::new(Some("/opt/py/bin/python3.12".into()));
        assert_eq!(shim.python(), Path::new("/opt/py/bin/python3.12"));
    }

    #[test]
    fn python_dir_holds_both_packages() {
        let tmp = tempfile::tempdir().unwrap();
        let shim = shim(tmp.path());
        let dir = shim.python_dir().unwrap().to_path_buf();
        assert_eq!(dir, tmp.path().join("cache").join(content_hash()));
        assert!(dir.join("airflow/__init__.py").is_file());
        assert!(dir.join("leoflow_shim/__main__.py").is_file());
        assert_eq!(shim.python_dir().unwrap(), dir);
    }

    #[test]
    fn the_shim_reports_its_version() {
        let tmp = tempfile::tempdir().unwrap();
        let version = shim(tmp.path()).version().unwrap();
        assert!(!version.is_empty());
        assert!(
            version.chars().next().unwrap().is_ascii_digit(),
            "{version}"
        );
    }

    #[test]
    fn compiles_dags_to_typed_specs_with_the_file_text() {
        let tmp = tempfile::tempdir().unwrap();
        let dags = tmp.path().join("dags");
        fs::create_dir_all(&dags).unwrap();
        let text = r#"from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("hello", start_date=datetime(2024, 1, 1), schedule="@daily", tags=["t"]):
    a = BashOperator(task_id="a", bash_command="echo a", retries=2)
    b = BashOperator(task_id="b", bash_command="echo b")
    a >> b
"#;
        fs::write(dags.join("hello.py"), text).unwrap();
        let compiled = shim(tmp.path())
            .compile(tmp.path(), &[dags.join("hello.py")])
            .unwrap();
        assert_eq!(compiled.errors, []);
        assert_eq!(compiled.dags.len(), 1);
        let dag = &compiled.dags[0];
        assert_eq!(dag.file, PathBuf::from("dags/hello.py"));
        assert_eq!(dag.spec.dag_id, "hello");
        assert_eq!(dag.spec.dag_version, DEV_VERSION);
        assert_eq!(dag.spec.image, "");
        assert_eq!(dag.spec.source.as_deref(), Some(text));
        assert_eq!(dag.spec.fileloc.as_deref(), Some("dags/hello.py"));
        assert_eq!(dag.spec.schedule.as_deref(), Some("@daily"));
        let b = dag.spec.task("b").unwrap();
        assert_eq!(b.depends_on, ["a"]);
        assert_eq!(dag.spec.task("a").unwrap().retries, Some(2));
    }

    #[test]
    fn problems_in_dag_files_are_errors_with_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("broken.py"),
            "from airflow.sdk import DAG\n\nx = (\n",
        )
        .unwrap();
        let compiled = shim(tmp.path())
            .compile(tmp.path(), &[tmp.path().join("broken.py")])
            .unwrap();
        assert!(compiled.dags.is_empty());
        assert_eq!(compiled.errors.len(), 1, "{:?}", compiled.errors);
        let e = &compiled.errors[0];
        assert_eq!(e.file, PathBuf::from("broken.py"));
        assert!(e.line.is_some(), "{e:?}");
        assert!(e.to_string().starts_with("broken.py:"), "{e}");
    }

    #[test]
    fn relative_paths_are_resolved_against_the_current_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let shim = shim(tmp.path());
        let compiled = shim
            .compile(Path::new("."), &[PathBuf::from("does_not_exist.py")])
            .unwrap();
        assert_eq!(compiled.errors.len(), 1, "{compiled:?}");
        assert_eq!(compiled.errors[0].file, PathBuf::from("does_not_exist.py"));
    }
}
