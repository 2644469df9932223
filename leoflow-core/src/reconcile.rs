//! Reconcile, a pure function: (run, its task instances, the DAG version, now) → what to
//! do next. No I/O happens here; the scheduler applies the decisions with compare-and-set
//! writes, so every scheduling rule is unit-testable without a datastore.
//!
//! Tasks are visited in topological order with the states decided so far in this pass,
//! so a chain of empty tasks, or a skip that propagates through trigger rules, settles in
//! one pass.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use leoflow_ports::dag::{BranchKind, TaskKind};
use leoflow_ports::datastore::Transition;
use leoflow_ports::run::{DagRun, RunType, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};

use crate::graph::TaskIdx;
use crate::plan::DagPlan;
use crate::trigger::{evaluate, Decision, UpstreamCounts};

/// One run as reconcile sees it.
#[derive(Debug, Clone, Copy)]
pub struct RunView<'a> {
    pub run: &'a DagRun,
    pub plan: &'a DagPlan,
    pub tis: &'a [TaskInstance],
    pub now: DateTime<Utc>,
    /// How long an attempt may stay queued without starting before it is failed.
    pub queued_timeout: Duration,
    /// Task instances of the run active at once when the DAG sets no `max_active_tasks`.
    pub default_max_active_tasks: Option<u32>,
}

/// What reconcile decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    /// Compare-and-set writes to existing task instances.
    pub transitions: Vec<Transition>,
    /// Instances to launch once their transition to `queued` (in `transitions`) applied:
    /// phase one of two-phase dispatch is that compare-and-set, phase two the launch.
    pub dispatch: Vec<TaskKey>,
    /// Instances to create (an unexpanded mapped task decided without running, or a task
    /// missing from the run).
    pub new_instances: Vec<TaskInstance>,
    /// Mapped tasks whose upstreams allow them to run: resolve their length and expand.
    pub expand: Vec<TaskIdx>,
    /// In-flight attempts past a deadline, with the reason to record.
    pub timed_out: Vec<(TaskInstance, String)>,
    /// The run's `dagrun_timeout` passed.
    pub run_timed_out: bool,
    /// The run is over, with this state.
    pub finish: Option<RunState>,
    /// The earliest future moment something becomes due (retry, timeout).
    pub wake_at: Option<DateTime<Utc>>,
}

impl Decisions {
    /// Nothing to write or do now.
    pub fn is_idle(&self) -> bool {
        self.transitions.is_empty()
            && self.dispatch.is_empty()
            && self.new_instances.is_empty()
            && self.expand.is_empty()
            && self.timed_out.is_empty()
            && !self.run_timed_out
            && self.finish.is_none()
    }

    fn wake(&mut self, at: DateTime<Utc>) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

/// Decides the next steps of a running run.
pub fn reconcile(view: &RunView<'_>) -> Decisions {
    let RunView {
        run,
        plan,
        tis,
        now,
        queued_timeout,
        default_max_active_tasks,
    } = *view;
    let spec = &plan.spec;
    let n = plan.graph.len();
    let mut d = Decisions::default();

    if let (Some(limit), Some(started)) = (spec.dagrun_timeout_seconds, run.started_at) {
        let deadline = started + secs(limit);
        if deadline <= now {
            d.run_timed_out = true;
            return d;
        }
        d.wake(deadline);
    }

    // Instances per task, and their effective states as this pass decides them.
    let mut by_task: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ti) in tis.iter().enumerate() {
        if let Some(t) = plan.graph.idx(&ti.key.task_id) {
            by_task[t].push(i);
        }
    }
    let mut eff: Vec<TaskState> = tis.iter().map(|t| t.state).collect();
    // States of tasks that have no instance yet but were decided in this pass.
    let mut virtual_state: Vec<Option<TaskState>> = vec![None; n];
    let mut skip_flag = vec![false; n];
    let cap = spec
        .max_active_tasks
        .or(default_max_active_tasks)
        .map(|c| c as usize);
    let mut active = eff
        .iter()
        .filter(|s| {
            matches!(
                s,
                TaskState::Scheduled | TaskState::Queued | TaskState::Running
            )
        })
        .count();

    for &t in &plan.order {
        let task = &spec.tasks[t];
        let needs_counts =
            by_task[t].is_empty() || by_task[t].iter().any(|&i| eff[i] == TaskState::None);
        let counts = if needs_counts {
            upstream_counts(plan, t, &by_task, &eff, &virtual_state)
        } else {
            UpstreamCounts::default()
        };

        if by_task[t].is_empty() {
            let decision = if skip_flag[t] {
                Decision::Skip
            } else {
                evaluate(task.trigger_rule, &counts)
            };
            let state = match (task.map.is_some(), decision) {
                (true, Decision::Wait) => continue,
                (true, Decision::Run) => {
                    d.expand.push(t);
                    continue;
                }
                (true, Decision::Skip) => TaskState::Skipped,
                (true, Decision::UpstreamFailed) => TaskState::UpstreamFailed,
                // A task the run has no instance of (the run was re-bound to a newer
                // version): create it; the next pass evaluates it.
                (false, _) => TaskState::None,
            };
            let mut ti = TaskInstance::new(
                TaskKey::new(&run.key(), task.task_id.clone(), -1),
                task.operator_name(),
                plan.policies[t].retries,
            );
            if state.is_finished() {
                finish_at(&mut ti, state, now);
            }
            virtual_state[t] = Some(state);
            d.new_instances.push(ti);
            continue;
        }

        for &i in &by_task[t] {
            let ti = &tis[i];
            match eff[i] {
                TaskState::None => {
                    let decision = if skip_flag[t] {
                        Decision::Skip
                    } else {
                        evaluate(task.trigger_rule, &counts)
                    };
                    let mut new = ti.clone();
                    match decision {
                        Decision::Wait => continue,
                        Decision::Run if cap.is_some_and(|c| active >= c) => continue,
                        Decision::Run if task.kind == TaskKind::Empty => {
                            new.state = TaskState::Success;
                            new.started_at = Some(now);
                            new.ended_at = Some(now);
                            if task.branch == Some(BranchKind::LatestOnly) && !is_latest(view) {
                                for &dn in plan.graph.downstream(t) {
                                    skip_flag[dn] = true;
                                }
                            }
                        }
                        Decision::Run => {
                            queue(&mut new, now);
                            active += 1;
                            d.dispatch.push(ti.key.clone());
                        }
                        Decision::Skip => finish_at(&mut new, TaskState::Skipped, now),
                        Decision::UpstreamFailed => {
                            finish_at(&mut new, TaskState::UpstreamFailed, now);
                        }
                    }
                    eff[i] = new.state;
                    d.transitions.push(Transition {
                        expected_state: ti.state,
                        expected_try: ti.try_number,
                        new,
                    });
                }
                TaskState::Scheduled => {
                    let mut new = ti.clone();
                    queue(&mut new, now);
                    eff[i] = new.state;
                    d.dispatch.push(ti.key.clone());
                    d.transitions.push(Transition {
                        expected_state: ti.state,
                        expected_try: ti.try_number,
                        new,
                    });
                }
                TaskState::UpForRetry => match ti.next_retry_at {
                    Some(at) if at > now => d.wake(at),
                    // Queued straight from up_for_retry, so the archived try keeps the
                    // state it ended in.
                    _ => {
                        let mut new = ti.clone();
                        queue(&mut new, now);
                        eff[i] = new.state;
                        d.dispatch.push(ti.key.clone());
                        d.transitions.push(Transition {
                            expected_state: ti.state,
                            expected_try: ti.try_number,
                            new,
                        });
                    }
                },
                TaskState::Running => {
                    if let (Some(timeout), Some(started)) =
                        (plan.policies[t].timeout, ti.started_at)
                    {
                        let deadline = started + delta(timeout);
                        if deadline <= now {
                            let msg = format!("timed out: the attempt ran longer than its execution_timeout of {}s", timeout.as_secs_f64());
                            d.timed_out.push((ti.clone(), msg));
                        } else {
                            d.wake(deadline);
                        }
                    }
                }
                TaskState::Queued => {
                    let since = ti.queued_at.unwrap_or(now);
                    let deadline = since + delta(queued_timeout);
                    if deadline <= now {
                        let msg = format!("the attempt stayed queued for more than {}s without starting; check the executor", queued_timeout.as_secs());
                        d.timed_out.push((ti.clone(), msg));
                    } else {
                        d.wake(deadline);
                    }
                }
                _ => {}
            }
        }
    }

    d.finish = final_state(view, &by_task, &eff, &virtual_state, &d);
    d
}

/// The states of `t`'s direct upstream instances as decided so far.
fn upstream_counts(
    plan: &DagPlan,
    t: TaskIdx,
    by_task: &[Vec<usize>],
    eff: &[TaskState],
    virtual_state: &[Option<TaskState>],
) -> UpstreamCounts {
    let mut c = UpstreamCounts::default();
    for &u in plan.graph.upstream(t) {
        let is_setup = plan.spec.tasks[u].is_setup;
        if by_task[u].is_empty() {
            c.add(virtual_state[u].unwrap_or(TaskState::None), is_setup);
        } else {
            for &i in &by_task[u] {
                c.add(eff[i], is_setup);
            }
        }
    }
    c
}

/// The run's final state once nothing more can happen, else `None`.
fn final_state(
    view: &RunView<'_>,
    by_task: &[Vec<usize>],
    eff: &[TaskState],
    virtual_state: &[Option<TaskState>],
    d: &Decisions,
) -> Option<RunState> {
    if !d.dispatch.is_empty() || !d.expand.is_empty() || !d.timed_out.is_empty() {
        return None;
    }
    let task_finished = |t: usize| {
        if by_task[t].is_empty() {
            virtual_state[t].is_some_and(TaskState::is_finished)
        } else {
            by_task[t].iter().all(|&i| eff[i].is_finished())
        }
    };
    let all_finished = (0..by_task.len()).all(task_finished);
    if !all_finished {
        // Deadlock: nothing in flight, nothing due, nothing decided — the remaining tasks
        // can never run.
        let busy = eff.iter().any(|s| {
            matches!(
                s,
                TaskState::Scheduled
                    | TaskState::Queued
                    | TaskState::Running
                    | TaskState::UpForRetry
            )
        });
        let progressing = busy || !d.transitions.is_empty() || !d.new_instances.is_empty();
        return if progressing {
            None
        } else {
            Some(RunState::Failed)
        };
    }
    let failed = view.plan.leaves.iter().any(|&t| {
        let states: Box<dyn Iterator<Item = TaskState>> = if by_task[t].is_empty() {
            Box::new(virtual_state[t].into_iter())
        } else {
            Box::new(by_task[t].iter().map(|&i| eff[i]))
        };
        states
            .into_iter()
            .any(|s| matches!(s, TaskState::Failed | TaskState::UpstreamFailed))
    });
    Some(if failed {
        RunState::Failed
    } else {
        RunState::Success
    })
}

/// Whether a run is the most recent scheduled one (for `LatestOnlyOperator`): manual runs
/// always are; a scheduled run is until its schedule's next fire time has passed.
fn is_latest(view: &RunView<'_>) -> bool {
    let run = view.run;
    if run.run_type != RunType::Scheduled {
        return true;
    }
    let Some(logical) = run.logical_date else {
        return true;
    };
    let anchor = view.plan.spec.start_date.unwrap_or(logical);
    view.plan
        .schedule
        .next_after(logical, anchor)
        .is_none_or(|next| next > view.now)
}

/// Phase one of dispatch: the next try, queued now, with the previous try's per-attempt
/// fields cleared.
fn queue(ti: &mut TaskInstance, now: DateTime<Utc>) {
    if ti.state != TaskState::Scheduled {
        ti.scheduled_at = Some(now);
    }
    ti.state = TaskState::Queued;
    ti.try_number += 1;
    ti.max_tries = ti.max_tries.max(ti.try_number);
    ti.queued_at = Some(now);
    ti.started_at = None;
    ti.ended_at = None;
    ti.next_retry_at = None;
    ti.exit_code = None;
    ti.error_message = None;
    ti.executor_ref = None;
    ti.hostname = None;
}

fn finish_at(ti: &mut TaskInstance, state: TaskState, now: DateTime<Utc>) {
    ti.state = state;
    ti.started_at.get_or_insert(now);
    ti.ended_at = Some(now);
}

fn secs(s: f64) -> TimeDelta {
    TimeDelta::microseconds((s * 1e6) as i64)
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
