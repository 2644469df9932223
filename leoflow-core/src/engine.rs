//! The `Engine`: a cheap-to-clone handle over the ports, built with `Engine::builder()`,
//! exposing the commands the surfaces use (register a DAG version, trigger a run, report
//! an attempt's outcome) and starting the scheduler loop (`scheduler`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use leoflow_ports::clock::Clock;
use leoflow_ports::dag::{DagSpec, RETURN_VALUE};
use leoflow_ports::datastore::{self, Datastore, Fence, Transition};
use leoflow_ports::executor::{Executor, Outcome};
use leoflow_ports::lock::{FencingToken, LockManager};
use leoflow_ports::log::{LogLine, LogStore, LogStream};
use leoflow_ports::notify::{Change, Notifier};
use leoflow_ports::run::{AttemptId, DagRun, RunKey, RunType, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use leoflow_ports::version::{content_hash, DagVersion};
use leoflow_ports::xcom::{self, XComStore};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, Notify};

use crate::branch;
use crate::plan::{DagPlan, PlanError};
use crate::recent::RecentlyEnded;
use crate::scheduler;
use crate::validate::{validate, Limits, ValidationErrors};

/// How the scheduler hands attempts to the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// One launch at a time, awaited in the scheduler loop (Lite).
    Serial,
    /// Up to `workers` launches in flight at once (Pro).
    Pool { workers: usize },
}

/// Leader election settings (several replicas sharing one datastore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    /// This replica's identity.
    pub holder: String,
    pub ttl: Duration,
}

/// Engine tunables.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub dispatch: Dispatch,
    /// The periodic tick: cron runs, timeouts, reaping. Never on the path between tasks.
    pub tick: Duration,
    /// An attempt queued longer than this without starting is failed.
    pub queued_timeout: Duration,
    /// A running attempt that heartbeats and then stays silent this long is reaped.
    pub heartbeat_timeout: Duration,
    /// Scheduled runs created per DAG per tick at most (catchup is spread over ticks).
    pub max_runs_per_tick: usize,
    /// Runs of one DAG running at once when the DAG does not say (Airflow's default 16).
    pub default_max_active_runs: u32,
    /// Task instances of one run active (scheduled, queued or running) at once when the DAG
    /// does not set `max_active_tasks`; `None` for no limit. Airflow's default is 16
    /// (`max_active_tasks_per_dag`); a process-per-task laptop needs a bound too.
    pub default_max_active_tasks: Option<u32>,
    pub limits: Limits,
    /// `None`: this engine is the only scheduler (Lite).
    pub lease: Option<LeaseConfig>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            dispatch: Dispatch::Serial,
            tick: Duration::from_secs(5),
            queued_timeout: Duration::from_secs(600),
            heartbeat_timeout: Duration::from_secs(90),
            max_runs_per_tick: 100,
            default_max_active_runs: 16,
            default_max_active_tasks: Some(16),
            limits: Limits::default(),
            lease: None,
        }
    }
}

/// Engine failures, by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("the DAG is invalid:\n{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Datastore(#[from] datastore::Error),
    #[error(transparent)]
    XCom(#[from] xcom::Error),
    #[error("the engine was built without {0}; call Engine::builder().{0}(..)")]
    MissingPort(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The result of registering a spec.
#[derive(Debug, Clone)]
pub struct Registered {
    pub version: DagVersion,
    /// False when an identical spec was registered before.
    pub created: bool,
}

/// A request to start a run by hand.
#[derive(Debug, Clone, Default)]
pub struct TriggerRequest {
    pub run_id: Option<String>,
    pub logical_date: Option<DateTime<Utc>>,
    pub conf: Option<Value>,
    pub note: Option<String>,
    pub triggered_by: Option<String>,
}

/// What happened to a reported outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishResult {
    /// Recorded; the task instance is now in this state.
    Recorded(TaskState),
    /// The attempt is no longer current (a newer try, or already finished); ignored.
    Stale,
}

/// Builds an [`Engine`] from its ports.
#[derive(Default)]
pub struct EngineBuilder {
    store: Option<Arc<dyn Datastore>>,
    executor: Option<Arc<dyn Executor>>,
    xcom: Option<Arc<dyn XComStore>>,
    logs: Option<Arc<dyn LogStore>>,
    notifier: Option<Arc<dyn Notifier>>,
    locks: Option<Arc<dyn LockManager>>,
    clock: Option<Arc<dyn Clock>>,
    config: EngineConfig,
}

impl EngineBuilder {
    pub fn datastore(mut self, store: Arc<dyn Datastore>) -> Self {
        self.store = Some(store);
        self
    }
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }
    pub fn xcom(mut self, xcom: Arc<dyn XComStore>) -> Self {
        self.xcom = Some(xcom);
        self
    }
    pub fn logs(mut self, logs: Arc<dyn LogStore>) -> Self {
        self.logs = Some(logs);
        self
    }
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }
    /// Needed only with `EngineConfig::lease`.
    pub fn locks(mut self, locks: Arc<dyn LockManager>) -> Self {
        self.locks = Some(locks);
        self
    }
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    pub fn build(self) -> Result<Engine> {
        if self.config.lease.is_some() && self.locks.is_none() {
            return Err(Error::MissingPort("locks"));
        }
        let (pokes, poke_rx) = mpsc::unbounded_channel();
        let (finished, _) = broadcast::channel(1024);
        let inner = Inner {
            store: self.store.ok_or(Error::MissingPort("datastore"))?,
            executor: self.executor.ok_or(Error::MissingPort("executor"))?,
            xcom: self.xcom.ok_or(Error::MissingPort("xcom"))?,
            logs: self.logs.ok_or(Error::MissingPort("logs"))?,
            notifier: self.notifier.ok_or(Error::MissingPort("notifier"))?,
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(crate::clock::SystemClock)),
            locks: self.locks,
            config: self.config,
            plans: Mutex::new(HashMap::new()),
            run_versions: Mutex::new(HashMap::new()),
            ended: Mutex::new(RecentlyEnded::default()),
            fence: Mutex::new(None),
            pokes,
            poke_rx: Mutex::new(Some(poke_rx)),
            finished,
            shutdown: Notify::new(),
        };
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }
}

pub(crate) struct Inner {
    pub store: Arc<dyn Datastore>,
    pub executor: Arc<dyn Executor>,
    pub xcom: Arc<dyn XComStore>,
    pub logs: Arc<dyn LogStore>,
    pub notifier: Arc<dyn Notifier>,
    pub locks: Option<Arc<dyn LockManager>>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    plans: Mutex<HashMap<(String, u32), Arc<DagPlan>>>,
    /// The version each unfinished run is pinned to, so reporting an attempt's outcome
    /// costs no run lookup. Entries leave when the run finishes.
    run_versions: Mutex<HashMap<RunKey, u32>>,
    /// Attempts whose end this engine recorded, so the executor's later exit event about
    /// them costs no datastore read.
    ended: Mutex<RecentlyEnded>,
    /// The fencing token of the lease this engine holds, if it is the leader.
    pub fence: Mutex<Option<FencingToken>>,
    pub pokes: mpsc::UnboundedSender<RunKey>,
    pub poke_rx: Mutex<Option<mpsc::UnboundedReceiver<RunKey>>>,
    pub finished: broadcast::Sender<RunKey>,
    pub shutdown: Notify,
}

/// The running engine's handle. Clones share one engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// The scheduler loop started by [`Engine::start`].
pub struct Running {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the scheduler loop (in-flight attempts keep running; a restart re-attaches
    /// to them or fails them), releasing the scheduler lease if it held it, and waits for
    /// it to end.
    pub async fn shutdown(self) {
        self.inner.shutdown.notify_one();
        let _ = self.task.await;
    }
}

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Starts the scheduler loop on the current tokio runtime. Call once.
    pub fn start(&self) -> Running {
        let rx = self
            .inner
            .poke_rx
            .lock()
            .expect("poke receiver lock poisoned")
            .take()
            .expect("Engine::start may be called once");
        let inner = self.inner.clone();
        let task = tokio::spawn(scheduler::run(inner.clone(), rx));
        Running { inner, task }
    }

    /// True when this engine schedules: it has no lease to contend for (Lite), or it
    /// holds the scheduler lease now (the Pro leader).
    pub fn is_leader(&self) -> bool {
        self.inner.schedules_here()
    }

    pub fn datastore(&self) -> &Arc<dyn Datastore> {
        &self.inner.store
    }
    pub fn xcom(&self) -> &Arc<dyn XComStore> {
        &self.inner.xcom
    }
    pub fn logs(&self) -> &Arc<dyn LogStore> {
        &self.inner.logs
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Validates and registers a spec; nothing is stored when it is invalid.
    pub async fn register(&self, spec: DagSpec) -> Result<Registered> {
        validate(&spec, &self.inner.config.limits)?;
        let hash = content_hash(&spec);
        let now = self.inner.clock.now();
        let (version, created) = self
            .inner
            .store
            .register_version(Arc::new(spec), &hash, now)
            .await?;
        let _ = self
            .inner
            .notifier
            .publish(Change::DagVersionRegistered {
                dag_id: version.dag_id.clone(),
                version_number: version.version_number,
            })
            .await;
        Ok(Registered { version, created })
    }

    /// Creates a manual run pinned to the DAG's latest version.
    pub async fn trigger(&self, dag_id: &str, req: TriggerRequest) -> Result<DagRun> {
        let inner = &self.inner;
        let dag = inner
            .store
            .get_dag(dag_id)
            .await?
            .filter(|d| d.is_active)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "DAG {dag_id:?} not found; register it first (leoflow push or leoflow lite)"
                ))
            })?;
        let plan = inner.plan(dag_id, dag.latest_version).await?;
        let now = inner.clock.now();
        let conf = req
            .conf
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        if !conf.is_object() {
            return Err(Error::BadRequest("conf must be a JSON object".into()));
        }
        let stamp = req.logical_date.unwrap_or(now);
        let run_id = req
            .run_id
            .unwrap_or_else(|| format!("manual__{}", iso(stamp)));
        let run = DagRun {
            dag_id: dag_id.to_string(),
            run_id,
            run_type: RunType::Manual,
            logical_date: req.logical_date,
            data_interval_start: req.logical_date,
            data_interval_end: req.logical_date,
            run_after: now,
            conf,
            note: req.note,
            state: RunState::Queued,
            version_number: plan.version_number,
            queued_at: now,
            started_at: None,
            ended_at: None,
            triggered_by: req.triggered_by,
        };
        inner.create_run(&plan, &run).await?;
        Ok(run)
    }

    /// Records an attempt's outcome (the agent API and executor events both land here):
    /// stores the return value, applies branching, and moves the task instance to its
    /// final state or up for retry. The scheduler then advances the run at once.
    pub async fn finish_attempt(
        &self,
        attempt: &AttemptId,
        outcome: Outcome,
    ) -> Result<FinishResult> {
        self.inner.finish_attempt(attempt, outcome).await
    }

    /// Records that an attempt is running (the agent's first call).
    pub async fn attempt_started(
        &self,
        attempt: &AttemptId,
        executor_ref: Option<String>,
        hostname: Option<String>,
    ) -> Result<bool> {
        self.inner
            .attempt_started(attempt, executor_ref, hostname)
            .await
    }

    /// Waits until the run has finished and returns it.
    pub async fn wait_for_run(&self, key: &RunKey) -> Result<DagRun> {
        let mut finished = self.inner.finished.subscribe();
        loop {
            let run = self
                .inner
                .store
                .get_run(key)
                .await?
                .ok_or_else(|| Error::NotFound(format!("run {key} not found")))?;
            if run.state.is_finished() {
                return Ok(run);
            }
            match finished.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(Error::NotFound("the engine stopped".into()))
                }
            }
        }
    }

    /// The scheduling plan of a stored version.
    pub async fn plan(&self, dag_id: &str, version_number: u32) -> Result<Arc<DagPlan>> {
        self.inner.plan(dag_id, version_number).await
    }
}

impl Inner {
    pub fn fence(&self) -> Fence {
        *self.fence.lock().expect("fence lock poisoned")
    }

    /// True when this engine's own scheduler loop acts on changes (Lite, or the Pro
    /// leader): then a change only needs a local poke. Otherwise it is published so the
    /// replica that schedules hears of it.
    pub fn schedules_here(&self) -> bool {
        self.config.lease.is_none() || self.fence().is_some()
    }

    /// Wakes whoever schedules `run`.
    pub async fn signal(&self, run: RunKey, change: Change) {
        if self.schedules_here() {
            let _ = self.pokes.send(run);
        } else {
            let _ = self.notifier.publish(change).await;
        }
    }

    pub fn remember_version(&self, run: &RunKey, version: u32) {
        self.run_versions
            .lock()
            .expect("run version cache poisoned")
            .insert(run.clone(), version);
    }

    /// True when this engine recorded the end of `attempt`: it is no longer current.
    pub fn ended_here(&self, attempt: &AttemptId) -> bool {
        self.ended
            .lock()
            .expect("ended attempts poisoned")
            .contains(attempt)
    }

    pub fn forget_version(&self, run: &RunKey) {
        self.run_versions
            .lock()
            .expect("run version cache poisoned")
            .remove(run);
    }

    /// The version `run` is pinned to.
    pub async fn run_version(&self, run: &RunKey) -> Result<u32> {
        let cached = self
            .run_versions
            .lock()
            .expect("run version cache poisoned")
            .get(run)
            .copied();
        if let Some(v) = cached {
            return Ok(v);
        }
        let found = self
            .store
            .get_run(run)
            .await?
            .ok_or_else(|| Error::NotFound(format!("run {run} not found")))?;
        if !found.state.is_finished() {
            self.remember_version(run, found.version_number);
        }
        Ok(found.version_number)
    }

    pub async fn plan(&self, dag_id: &str, version_number: u32) -> Result<Arc<DagPlan>> {
        let key = (dag_id.to_string(), version_number);
        if let Some(p) = self.plans.lock().expect("plan cache poisoned").get(&key) {
            return Ok(p.clone());
        }
        let version = self
            .store
            .get_version(dag_id, version_number)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("DAG {dag_id:?} has no version {version_number}"))
            })?;
        let plan = Arc::new(DagPlan::new(&version)?);
        self.plans
            .lock()
            .expect("plan cache poisoned")
            .insert(key, plan.clone());
        Ok(plan)
    }

    /// Stores a run with one instance per unmapped task (mapped tasks get theirs when
    /// they expand) and wakes the scheduler.
    pub async fn create_run(&self, plan: &DagPlan, run: &DagRun) -> Result<()> {
        let key = run.key();
        let tis: Vec<TaskInstance> = plan
            .spec
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.map.is_none())
            .map(|(i, t)| {
                TaskInstance::new(
                    TaskKey::new(&key, t.task_id.clone(), -1),
                    t.operator_name(),
                    plan.policies[i].retries,
                )
            })
            .collect();
        match self.store.create_run(run, &tis, self.fence()).await {
            Ok(()) => {}
            Err(datastore::Error::Conflict { .. }) => {
                return Err(Error::Conflict(format!(
                    "DAG run {:?} of {:?} already exists; choose another run id or logical date",
                    run.run_id, run.dag_id
                )))
            }
            Err(e) => return Err(e.into()),
        }
        self.remember_version(&key, run.version_number);
        self.signal(key.clone(), Change::RunCreated { run: key })
            .await;
        Ok(())
    }

    pub async fn attempt_started(
        &self,
        attempt: &AttemptId,
        executor_ref: Option<String>,
        hostname: Option<String>,
    ) -> Result<bool> {
        for _ in 0..3 {
            let Some(ti) = self.store.get_task_instance(&attempt.task).await? else {
                return Ok(false);
            };
            if ti.try_number != attempt.try_number || ti.state != TaskState::Queued {
                return Ok(ti.try_number == attempt.try_number && ti.state == TaskState::Running);
            }
            let mut new = ti.clone();
            new.state = TaskState::Running;
            new.started_at = Some(self.clock.now());
            new.executor_ref = executor_ref.clone().or(new.executor_ref);
            new.hostname = hostname.clone().or(new.hostname);
            let t = Transition {
                expected_state: ti.state,
                expected_try: ti.try_number,
                new,
            };
            if self.store.transition(&t, None).await? {
                // The timeout's wake-up is set by the next reconcile of the run (at the
                // latest the next tick); the agent also enforces it locally.
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub async fn finish_attempt(
        &self,
        attempt: &AttemptId,
        outcome: Outcome,
    ) -> Result<FinishResult> {
        let key = &attempt.task;
        let version = self.run_version(&key.run()).await?;
        let plan = self.plan(&key.dag_id, version).await?;
        let idx = plan.graph.idx(&key.task_id).ok_or_else(|| {
            Error::NotFound(format!(
                "task {:?} is not in DAG {:?}",
                key.task_id, key.dag_id
            ))
        })?;
        let task = &plan.spec.tasks[idx];

        let current = self.store.get_task_instance(key).await?;
        let Some(ti) =
            current.filter(|t| t.try_number == attempt.try_number && t.state.is_in_flight())
        else {
            return Ok(FinishResult::Stale);
        };

        // Store the return value; a value the store refuses fails the attempt.
        let mut outcome = outcome;
        let mut skips = Vec::new();
        if let Outcome::Success { return_value } = &outcome {
            let stored = self
                .store_return_value(key, task.multiple_outputs, return_value.as_ref())
                .await;
            outcome = match stored {
                Err(message) => Outcome::Failed {
                    message,
                    exit_code: None,
                    retryable: true,
                },
                Ok(()) => {
                    match branch::skipped_by(&plan.spec, &plan.graph, idx, return_value.as_ref()) {
                        Ok(s) => {
                            skips = s;
                            outcome
                        }
                        Err(message) => Outcome::Failed {
                            message,
                            exit_code: None,
                            retryable: true,
                        },
                    }
                }
            };
        }

        let now = self.clock.now();
        let mut new = ti.clone();
        new.started_at.get_or_insert(now);
        new.ended_at = Some(now);
        new.state = match &outcome {
            Outcome::Success { .. } => TaskState::Success,
            Outcome::Skipped { message } => {
                new.error_message.clone_from(message);
                TaskState::Skipped
            }
            Outcome::Failed {
                message,
                exit_code,
                retryable,
            } => {
                new.error_message = Some(message.clone());
                new.exit_code = *exit_code;
                if *retryable && ti.try_number < ti.max_tries {
                    let delay = plan.policies[idx].delay_after(ti.try_number);
                    new.next_retry_at =
                        Some(now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX));
                    TaskState::UpForRetry
                } else {
                    TaskState::Failed
                }
            }
        };
        let state = new.state;
        let t = Transition {
            expected_state: ti.state,
            expected_try: ti.try_number,
            new,
        };
        if !self.store.transition(&t, None).await? {
            // Raced with `attempt_started` (queued → running): try once more from the new state.
            return Box::pin(self.finish_attempt(attempt, outcome)).await;
        }
        self.ended
            .lock()
            .expect("ended attempts poisoned")
            .insert(attempt.clone());
        if let Outcome::Failed { message, .. } = &outcome {
            if state == TaskState::UpForRetry {
                self.system_log(
                    attempt,
                    format!(
                        "attempt {} failed: {message}; retrying after its retry delay",
                        attempt.try_number
                    ),
                )
                .await;
            }
        }
        if !skips.is_empty() {
            self.skip_tasks(&plan, &key.run(), &skips).await?;
        }
        self.signal(key.run(), Change::TaskFinished { task: key.clone() })
            .await;
        Ok(FinishResult::Recorded(state))
    }

    async fn store_return_value(
        &self,
        key: &TaskKey,
        multiple: bool,
        value: Option<&Value>,
    ) -> Result<(), String> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(());
        };
        self.xcom
            .put(key, RETURN_VALUE, value)
            .await
            .map_err(|e| e.to_string())?;
        if multiple {
            let Value::Object(map) = value else {
                return Err(format!(
                    "multiple_outputs=True needs the task to return a dict, it returned {value}"
                ));
            };
            for (k, v) in map {
                self.xcom.put(key, k, v).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Marks the given tasks of a run skipped where they have not started.
    async fn skip_tasks(&self, plan: &DagPlan, run: &RunKey, tasks: &[usize]) -> Result<()> {
        let now = self.clock.now();
        let ids: std::collections::HashSet<&str> = tasks
            .iter()
            .map(|&i| plan.spec.tasks[i].task_id.as_str())
            .collect();
        let tis = self.store.task_instances(run).await?;
        let ts: Vec<Transition> = tis
            .into_iter()
            .filter(|ti| ids.contains(ti.key.task_id.as_str()) && ti.state == TaskState::None)
            .map(|ti| {
                let mut new = ti.clone();
                new.state = TaskState::Skipped;
                new.started_at = Some(now);
                new.ended_at = Some(now);
                Transition {
                    expected_state: ti.state,
                    expected_try: ti.try_number,
                    new,
                }
            })
            .collect();
        // Mapped tasks without instances yet are skipped by reconcile through trigger rules.
        self.store.transition_many(&ts, self.fence()).await?;
        Ok(())
    }

    /// Marks an attempt's log complete once its process is gone, so log readers and
    /// followers see its end.
    pub async fn close_log(&self, attempt: &AttemptId) {
        if let Err(e) = self.logs.close(attempt).await {
            tracing::warn!(%attempt, error = %e, "could not close an attempt's log");
        }
    }

    /// Appends an engine-written line to an attempt's log.
    pub async fn system_log(&self, attempt: &AttemptId, message: String) {
        let line = LogLine {
            at: self.clock.now(),
            stream: LogStream::System,
            message,
        };
        if let Err(e) = self.logs.append(attempt, &[line]).await {
            tracing::warn!(%attempt, error = %e, "could not write a system log line");
        }
    }
}

/// RFC 3339 with `+00:00`, as Airflow renders run ids.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}
