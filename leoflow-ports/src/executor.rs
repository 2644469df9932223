//! The `Executor` port: something that runs one task attempt in isolation (a process, a
//! pod, an in-process HTTP call) and reports what happened as events.
//!
//! Contract, for every implementation:
//! - `launch` MUST be idempotent per [`AttemptId`]: launching the same attempt twice starts
//!   one process/pod. It returns once the launch is accepted, without waiting for the task.
//! - `cancel` of an unknown or finished attempt is not an error.
//! - Every launched attempt eventually produces exactly one terminal event
//!   (`Finished`, `Exited` or `Lost`) on every subscription opened before it ended.
//! - `live()` lists the attempts that are running now, so a restarted control plane can
//!   re-attach to them instead of launching duplicates.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::dag::{DagSpec, TaskKind, TaskSpec};
use crate::run::{AttemptId, RunType};

/// What an executor needs to run one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: AttemptId,
    /// The version of the DAG the run is pinned to.
    pub dag: Arc<DagSpec>,
    pub version_number: u32,
    pub run_type: RunType,
    /// The attempt's execution timeout, if any.
    pub timeout: Option<Duration>,
}

impl Attempt {
    /// The task this attempt runs. Attempts are only built for tasks of their DAG.
    pub fn task(&self) -> &TaskSpec {
        self.dag
            .task(&self.id.task.task_id)
            .expect("an Attempt is only built for a task of its own DAG")
    }
}

/// How an attempt ended, when the executor itself knows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success {
        /// The JSON return value, pushed as the `return_value` XCom.
        return_value: Option<Value>,
    },
    Failed {
        message: String,
        exit_code: Option<i32>,
        /// False for `AirflowFailException`-style failures that must not be retried.
        retryable: bool,
    },
    Skipped {
        message: Option<String>,
    },
}

/// What an executor reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The attempt's process/pod is running.
    Started {
        attempt: AttemptId,
        executor_ref: Option<String>,
        hostname: Option<String>,
    },
    /// The attempt ended and the executor knows its outcome (inline HTTP, fakes).
    Finished {
        attempt: AttemptId,
        outcome: Outcome,
    },
    /// The attempt's process/pod ended. Its outcome, if any, was reported separately by
    /// the agent; an attempt still running when this arrives never reported and failed.
    Exited {
        attempt: AttemptId,
        exit_code: Option<i32>,
        message: Option<String>,
    },
    /// The executor lost track of the attempt (node gone, pod deleted).
    Lost { attempt: AttemptId, reason: String },
}

impl Event {
    pub fn attempt(&self) -> &AttemptId {
        match self {
            Event::Started { attempt, .. }
            | Event::Finished { attempt, .. }
            | Event::Exited { attempt, .. }
            | Event::Lost { attempt, .. } => attempt,
        }
    }
}

/// What an executor can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Task kinds it runs.
    pub kinds: Vec<TaskKind>,
    /// Each attempt is isolated from the host (container/pod), not a bare process.
    pub isolated: bool,
    /// Attempts survive a control-plane restart and are found again by `live()`.
    pub reattaches: bool,
}

/// Executor failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The attempt cannot run here (wrong task kind, bad spec); retrying will not help.
    #[error("executor rejected the attempt: {message}")]
    Rejected { message: String },
    #[error("executor unavailable: {message}")]
    Unavailable { message: String, retryable: bool },
}

/// A stream of executor events.
pub type EventStream = BoxStream<'static, Event>;

/// Runs task attempts.
#[async_trait]
pub trait Executor: Send + Sync {
    /// A short name for logs and metrics (`subprocess`, `kubernetes`, …).
    fn name(&self) -> &str;
    fn capabilities(&self) -> Capabilities;
    async fn launch(&self, attempt: Attempt) -> Result<(), Error>;
    async fn cancel(&self, attempt: &AttemptId) -> Result<(), Error>;
    /// A new subscription to events emitted from now on.
    fn subscribe(&self) -> EventStream;
    async fn live(&self) -> Result<Vec<AttemptId>, Error>;
}

/// Mints what an agent needs to talk to the control plane for one attempt: the agent API's
/// base URL and a credential scoped to that attempt alone.
///
/// Executors that start an agent (subprocess, Kubernetes) receive an implementation from
/// whoever wires the edition binary; the http adapter's `AgentTokens` is the real one. It
/// lives in the ports so an executor never depends on the http adapter.
///
/// Contract, for every implementation:
/// - A token minted for one attempt MUST NOT authorise calls about any other attempt
///   (another task, run or try number).
/// - A token MUST expire; its lifetime SHOULD cover the attempt's timeout plus a grace.
/// - The token is a secret: executors pass it to the agent only (never log it, never put
///   it in the task's own environment when they can avoid it).
pub trait AttemptCredentials: Send + Sync {
    /// A bearer token for the agent of `attempt`.
    fn token_for(&self, attempt: &Attempt) -> String;
    /// The base URL of the control plane's agent API, as the agent reaches it
    /// (`http://127.0.0.1:8088`); endpoints live under `/agent/v1/`.
    fn agent_url(&self) -> String;
}
