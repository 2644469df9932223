//! The `Datastore` port: the durable source of truth for DAGs, versions, runs and task
//! instances, plus the metadata the API manages (users, variables, connections, audit log,
//! import errors). It is split by capability (`DagStore`, `RunStore`, `TaskStore`,
//! `MetaStore`) and combined into `Datastore`.
//!
//! Contract, for every implementation:
//! - A task-instance state change MUST be a compare-and-set on (state, try number): two
//!   schedulers or a retried request can never double-dispatch or resurrect a task.
//! - `create_run` MUST store the run and all its task instances atomically, or nothing.
//! - A write carrying a fencing token lower than the highest token raised so far MUST be
//!   refused with [`Error::Fenced`] and change nothing.
//! - Registering a spec whose content hash equals an existing version of that DAG MUST
//!   return that version, not create another.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dag::DagSpec;
use crate::lock::FencingToken;
use crate::run::{DagRun, RunKey, TaskInstance, TaskKey};
use crate::state::{RunState, TaskState};
use crate::version::{DagRecord, DagVersion};

/// What went wrong in a datastore, by meaning rather than by driver code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("write refused: fencing token {token} is older than {current} (this process is no longer the leader)")]
    Fenced { token: u64, current: u64 },
    #[error("invalid request: {message}")]
    Invalid { message: String },
    #[error("datastore unavailable: {message}")]
    Unavailable { message: String, retryable: bool },
}

impl Error {
    pub fn not_found(what: impl Into<String>) -> Error {
        Error::NotFound { what: what.into() }
    }
    pub fn conflict(what: impl Into<String>) -> Error {
        Error::Conflict { what: what.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The fencing token a leader-only write carries; `None` for writes any replica may make
/// (API calls, agent reports).
pub type Fence = Option<FencingToken>;

/// DAGs and their versions.
#[async_trait]
pub trait DagStore: Send + Sync {
    /// Registers `spec` (already validated) under its content hash. Returns the version and
    /// whether it was newly created. A new version becomes the DAG's latest, and so does
    /// an older version whose content is registered again (the DAG file was reverted).
    /// The DAG is created (unpaused, active) on first registration and re-activated by
    /// any registration if it was deregistered.
    async fn register_version(
        &self,
        spec: Arc<DagSpec>,
        spec_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(DagVersion, bool)>;
    async fn get_dag(&self, dag_id: &str) -> Result<Option<DagRecord>>;
    /// Active DAGs ordered by dag_id.
    async fn list_dags(&self) -> Result<Vec<DagRecord>>;
    async fn get_version(&self, dag_id: &str, version_number: u32) -> Result<Option<DagVersion>>;
    /// Newest first.
    async fn list_versions(&self, dag_id: &str) -> Result<Vec<DagVersion>>;
    /// [`Error::NotFound`] when the DAG is unknown.
    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<DagRecord>;
    /// Deletes the DAG's runs and task instances, keeping the DAG and its versions.
    async fn clear_history(&self, dag_id: &str) -> Result<()>;
    /// Marks the DAG inactive (hidden, never scheduled); history is kept.
    async fn deactivate(&self, dag_id: &str) -> Result<()>;
}

/// Which runs a listing returns.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub dag_id: Option<String>,
    pub states: Vec<RunState>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// DAG runs.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Stores a run with all its task instances in one atomic step.
    /// [`Error::Conflict`] when `(dag_id, run_id)` exists already.
    async fn create_run(&self, run: &DagRun, tasks: &[TaskInstance], fence: Fence) -> Result<()>;
    async fn get_run(&self, key: &RunKey) -> Result<Option<DagRun>>;
    /// Runs matching the filter, newest first (by `run_after`, then run_id), and the total
    /// count before limit/offset.
    async fn list_runs(&self, filter: &RunFilter) -> Result<(Vec<DagRun>, usize)>;
    /// Queued and running runs of every DAG, oldest first.
    async fn active_runs(&self) -> Result<Vec<DagRun>>;
    /// The most recent `logical_date` among the DAG's scheduled runs.
    async fn last_scheduled_logical_date(&self, dag_id: &str) -> Result<Option<DateTime<Utc>>>;
    /// Compare-and-set on the run's state: writes `new` only if the stored state is
    /// `expected`. Returns whether it was written.
    async fn update_run(&self, expected: RunState, new: &DagRun, fence: Fence) -> Result<bool>;
    /// Deletes the run and its task instances.
    async fn delete_run(&self, key: &RunKey) -> Result<()>;
}

/// One compare-and-set on a task instance: `new` is written only if the stored row is
/// still in `expected_state` at `expected_try`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub expected_state: TaskState,
    pub expected_try: u32,
    pub new: TaskInstance,
}

/// Which task instances a listing returns.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub dag_id: Option<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub states: Vec<TaskState>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// Task instances.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Every instance of the run, ordered by (task_id, map_index).
    async fn task_instances(&self, run: &RunKey) -> Result<Vec<TaskInstance>>;
    async fn get_task_instance(&self, key: &TaskKey) -> Result<Option<TaskInstance>>;
    /// Adds instances to an existing run (dynamic mapping expands at run time). Instances
    /// that exist already are left untouched. [`Error::NotFound`] if the run is missing.
    async fn add_task_instances(
        &self,
        run: &RunKey,
        tasks: &[TaskInstance],
        fence: Fence,
    ) -> Result<()>;
    /// Compare-and-set; see [`Transition`]. When the try number grows from a started try
    /// (1 or more), the stored row of that try is archived (see [`TaskStore::tries`]).
    /// `last_heartbeat_at` and `note` are not written by a transition (they have their
    /// own setters) except that a new try clears the heartbeat.
    async fn transition(&self, t: &Transition, fence: Fence) -> Result<bool>;
    /// Several transitions; each is its own compare-and-set. Results are in input order.
    async fn transition_many(&self, ts: &[Transition], fence: Fence) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(ts.len());
        for t in ts {
            out.push(self.transition(t, fence).await?);
        }
        Ok(out)
    }
    /// Records a heartbeat for the attempt if it is still queued or running at that try.
    /// Returns false when the attempt is no longer current (the agent should stop).
    async fn heartbeat(&self, key: &TaskKey, try_number: u32, at: DateTime<Utc>) -> Result<bool>;
    /// Every queued or running instance, of every run.
    async fn in_flight(&self) -> Result<Vec<TaskInstance>>;
    /// Finished tries (archived when the next try began) and the current one, oldest first.
    /// An instance that never started (try 0) has none.
    async fn tries(&self, key: &TaskKey) -> Result<Vec<TaskInstance>>;
    /// Instances matching the filter ordered by (dag_id, run_id, task_id, map_index), and
    /// the total count before limit/offset.
    async fn list_task_instances(&self, filter: &TaskFilter) -> Result<(Vec<TaskInstance>, usize)>;
    /// [`Error::NotFound`] when the instance is unknown.
    async fn set_task_note(&self, key: &TaskKey, note: Option<String>) -> Result<()>;
    /// Records `token` as the newest leader's; later writes with a lower token fail with
    /// [`Error::Fenced`]. Raising to a lower value than the current one is a no-op.
    async fn raise_fence(&self, token: FencingToken) -> Result<()>;
}

/// A local user with a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    /// A PHC string (argon2 or bcrypt); never the password itself.
    pub password_hash: String,
    pub role: String,
    pub tenant: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// An active administrator of the default tenant, as an edition's bootstrap creates it.
    pub fn admin(username: String, password_hash: String, created_at: DateTime<Utc>) -> User {
        User {
            username,
            password_hash,
            role: "admin".into(),
            tenant: "default".into(),
            is_active: true,
            created_at,
        }
    }
}

/// A variable (`Variable.get`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
}

/// A connection. `password` and `extra` hold ciphertext: encryption happens before the
/// datastore sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub conn_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub login: Option<String>,
    pub schema: Option<String>,
    pub port: Option<u16>,
    pub password_ciphertext: Option<String>,
    pub extra_ciphertext: Option<String>,
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned by the store, increasing.
    pub id: u64,
    pub at: DateTime<Utc>,
    pub actor: Option<String>,
    pub event: String,
    pub dag_id: Option<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub extra: Value,
}

/// A DAG file that failed to compile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportError {
    pub filename: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Users, variables, connections, audit log and import errors (per tenant `default` on
/// Lite; Pro scopes by tenant in the adapter).
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Inserts or replaces the user.
    async fn put_user(&self, user: &User) -> Result<()>;
    async fn get_user(&self, username: &str) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;

    async fn put_variable(&self, var: &Variable) -> Result<()>;
    async fn get_variable(&self, key: &str) -> Result<Option<Variable>>;
    /// Ordered by key.
    async fn list_variables(&self) -> Result<Vec<Variable>>;
    /// [`Error::NotFound`] when absent.
    async fn delete_variable(&self, key: &str) -> Result<()>;

    async fn put_connection(&self, conn: &Connection) -> Result<()>;
    async fn get_connection(&self, conn_id: &str) -> Result<Option<Connection>>;
    /// Ordered by conn_id.
    async fn list_connections(&self) -> Result<Vec<Connection>>;
    /// [`Error::NotFound`] when absent.
    async fn delete_connection(&self, conn_id: &str) -> Result<()>;

    /// Appends an event; the store assigns its id. Returns the id.
    async fn append_audit(&self, event: &AuditEvent) -> Result<u64>;
    /// Newest first, optionally for one DAG, and the total count.
    async fn list_audit(
        &self,
        dag_id: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<AuditEvent>, usize)>;

    /// Inserts or replaces the import error of `filename`.
    async fn put_import_error(&self, err: &ImportError) -> Result<()>;
    async fn delete_import_error(&self, filename: &str) -> Result<()>;
    /// Ordered by filename.
    async fn list_import_errors(&self) -> Result<Vec<ImportError>>;
}

/// Everything the engine and the API need from a datastore.
pub trait Datastore: DagStore + RunStore + TaskStore + MetaStore {}

impl<T: DagStore + RunStore + TaskStore + MetaStore> Datastore for T {}
