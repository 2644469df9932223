//! The event-driven scheduler loop. It wakes on executor events, on notifier changes and
//! on pokes from the engine handle, drains everything pending into one batch, reconciles
//! the runs that changed and applies the decisions (compare-and-set writes, then
//! launches). The periodic tick only creates cron runs, notices deadlines and reaps; it is
//! never on the path from one task finishing to the next starting.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use leoflow_ports::dag::XComRef;
use leoflow_ports::datastore::{RunFilter, Transition};
use leoflow_ports::executor::{self, Attempt, Event, EventStream, Outcome};
use leoflow_ports::notify::Change;
use leoflow_ports::run::{AttemptId, DagRun, RunKey, RunType, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

use crate::engine::{iso, Dispatch, Inner, Result};
use crate::lease::Keeper;
use crate::mapping;
use crate::plan::DagPlan;
use crate::reconcile::{reconcile, Decisions, RunView};
use crate::schedule::{due_runs, next_fire_after, DueInput};

/// How many reconcile passes one run gets per batch before yielding to other work.
const PASSES_PER_BATCH: usize = 64;
/// Runs advanced, and attempts' events recorded, at the same time.
const CONCURRENCY: usize = 16;
/// Rounds over the dirty runs before the loop takes in new events again.
const ROUNDS_PER_BATCH: usize = 8;

pub(crate) async fn run(inner: Arc<Inner>, pokes: mpsc::UnboundedReceiver<RunKey>) {
    let events = inner.executor.subscribe();
    let changes: BoxStream<'static, Change> = match inner.notifier.subscribe().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot subscribe to the notifier; relying on the tick");
            futures::stream::pending().boxed()
        }
    };
    let launch_slots = match inner.config.dispatch {
        Dispatch::Serial => None,
        Dispatch::Pool { workers } => Some(Arc::new(Semaphore::new(workers.max(1)))),
    };
    let mut s = Scheduler {
        inner,
        dirty: BTreeSet::new(),
        rescan: true,
        wake_at: None,
        next_tick: DateTime::<Utc>::MIN_UTC,
        keeper: None,
        launch_slots,
        launch_lock: tokio::sync::Mutex::new(()),
        start_lock: tokio::sync::Mutex::new(()),
    };
    s.main(events, changes, pokes).await;
}

struct Scheduler {
    inner: Arc<Inner>,
    dirty: BTreeSet<RunKey>,
    /// Every active run must be looked at (start, tick, resync).
    rescan: bool,
    wake_at: Option<DateTime<Utc>>,
    next_tick: DateTime<Utc>,
    /// Renews the lease while this engine leads.
    keeper: Option<Keeper>,
    launch_slots: Option<Arc<Semaphore>>,
    /// Serial dispatch: one launch at a time even when runs are advanced concurrently.
    launch_lock: tokio::sync::Mutex<()>,
    /// Starting queued runs is serialised so `max_active_runs` holds.
    start_lock: tokio::sync::Mutex<()>,
}

/// What advancing one run asks of the loop: a wake-up time and runs to revisit.
#[derive(Default)]
struct Feedback {
    wake_at: Option<DateTime<Utc>>,
    dirty: Vec<RunKey>,
}

impl Feedback {
    fn wake(&mut self, at: DateTime<Utc>) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

enum Input {
    Event(Event),
    Change(Change),
    Poke(RunKey),
}

impl Scheduler {
    async fn main(
        &mut self,
        mut events: EventStream,
        mut changes: BoxStream<'static, Change>,
        mut pokes: mpsc::UnboundedReceiver<RunKey>,
    ) {
        loop {
            let leader = self.ensure_leader().await;
            let now = self.inner.clock.now();
            if leader {
                if now >= self.next_tick {
                    self.next_tick = now + delta(self.inner.config.tick);
                    self.tick(now).await;
                }
                self.process().await;
            }
            // A follower only wakes to campaign again (or for an event): its tick and
            // deadlines belong to the leader.
            let mut next = if leader {
                self.next_tick
            } else {
                now + self.campaign_interval()
            };
            if let Some(w) = self.wake_at.take() {
                next = next.min(w);
            }
            if self.keeper.is_some() {
                // Notice a lost lease within a second even when nothing happens.
                next = next.min(now + TimeDelta::seconds(1));
            }
            let sleep = self.inner.clock.sleep_until(next);
            let first = tokio::select! {
                biased;
                () = self.inner.shutdown.notified() => {
                    self.step_down().await;
                    return;
                }
                Some(e) = events.next() => Input::Event(e),
                Some(k) = pokes.recv() => Input::Poke(k),
                Some(c) = changes.next() => Input::Change(c),
                () = sleep => {
                    // A deadline (retry delay, timeout) or the lease renewal came due.
                    self.rescan = true;
                    continue;
                }
            };
            // Drain whatever else is already pending so it is reconciled in one batch. The
            // drain runs unconstrained: tokio's co-operative budget would otherwise report
            // a ready channel as pending after ~128 items and split the batch.
            let mut batch = vec![first];
            tokio::task::unconstrained(async {
                loop {
                    if let Some(Some(e)) = events.next().now_or_never() {
                        batch.push(Input::Event(e));
                    } else if let Ok(k) = pokes.try_recv() {
                        batch.push(Input::Poke(k));
                    } else if let Some(Some(c)) = changes.next().now_or_never() {
                        batch.push(Input::Change(c));
                    } else {
                        break;
                    }
                }
            })
            .await;
            let mut events: Vec<Event> = Vec::new();
            for input in batch {
                match input {
                    Input::Event(e) => events.push(e),
                    other => self.handle(other),
                }
            }
            if leader {
                self.on_events(events).await;
            }
        }
    }

    /// Records a batch of executor events: one attempt's events in order, different
    /// attempts concurrently (their datastore round trips overlap).
    async fn on_events(&mut self, events: Vec<Event>) {
        let mut by_attempt: Vec<(AttemptId, Vec<Event>)> = Vec::new();
        let mut index: HashMap<AttemptId, usize> = HashMap::new();
        for e in events {
            let id = e.attempt().clone();
            self.dirty.insert(id.task.run());
            if let Some(&i) = index.get(&id) {
                by_attempt[i].1.push(e);
            } else {
                index.insert(id.clone(), by_attempt.len());
                by_attempt.push((id, vec![e]));
            }
        }
        let this = &*self;
        futures::stream::iter(by_attempt)
            .for_each_concurrent(CONCURRENCY, |(id, events)| async move {
                for e in events {
                    if let Err(err) = this.on_event(e).await {
                        tracing::warn!(attempt = %id, error = %err, "could not record an executor event");
                    }
                }
            })
            .await;
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Poke(k) => {
                self.dirty.insert(k);
            }
            Input::Change(c) => match c {
                Change::RunCreated { run } | Change::RunChanged { run } => {
                    self.dirty.insert(run);
                }
                Change::TaskFinished { task } => {
                    self.dirty.insert(task.run());
                }
                Change::DagVersionRegistered { .. } | Change::DagChanged { .. } => {
                    self.next_tick = DateTime::<Utc>::MIN_UTC;
                }
                Change::Resync => self.rescan = true,
            },
            Input::Event(_) => unreachable!("events are handled in batches by on_events"),
        }
    }

    async fn on_event(&self, event: Event) -> Result<()> {
        let inner = &self.inner;
        match event {
            Event::Started {
                attempt,
                executor_ref,
                hostname,
            } => {
                inner
                    .attempt_started(&attempt, executor_ref, hostname)
                    .await?;
            }
            Event::Finished { attempt, outcome } => {
                inner.finish_attempt(&attempt, outcome).await?;
            }
            Event::Exited {
                attempt,
                exit_code,
                message,
            } => {
                if self.still_current(&attempt).await? {
                    let code =
                        exit_code.map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
                    let mut msg =
                        format!("the task process exited with {code} without reporting a result");
                    if let Some(m) = message {
                        msg = format!("{msg}: {m}");
                    }
                    inner.system_log(&attempt, msg.clone()).await;
                    inner
                        .finish_attempt(
                            &attempt,
                            Outcome::Failed {
                                message: msg,
                                exit_code,
                                retryable: true,
                            },
                        )
                        .await?;
                }
                // The process is gone: nothing but the engine writes to this log again.
                inner.close_log(&attempt).await;
            }
            Event::Lost { attempt, reason } => {
                if self.still_current(&attempt).await? {
                    inner
                        .system_log(&attempt, format!("attempt lost: {reason}"))
                        .await;
                    inner
                        .finish_attempt(
                            &attempt,
                            Outcome::Failed {
                                message: reason,
                                exit_code: None,
                                retryable: true,
                            },
                        )
                        .await?;
                }
                inner.close_log(&attempt).await;
            }
        }
        Ok(())
    }

    async fn still_current(&self, attempt: &AttemptId) -> Result<bool> {
        if self.inner.ended_here(attempt) {
            return Ok(false);
        }
        let ti = self.inner.store.get_task_instance(&attempt.task).await?;
        Ok(ti.is_some_and(|t| t.try_number == attempt.try_number && t.state.is_in_flight()))
    }

    fn lease_ttl(&self) -> std::time::Duration {
        self.inner
            .config
            .lease
            .as_ref()
            .map_or(std::time::Duration::from_secs(10), |l| l.ttl)
    }

    /// How often a follower tries for the lease: a third of its TTL, and at least every
    /// second, so a lease released by a leader shutting down is taken over at once.
    fn campaign_interval(&self) -> TimeDelta {
        delta(self.lease_ttl() / 3).min(TimeDelta::seconds(1))
    }

    /// Acquires or renews the scheduler lease; true when this engine may schedule.
    async fn ensure_leader(&mut self) -> bool {
        let (Some(cfg), Some(locks)) = (&self.inner.config.lease, &self.inner.locks) else {
            if self.rescan && self.next_tick == DateTime::<Utc>::MIN_UTC {
                self.recover().await;
            }
            return true;
        };
        let now = self.inner.clock.now();
        match &self.keeper {
            Some(k) if k.held() => return true,
            Some(_) => {
                // The keeper logged the loss; writes still carry the old token until
                // here, and the datastore refuses them once another leader raised it.
                self.keeper = None;
                *self.inner.fence.lock().expect("fence lock poisoned") = None;
            }
            None => {}
        }
        match locks.try_acquire(&cfg.name, &cfg.holder, cfg.ttl).await {
            Ok(Some(lease)) => {
                if let Err(e) = self.inner.store.raise_fence(lease.token).await {
                    tracing::error!(error = %e, "could not raise the fence; not scheduling");
                    let _ = locks.release(&lease).await;
                    return false;
                }
                tracing::info!(holder = %cfg.holder, token = %lease.token, "became the scheduler leader");
                *self.inner.fence.lock().expect("fence lock poisoned") = Some(lease.token);
                self.keeper = Some(Keeper::start(
                    lease,
                    cfg.ttl,
                    locks.clone(),
                    self.inner.clock.clone(),
                ));
                self.rescan = true;
                self.next_tick = DateTime::<Utc>::MIN_UTC;
                self.recover().await;
                true
            }
            Ok(None) => {
                self.wake_at = Some(now + self.campaign_interval());
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the lock service");
                self.wake_at = Some(now + self.campaign_interval());
                false
            }
        }
    }

    /// Releases the lease on shutdown, so another replica takes over at once instead of
    /// waiting for it to expire.
    async fn step_down(&mut self) {
        let (Some(keeper), Some(locks)) = (self.keeper.take(), &self.inner.locks) else {
            return;
        };
        let lease = keeper.stop();
        *self.inner.fence.lock().expect("fence lock poisoned") = None;
        match locks.release(&lease).await {
            Ok(()) => tracing::info!(holder = %lease.holder, "released the scheduler lease"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the scheduler lease; it expires on its own");
            }
        }
    }

    /// After a start or a leadership change: attempts the executor no longer knows are
    /// re-launched (still queued) or failed (were running).
    async fn recover(&mut self) {
        let inner = self.inner.clone();
        let in_flight = match inner.store.in_flight().await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "recovery: cannot list in-flight task instances");
                return;
            }
        };
        if in_flight.is_empty() {
            return;
        }
        let live: HashSet<AttemptId> = match inner.executor.live().await {
            Ok(v) => v.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "recovery: the executor cannot list live attempts");
                return;
            }
        };
        for ti in in_flight {
            let attempt = ti.attempt();
            let result = if ti.state == TaskState::Queued {
                // Launched again even when the executor knows it: a launch is idempotent
                // per attempt, and one cut short by a crash (a pod created without its
                // token Secret) is completed instead of left to fail.
                if !live.contains(&attempt) {
                    tracing::info!(%attempt, "recovery: re-launching an attempt that never started");
                }
                self.launch_ti(&ti).await
            } else if live.contains(&attempt) {
                continue;
            } else {
                let msg =
                    "the attempt's process is gone (the control plane restarted while it ran)"
                        .to_string();
                inner.system_log(&attempt, msg.clone()).await;
                inner
                    .finish_attempt(
                        &attempt,
                        Outcome::Failed {
                            message: msg,
                            exit_code: None,
                            retryable: true,
                        },
                    )
                    .await
                    .map(|_| ())
            };
            if let Err(e) = result {
                tracing::warn!(%attempt, error = %e, "recovery failed for an attempt");
            }
            self.dirty.insert(ti.key.run());
        }
    }

    async fn launch_ti(&self, ti: &TaskInstance) -> Result<()> {
        let run = self.inner.store.get_run(&ti.key.run()).await?;
        let Some(run) = run else { return Ok(()) };
        let plan = self.inner.plan(&run.dag_id, run.version_number).await?;
        self.launch(&plan, &run, ti.attempt()).await;
        Ok(())
    }

    /// Creates due scheduled runs, reaps silent attempts and asks for a full rescan.
    async fn tick(&mut self, now: DateTime<Utc>) {
        self.rescan = true;
        if let Err(e) = self.create_due_runs(now).await {
            tracing::warn!(error = %e, "could not create scheduled runs");
        }
        if let Err(e) = self.reap(now).await {
            tracing::warn!(error = %e, "could not reap silent attempts");
        }
    }

    async fn create_due_runs(&mut self, now: DateTime<Utc>) -> Result<()> {
        let inner = self.inner.clone();
        for dag in inner.store.list_dags().await? {
            if dag.is_paused || !dag.is_active {
                continue;
            }
            let plan = inner.plan(&dag.dag_id, dag.latest_version).await?;
            if !plan.schedule.is_periodic()
                && !matches!(plan.schedule, crate::schedule::Schedule::Once)
            {
                continue;
            }
            let last = inner.store.last_scheduled_logical_date(&dag.dag_id).await?;
            let input = DueInput {
                schedule: &plan.schedule,
                start_date: plan.spec.start_date,
                end_date: plan.spec.end_date,
                catchup: plan.spec.catchup,
                last_scheduled: last,
                registered_at: dag.created_at,
                now,
            };
            let due = due_runs(&input, inner.config.max_runs_per_tick);
            if due.len() >= inner.config.max_runs_per_tick {
                self.next_tick = now;
            }
            for logical in due {
                let run = DagRun {
                    dag_id: dag.dag_id.clone(),
                    run_id: format!("scheduled__{}", iso(logical)),
                    run_type: RunType::Scheduled,
                    logical_date: Some(logical),
                    data_interval_start: Some(logical),
                    data_interval_end: Some(logical),
                    run_after: logical,
                    conf: Value::Object(serde_json::Map::new()),
                    note: None,
                    state: RunState::Queued,
                    version_number: plan.version_number,
                    queued_at: now,
                    started_at: None,
                    ended_at: None,
                    triggered_by: None,
                };
                match inner.create_run(&plan, &run).await {
                    Ok(()) | Err(crate::engine::Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let after = DueInput {
                now,
                last_scheduled: inner.store.last_scheduled_logical_date(&dag.dag_id).await?,
                ..input
            };
            if let Some(next) = next_fire_after(&after) {
                self.wake(next);
            }
        }
        Ok(())
    }

    /// Fails running attempts whose heartbeats stopped.
    async fn reap(&mut self, now: DateTime<Utc>) -> Result<()> {
        let limit = delta(self.inner.config.heartbeat_timeout);
        for ti in self.inner.store.in_flight().await? {
            let Some(beat) = ti.last_heartbeat_at else {
                continue;
            };
            if ti.state == TaskState::Running && now - beat >= limit {
                let attempt = ti.attempt();
                let msg = format!(
                    "no heartbeat for {}s: the attempt's process is gone; reaped",
                    self.inner.config.heartbeat_timeout.as_secs()
                );
                self.inner.system_log(&attempt, msg.clone()).await;
                let _ = self.inner.executor.cancel(&attempt).await;
                self.inner
                    .finish_attempt(
                        &attempt,
                        Outcome::Failed {
                            message: msg,
                            exit_code: None,
                            retryable: true,
                        },
                    )
                    .await?;
                self.dirty.insert(ti.key.run());
            }
        }
        Ok(())
    }

    fn wake(&mut self, at: DateTime<Utc>) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    async fn process(&mut self) {
        if self.rescan {
            self.rescan = false;
            match self.inner.store.active_runs().await {
                Ok(runs) => {
                    // Every running run, and only the oldest queued run of each DAG: the
                    // others wait their turn (`max_active_runs`) and are woken one by one
                    // as runs start and finish.
                    let mut seen_queued = HashSet::new();
                    for r in runs {
                        if r.state != RunState::Queued || seen_queued.insert(r.dag_id.clone()) {
                            self.dirty.insert(r.key());
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list active runs; will retry");
                    self.rescan = true;
                }
            }
        }
        // Runs are independent: advance them concurrently so their datastore round trips
        // overlap. A run that stays busy comes back in the next round.
        for _ in 0..ROUNDS_PER_BATCH {
            if self.dirty.is_empty() {
                break;
            }
            let keys = std::mem::take(&mut self.dirty);
            let this = &*self;
            let feedback: Vec<Feedback> = futures::stream::iter(keys)
                .map(|key| async move {
                    let mut fb = Feedback::default();
                    if let Err(e) = this.process_run(&key, &mut fb).await {
                        tracing::warn!(run = %key, error = %e, "could not advance the run; will retry on the next tick");
                    }
                    fb
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for fb in feedback {
                if let Some(w) = fb.wake_at {
                    self.wake(w);
                }
                self.dirty.extend(fb.dirty);
            }
        }
    }

    async fn process_run(&self, key: &RunKey, fb: &mut Feedback) -> Result<()> {
        for _ in 0..PASSES_PER_BATCH {
            let Some(mut run) = self.inner.store.get_run(key).await? else {
                return Ok(());
            };
            match run.state {
                RunState::Queued => {
                    if !self.try_start(&mut run).await? {
                        return Ok(());
                    }
                    // There may be room for the next one too.
                    fb.dirty.extend(self.oldest_queued(&run.dag_id).await?);
                }
                RunState::Running => {}
                RunState::Success | RunState::Failed => return Ok(()),
            }
            let plan = self.inner.plan(&run.dag_id, run.version_number).await?;
            let tis = self.inner.store.task_instances(key).await?;
            let now = self.inner.clock.now();
            let d = reconcile(&RunView {
                run: &run,
                plan: &plan,
                tis: &tis,
                now,
                queued_timeout: self.inner.config.queued_timeout,
                default_max_active_tasks: self.inner.config.default_max_active_tasks,
            });
            if let Some(w) = d.wake_at {
                fb.wake(w);
            }
            if d.is_idle() {
                return Ok(());
            }
            if !self.apply(&plan, &run, &tis, d, fb).await? {
                return Ok(());
            }
        }
        // Still busy: come back after the other runs had their turn.
        fb.dirty.push(key.clone());
        Ok(())
    }

    /// Moves a queued run to running when its DAG has room (`max_active_runs`).
    async fn try_start(&self, run: &mut DagRun) -> Result<bool> {
        // Runs of one DAG are started one at a time, so concurrent rounds cannot overshoot
        // the cap.
        let _guard = self.start_lock.lock().await;
        let inner = &self.inner;
        let plan = inner.plan(&run.dag_id, run.version_number).await?;
        let cap = plan
            .spec
            .max_active_runs
            .unwrap_or(inner.config.default_max_active_runs) as usize;
        let filter = RunFilter {
            dag_id: Some(run.dag_id.clone()),
            states: vec![RunState::Running],
            limit: Some(0),
            offset: 0,
        };
        let (_, running) = inner.store.list_runs(&filter).await?;
        if running >= cap {
            return Ok(false);
        }
        let mut new = run.clone();
        new.state = RunState::Running;
        new.started_at = Some(inner.clock.now());
        if inner
            .store
            .update_run(RunState::Queued, &new, inner.fence())
            .await?
        {
            *run = new;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Applies reconcile's decisions. Returns whether another pass may find more to do
    /// without any new event (instances were created, or a compare-and-set lost a race).
    async fn apply(
        &self,
        plan: &Arc<DagPlan>,
        run: &DagRun,
        tis: &[TaskInstance],
        d: Decisions,
        fb: &mut Feedback,
    ) -> Result<bool> {
        let inner = self.inner.clone();
        let fence = inner.fence();
        let key = run.key();
        let mut again = !d.new_instances.is_empty() || !d.expand.is_empty();
        if !d.new_instances.is_empty() {
            inner
                .store
                .add_task_instances(&key, &d.new_instances, fence)
                .await?;
        }
        let applied = inner.store.transition_many(&d.transitions, fence).await?;
        again |= applied.iter().any(|ok| !ok);
        for &task in &d.expand {
            self.expand(plan, run, tis, task).await?;
        }
        for (ti, reason) in &d.timed_out {
            let attempt = ti.attempt();
            let _ = inner.executor.cancel(&attempt).await;
            inner.system_log(&attempt, reason.clone()).await;
            inner
                .finish_attempt(
                    &attempt,
                    Outcome::Failed {
                        message: reason.clone(),
                        exit_code: None,
                        retryable: true,
                    },
                )
                .await?;
        }
        // Phase two of dispatch: launch what phase one (the compare-and-set to queued)
        // secured. An attempt lost to a race is someone else's to launch.
        let launch: HashSet<&TaskKey> = d.dispatch.iter().collect();
        for (t, ok) in d.transitions.iter().zip(&applied) {
            if *ok && t.new.state == TaskState::Queued && launch.contains(&t.new.key) {
                if t.new.try_number > 1 {
                    let _ = inner.xcom.delete_for_task(&t.new.key).await;
                }
                self.launch(plan, run, t.new.attempt()).await;
            }
        }
        if d.run_timed_out {
            self.time_out_run(run, tis, fb).await?;
        } else if let Some(state) = d.finish {
            self.finish_run(run, state, None, fb).await?;
        }
        Ok(again)
    }

    async fn launch(&self, plan: &Arc<DagPlan>, run: &DagRun, id: AttemptId) {
        let idx = plan.graph.idx(&id.task.task_id).unwrap_or_default();
        let attempt = Attempt {
            id,
            dag: plan.spec.clone(),
            version_number: plan.version_number,
            run_type: run.run_type,
            timeout: plan.policies[idx].timeout,
        };
        match &self.launch_slots {
            None => {
                let _serial = self.launch_lock.lock().await;
                let result = self.inner.executor.launch(attempt.clone()).await;
                launch_failed(&self.inner, &attempt.id, result).await;
            }
            Some(slots) => {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let inner = self.inner.clone();
                tokio::spawn(async move {
                    let result = inner.executor.launch(attempt.clone()).await;
                    drop(permit);
                    launch_failed(&inner, &attempt.id, result).await;
                });
            }
        }
    }

    /// Resolves a mapped task's length and creates its instances.
    async fn expand(
        &self,
        plan: &DagPlan,
        run: &DagRun,
        tis: &[TaskInstance],
        task: usize,
    ) -> Result<()> {
        let inner = &self.inner;
        let spec = &plan.spec.tasks[task];
        let Some(map) = &spec.map else { return Ok(()) };
        let mut values: HashMap<XComRef, Value> = HashMap::new();
        for (_, source) in map.sources() {
            if let leoflow_ports::dag::MapSource::Xcom(r) = source {
                if let Some(v) = self.read_xcom(plan, run, tis, r).await? {
                    values.insert(r.clone(), v);
                }
            }
        }
        let resolve = |r: &XComRef| values.get(r).cloned();
        let key = run.key();
        let now = inner.clock.now();
        let retries = plan.policies[task].retries;
        let new: Vec<TaskInstance> = match mapping::expand(map, &resolve) {
            Ok(items) if items.is_empty() => {
                let mut ti = TaskInstance::new(
                    TaskKey::new(&key, spec.task_id.clone(), -1),
                    spec.operator_name(),
                    retries,
                );
                ti.state = TaskState::Skipped;
                ti.started_at = Some(now);
                ti.ended_at = Some(now);
                vec![ti]
            }
            Ok(items) => (0..items.len())
                .map(|i| {
                    TaskInstance::new(
                        TaskKey::new(&key, spec.task_id.clone(), i as i32),
                        spec.operator_name(),
                        retries,
                    )
                })
                .collect(),
            Err(message) => {
                let mut ti = TaskInstance::new(
                    TaskKey::new(&key, spec.task_id.clone(), -1),
                    spec.operator_name(),
                    retries,
                );
                ti.state = TaskState::Failed;
                ti.started_at = Some(now);
                ti.ended_at = Some(now);
                ti.error_message = Some(message);
                vec![ti]
            }
        };
        inner
            .store
            .add_task_instances(&key, &new, inner.fence())
            .await?;
        Ok(())
    }

    /// The value of an upstream reference; a mapped upstream yields the list of its
    /// instances' values in map-index order.
    async fn read_xcom(
        &self,
        plan: &DagPlan,
        run: &DagRun,
        tis: &[TaskInstance],
        r: &XComRef,
    ) -> Result<Option<Value>> {
        let key = run.key();
        let mapped = plan.spec.task(&r.task_id).is_some_and(|t| t.map.is_some());
        if !mapped {
            let entry = self
                .inner
                .xcom
                .get(&TaskKey::new(&key, r.task_id.clone(), -1), &r.key)
                .await?;
            return Ok(entry.map(|e| e.value));
        }
        let mut idxs: Vec<i32> = tis
            .iter()
            .filter(|t| t.key.task_id == r.task_id && t.key.map_index >= 0)
            .map(|t| t.key.map_index)
            .collect();
        idxs.sort_unstable();
        let mut out = Vec::with_capacity(idxs.len());
        for i in idxs {
            let entry = self
                .inner
                .xcom
                .get(&TaskKey::new(&key, r.task_id.clone(), i), &r.key)
                .await?;
            out.push(entry.map_or(Value::Null, |e| e.value));
        }
        Ok(Some(Value::Array(out)))
    }

    /// `dagrun_timeout` passed: cancel what runs, skip what has not started, fail the run.
    async fn time_out_run(
        &self,
        run: &DagRun,
        tis: &[TaskInstance],
        fb: &mut Feedback,
    ) -> Result<()> {
        let inner = self.inner.clone();
        let now = inner.clock.now();
        let msg = "the DAG run exceeded its dagrun_timeout".to_string();
        let mut ts = Vec::new();
        for ti in tis {
            if ti.state.is_in_flight() {
                let _ = inner.executor.cancel(&ti.attempt()).await;
                inner.system_log(&ti.attempt(), msg.clone()).await;
                inner
                    .finish_attempt(
                        &ti.attempt(),
                        Outcome::Failed {
                            message: msg.clone(),
                            exit_code: None,
                            retryable: false,
                        },
                    )
                    .await?;
            } else if !ti.state.is_finished() {
                let mut new = ti.clone();
                new.state = TaskState::Skipped;
                new.started_at.get_or_insert(now);
                new.ended_at = Some(now);
                ts.push(Transition {
                    expected_state: ti.state,
                    expected_try: ti.try_number,
                    new,
                });
            }
        }
        inner.store.transition_many(&ts, inner.fence()).await?;
        self.finish_run(run, RunState::Failed, Some(msg), fb).await
    }

    async fn finish_run(
        &self,
        run: &DagRun,
        state: RunState,
        note: Option<String>,
        fb: &mut Feedback,
    ) -> Result<()> {
        let inner = self.inner.clone();
        let mut new = run.clone();
        new.state = state;
        new.ended_at = Some(inner.clock.now());
        if note.is_some() {
            new.note = note;
        }
        if inner
            .store
            .update_run(RunState::Running, &new, inner.fence())
            .await?
        {
            inner.forget_version(&run.key());
            tracing::debug!(run = %run.key(), %state, "run finished");
            let _ = inner
                .notifier
                .publish(Change::RunChanged { run: run.key() })
                .await;
            let _ = inner.finished.send(run.key());
            // The DAG has room for another run now.
            fb.dirty.extend(self.oldest_queued(&run.dag_id).await?);
        }
        Ok(())
    }

    /// The DAG's queued run that has waited longest (listings are newest first).
    async fn oldest_queued(&self, dag_id: &str) -> Result<Option<RunKey>> {
        let mut filter = RunFilter {
            dag_id: Some(dag_id.to_string()),
            states: vec![RunState::Queued],
            limit: Some(0),
            offset: 0,
        };
        let (_, total) = self.inner.store.list_runs(&filter).await?;
        if total == 0 {
            return Ok(None);
        }
        filter.limit = Some(1);
        filter.offset = total - 1;
        let (oldest, _) = self.inner.store.list_runs(&filter).await?;
        Ok(oldest.into_iter().next().map(|r| r.key()))
    }
}

/// A launch the executor refused fails the attempt (retryable when the executor says so).
async fn launch_failed(
    inner: &Arc<Inner>,
    attempt: &AttemptId,
    result: Result<(), executor::Error>,
) {
    let Err(e) = result else { return };
    let retryable = matches!(
        e,
        executor::Error::Unavailable {
            retryable: true,
            ..
        }
    );
    let msg = format!("could not launch the attempt: {e}");
    inner.system_log(attempt, msg.clone()).await;
    if let Err(err) = inner
        .finish_attempt(
            attempt,
            Outcome::Failed {
                message: msg,
                exit_code: None,
                retryable,
            },
        )
        .await
    {
        tracing::warn!(%attempt, error = %err, "could not record a failed launch");
    }
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
