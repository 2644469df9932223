//! How the subprocess executor starts agents.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where the agent binary and the project are, and what else agents get in their
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubprocessConfig {
    /// The `leoflow-agent` binary.
    pub agent_path: PathBuf,
    /// The DAG project's root: the agent's working directory, on python tasks' path.
    pub project_dir: PathBuf,
    /// The Python interpreter for python tasks (`LEOFLOW_PYTHON`).
    pub python: String,
    /// A directory holding the `leoflow_shim` package (`LEOFLOW_SHIM_PATH`), when it is not
    /// installed in that interpreter.
    pub shim_path: Option<PathBuf>,
    /// More variables for every agent (and so every task). Never put secrets here that
    /// tasks must not see.
    pub extra_env: BTreeMap<String, String>,
    /// How long a cancelled agent gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Keep a warm Python runtime that forks python attempts (milliseconds instead of an
    /// interpreter start each); when false, every python attempt starts cold.
    pub warm_runtime: bool,
    /// Where agents create their per-attempt work directories (`LEOFLOW_WORK_ROOT`).
    /// `None`: a private directory on `/dev/shm` when the host has one (removed with the
    /// executor), else the agents' default, `TMPDIR`.
    pub work_root: Option<PathBuf>,
}

impl SubprocessConfig {
    /// Defaults: `python3`, no shim path, no extra variables, a 10 s kill grace (the agent
    /// itself gives its task 5 s, and needs a moment to report), a warm Python runtime,
    /// work directories on `/dev/shm` when there is one.
    pub fn new(
        agent_path: impl Into<PathBuf>,
        project_dir: impl Into<PathBuf>,
    ) -> SubprocessConfig {
        SubprocessConfig {
            agent_path: agent_path.into(),
            project_dir: project_dir.into(),
            python: "python3".into(),
            shim_path: None,
            extra_env: BTreeMap::new(),
            kill_grace: Duration::from_secs(10),
            warm_runtime: true,
            work_root: None,
        }
    }
}
