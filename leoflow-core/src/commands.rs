//! The commands users give through the API and UI besides triggering: clear task
//! instances (with their downstream or upstream), mark a task instance's state, and mark a
//! run's state. Each is a set of compare-and-sets through the datastore, checked against
//! the transition table for `Actor::User`, followed by a wake-up of the scheduler.

use std::collections::BTreeSet;

use leoflow_ports::datastore::Transition;
use leoflow_ports::notify::Change;
use leoflow_ports::run::{DagRun, RunKey, TaskInstance};
use leoflow_ports::state::{RunState, TaskState};

use crate::engine::{Engine, Error, Result};
use crate::plan::DagPlan;
use crate::transitions::{run_transition_allowed, task_transition_allowed, Actor};

/// Which task instances of a run a clear or a mark applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The named tasks; empty means every task of the run.
    pub task_ids: Vec<String>,
    /// Only this map index of the named tasks (`None`: every map index).
    pub map_index: Option<i32>,
    pub include_downstream: bool,
    pub include_upstream: bool,
}

/// Options of [`Engine::clear_task_instances`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClearRequest {
    pub selection: Selection,
    /// Clear only instances that failed or were upstream-failed.
    pub only_failed: bool,
    /// Report what would be cleared and change nothing.
    pub dry_run: bool,
}

impl Engine {
    /// Clears the selected finished (or waiting-for-retry) task instances of a run back to
    /// `none` so the scheduler runs them again with a new try, deletes their XComs, and
    /// re-queues the run if it had finished. Running instances are left alone. Returns the
    /// affected instances as they are (dry run) or as they became.
    pub async fn clear_task_instances(
        &self,
        run: &RunKey,
        req: &ClearRequest,
    ) -> Result<Vec<TaskInstance>> {
        let inner = &self.inner;
        let dag_run = self.existing_run(run).await?;
        let plan = inner.plan(&run.dag_id, dag_run.version_number).await?;
        let selected = selected_tasks(&plan, &req.selection)?;
        let tis = inner.store.task_instances(run).await?;
        let affected: Vec<TaskInstance> = tis
            .into_iter()
            .filter(|ti| selected.contains(ti.key.task_id.as_str()))
            .filter(|ti| matches_map_index(ti, &req.selection))
            .filter(|ti| {
                !req.only_failed
                    || matches!(ti.state, TaskState::Failed | TaskState::UpstreamFailed)
            })
            .filter(|ti| task_transition_allowed(ti.state, TaskState::None, Actor::User))
            .collect();
        if req.dry_run || affected.is_empty() {
            return Ok(affected);
        }
        let mut cleared = Vec::with_capacity(affected.len());
        for ti in affected {
            let retries = plan
                .graph
                .idx(&ti.key.task_id)
                .map_or(0, |i| plan.policies[i].retries);
            let mut new = ti.clone();
            new.state = TaskState::None;
            new.max_tries = ti.try_number + retries + 1;
            new.scheduled_at = None;
            new.queued_at = None;
            new.started_at = None;
            new.ended_at = None;
            new.next_retry_at = None;
            new.exit_code = None;
            new.error_message = None;
            new.executor_ref = None;
            new.hostname = None;
            let t = Transition {
                expected_state: ti.state,
                expected_try: ti.try_number,
                new: new.clone(),
            };
            if inner.store.transition(&t, inner.fence()).await? {
                let _ = inner.xcom.delete_for_task(&ti.key).await;
                cleared.push(new);
            }
        }
        if dag_run.state.is_finished() {
            let mut requeued = dag_run.clone();
            requeued.state = RunState::Queued;
            requeued.ended_at = None;
            if inner
                .store
                .update_run(dag_run.state, &requeued, inner.fence())
                .await?
            {
                inner.remember_version(run, dag_run.version_number);
            }
        }
        inner
            .signal(run.clone(), Change::RunChanged { run: run.clone() })
            .await;
        Ok(cleared)
    }

    /// Marks the selected task instances of a run `state` (success, failed or skipped),
    /// cancelling attempts still in flight. Returns the instances that changed (or would
    /// change, on a dry run).
    pub async fn set_task_instance_state(
        &self,
        run: &RunKey,
        selection: &Selection,
        state: TaskState,
        dry_run: bool,
    ) -> Result<Vec<TaskInstance>> {
        if !matches!(
            state,
            TaskState::Success | TaskState::Failed | TaskState::Skipped
        ) {
            return Err(Error::BadRequest(format!(
                "a task instance can be marked success, failed or skipped, not {state}"
            )));
        }
        let inner = &self.inner;
        let dag_run = self.existing_run(run).await?;
        let plan = inner.plan(&run.dag_id, dag_run.version_number).await?;
        let selected = selected_tasks(&plan, selection)?;
        let tis = inner.store.task_instances(run).await?;
        let targets: Vec<TaskInstance> = tis
            .into_iter()
            .filter(|ti| selected.contains(ti.key.task_id.as_str()))
            .filter(|ti| matches_map_index(ti, selection))
            .filter(|ti| task_transition_allowed(ti.state, state, Actor::User))
            .collect();
        if dry_run {
            return Ok(targets
                .into_iter()
                .map(|mut ti| {
                    ti.state = state;
                    ti
                })
                .collect());
        }
        let now = inner.clock.now();
        let mut changed = Vec::with_capacity(targets.len());
        for ti in targets {
            let mut new = ti.clone();
            new.state = state;
            new.started_at.get_or_insert(now);
            new.ended_at = Some(now);
            let t = Transition {
                expected_state: ti.state,
                expected_try: ti.try_number,
                new: new.clone(),
            };
            if inner.store.transition(&t, inner.fence()).await? {
                if ti.state.is_in_flight() {
                    let _ = inner.executor.cancel(&ti.attempt()).await;
                }
                changed.push(new);
            }
        }
        inner
            .signal(run.clone(), Change::RunChanged { run: run.clone() })
            .await;
        Ok(changed)
    }

    /// Sets a run's state as a user: `success` marks every unfinished instance success,
    /// `failed` fails the in-flight ones and skips the rest, `queued` hands the run back to
    /// the scheduler. In-flight attempts are cancelled. Setting the state it already has
    /// changes nothing.
    pub async fn set_run_state(&self, run: &RunKey, state: RunState) -> Result<DagRun> {
        let inner = &self.inner;
        let current = self.existing_run(run).await?;
        if current.state == state {
            return Ok(current);
        }
        if !run_transition_allowed(current.state, state, Actor::User) {
            return Err(Error::BadRequest(format!(
                "a run cannot go from {} to {state}",
                current.state
            )));
        }
        let now = inner.clock.now();
        if state.is_finished() {
            let tis = inner.store.task_instances(run).await?;
            for ti in tis.into_iter().filter(|ti| !ti.state.is_finished()) {
                let target = match state {
                    RunState::Success => TaskState::Success,
                    _ if ti.state.is_in_flight() => TaskState::Failed,
                    _ => TaskState::Skipped,
                };
                let mut new = ti.clone();
                new.state = target;
                new.ended_at = Some(now);
                let t = Transition {
                    expected_state: ti.state,
                    expected_try: ti.try_number,
                    new,
                };
                if inner.store.transition(&t, inner.fence()).await? && ti.state.is_in_flight() {
                    let _ = inner.executor.cancel(&ti.attempt()).await;
                }
            }
        }
        let mut new = current.clone();
        new.state = state;
        if state.is_finished() {
            new.started_at.get_or_insert(now);
            new.ended_at = Some(now);
        } else {
            new.ended_at = None;
        }
        if !inner
            .store
            .update_run(current.state, &new, inner.fence())
            .await?
        {
            return Err(Error::Conflict(format!(
                "run {run} changed state while it was being marked {state}; read it again and retry"
            )));
        }
        if state.is_finished() {
            inner.forget_version(run);
            let _ = inner.finished.send(run.clone());
        } else {
            inner.remember_version(run, new.version_number);
        }
        inner
            .signal(run.clone(), Change::RunChanged { run: run.clone() })
            .await;
        Ok(new)
    }

    async fn existing_run(&self, run: &RunKey) -> Result<DagRun> {
        self.inner
            .store
            .get_run(run)
            .await?
            .ok_or_else(|| Error::NotFound(format!("DAG run {run} not found")))
    }
}

/// The task ids a selection names, expanded along the graph.
fn selected_tasks<'a>(plan: &'a DagPlan, sel: &Selection) -> Result<BTreeSet<&'a str>> {
    if sel.task_ids.is_empty() {
        return Ok(plan.spec.tasks.iter().map(|t| t.task_id.as_str()).collect());
    }
    let mut out = BTreeSet::new();
    for id in &sel.task_ids {
        let idx = plan.graph.idx(id).ok_or_else(|| {
            Error::NotFound(format!(
                "task {id:?} is not in DAG {:?} (version {})",
                plan.spec.dag_id, plan.version_number
            ))
        })?;
        out.insert(plan.spec.tasks[idx].task_id.as_str());
        let mut related = Vec::new();
        if sel.include_downstream {
            related.extend(plan.graph.descendants(idx));
        }
        if sel.include_upstream {
            related.extend(plan.graph.ancestors(idx));
        }
        out.extend(
            related
                .into_iter()
                .map(|i| plan.spec.tasks[i].task_id.as_str()),
        );
    }
    Ok(out)
}

/// Whether `ti` is within the selection's map index. Related (downstream/upstream)
/// instances are not restricted to the named map index.
fn matches_map_index(ti: &TaskInstance, sel: &Selection) -> bool {
    match sel.map_index {
        Some(m) => ti.key.map_index == m || !sel.task_ids.contains(&ti.key.task_id),
        None => true,
    }
}
