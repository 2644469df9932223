//! The one table of legal state changes. Every writer (scheduler, executor events, agent
//! reports, API clear/mark) goes through it; anything else is rejected.

use leoflow_ports::state::{RunState, TaskState};

/// Who asks for a change: users may force states the scheduler never would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Scheduler,
    /// Clear and mark-state from the API or UI.
    User,
}

/// Whether a task instance may move from `from` to `to`.
pub fn task_transition_allowed(from: TaskState, to: TaskState, actor: Actor) -> bool {
    use TaskState as S;
    match actor {
        Actor::User => {
            // Clear: any finished or waiting-for-retry instance goes back to `none`; a
            // running one is cancelled first by the caller. Mark: any state to a final one.
            matches!(to, S::None) && (from.is_finished() || from == S::UpForRetry)
                || matches!(to, S::Success | S::Failed | S::Skipped) && from != to
        }
        Actor::Scheduler => matches!(
            (from, to),
            (
                S::None,
                S::Scheduled | S::Skipped | S::UpstreamFailed | S::Success | S::Removed
            ) | (S::Scheduled, S::Queued | S::Skipped | S::Failed | S::None)
                | (
                    S::Queued,
                    S::Running | S::Success | S::Failed | S::Skipped | S::UpForRetry | S::Queued
                )
                | (
                    S::Running,
                    S::Success | S::Failed | S::Skipped | S::UpForRetry
                )
                | (
                    S::UpForRetry,
                    S::Scheduled | S::Queued | S::Skipped | S::UpstreamFailed
                )
        ),
    }
}

/// Whether a run may move from `from` to `to`.
pub fn run_transition_allowed(from: RunState, to: RunState, actor: Actor) -> bool {
    use RunState as R;
    match actor {
        Actor::Scheduler => {
            matches!(
                (from, to),
                (R::Queued, R::Running | R::Failed) | (R::Running, R::Success | R::Failed)
            )
        }
        Actor::User => from != to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState as S;

    #[test]
    fn scheduler_cannot_resurrect_finished_tasks() {
        for from in [S::Success, S::Failed, S::Skipped, S::UpstreamFailed] {
            for to in TaskState::ALL {
                assert!(
                    !task_transition_allowed(from, to, Actor::Scheduler),
                    "{from}->{to}"
                );
            }
        }
    }

    #[test]
    fn the_happy_path_and_retry_path_are_legal() {
        let path = [
            S::None,
            S::Scheduled,
            S::Queued,
            S::Running,
            S::UpForRetry,
            S::Scheduled,
        ];
        for w in path.windows(2) {
            assert!(
                task_transition_allowed(w[0], w[1], Actor::Scheduler),
                "{}->{}",
                w[0],
                w[1]
            );
        }
        assert!(!task_transition_allowed(
            S::None,
            S::Running,
            Actor::Scheduler
        ));
        assert!(!task_transition_allowed(
            S::Running,
            S::None,
            Actor::Scheduler
        ));
    }

    #[test]
    fn users_clear_finished_tasks_and_mark_any_task() {
        assert!(task_transition_allowed(S::Failed, S::None, Actor::User));
        assert!(!task_transition_allowed(S::Running, S::None, Actor::User));
        assert!(task_transition_allowed(S::Running, S::Success, Actor::User));
        assert!(!task_transition_allowed(
            S::Success,
            S::Success,
            Actor::User
        ));
    }

    #[test]
    fn runs_finish_once_unless_a_user_reruns_them() {
        assert!(run_transition_allowed(
            RunState::Running,
            RunState::Success,
            Actor::Scheduler
        ));
        assert!(!run_transition_allowed(
            RunState::Success,
            RunState::Queued,
            Actor::Scheduler
        ));
        assert!(run_transition_allowed(
            RunState::Success,
            RunState::Queued,
            Actor::User
        ));
    }
}
