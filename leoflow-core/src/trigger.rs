//! Trigger-rule evaluation, as Airflow 3's `TriggerRuleDep` does it: first the rules that
//! force a state early (a failed upstream makes an `all_success` task `upstream_failed` at
//! once), then whether the task may run.

use leoflow_ports::state::{TaskState, TriggerRule};

/// How a task's direct upstream task instances stand. Mapped upstreams count once per
/// map index; an upstream not yet expanded counts as one unfinished instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamCounts {
    pub total: usize,
    pub success: usize,
    pub skipped: usize,
    pub failed: usize,
    pub upstream_failed: usize,
    pub removed: usize,
    /// Upstreams that are setup tasks, and how they ended.
    pub setup_total: usize,
    pub setup_success: usize,
    pub setup_skipped: usize,
}

impl UpstreamCounts {
    /// Adds one upstream instance in `state`.
    pub fn add(&mut self, state: TaskState, is_setup: bool) {
        self.total += 1;
        match state {
            TaskState::Success => self.success += 1,
            TaskState::Skipped => self.skipped += 1,
            TaskState::Failed => self.failed += 1,
            TaskState::UpstreamFailed => self.upstream_failed += 1,
            TaskState::Removed => self.removed += 1,
            _ => {}
        }
        if is_setup {
            self.setup_total += 1;
            match state {
                TaskState::Success => self.setup_success += 1,
                TaskState::Skipped => self.setup_skipped += 1,
                _ => {}
            }
        }
    }

    fn done(&self) -> usize {
        self.success + self.skipped + self.failed + self.upstream_failed + self.removed
    }
}

/// What to do with a task instance still in state `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Wait,
    Run,
    Skip,
    UpstreamFailed,
}

/// Applies `rule` to the upstream counts.
pub fn evaluate(rule: TriggerRule, c: &UpstreamCounts) -> Decision {
    use Decision::{Run, Skip, UpstreamFailed, Wait};
    use TriggerRule as R;
    if c.total == 0 {
        return Run;
    }
    let upstream_done = c.done() >= c.total;
    let forced = match rule {
        R::AllSuccess if c.upstream_failed > 0 || c.failed > 0 => Some(UpstreamFailed),
        R::AllSuccess if c.skipped > 0 => Some(Skip),
        R::AllFailed if c.success > 0 || c.skipped > 0 => Some(Skip),
        R::OneSuccess if upstream_done && c.done() == c.skipped => Some(Skip),
        R::OneSuccess if upstream_done && c.success == 0 => Some(UpstreamFailed),
        R::OneFailed if upstream_done && c.failed == 0 && c.upstream_failed == 0 => Some(Skip),
        R::OneDone if upstream_done && c.failed == 0 && c.success == 0 => Some(Skip),
        R::NoneFailed | R::NoneFailedMinOneSuccess if c.upstream_failed > 0 || c.failed > 0 => {
            Some(UpstreamFailed)
        }
        R::NoneFailedMinOneSuccess if c.skipped == c.total => Some(Skip),
        R::NoneSkipped if c.skipped > 0 => Some(Skip),
        R::AllSkipped if c.success > 0 || c.failed > 0 || c.upstream_failed > 0 => Some(Skip),
        R::AllDoneSetupSuccess
            if upstream_done && c.setup_total > 0 && c.setup_skipped >= c.setup_total =>
        {
            Some(Skip)
        }
        R::AllDoneSetupSuccess if upstream_done && c.setup_total > 0 && c.setup_success == 0 => {
            Some(UpstreamFailed)
        }
        _ => None,
    };
    if let Some(d) = forced {
        return d;
    }
    let met = match rule {
        R::AllSuccess => c.success >= c.total,
        R::AllFailed => c.failed + c.upstream_failed >= c.total,
        R::AllDone => upstream_done,
        R::AllDoneSetupSuccess => upstream_done && (c.setup_total == 0 || c.setup_success > 0),
        R::AllSkipped => c.skipped >= c.total,
        R::OneSuccess => c.success > 0,
        R::OneFailed => c.failed > 0 || c.upstream_failed > 0,
        R::OneDone => c.success + c.failed > 0,
        R::NoneFailed | R::NoneFailedMinOneSuccess => c.success + c.skipped >= c.total,
        R::NoneSkipped => upstream_done,
        R::Always => true,
    };
    if met {
        Run
    } else {
        Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::{Run, Skip, UpstreamFailed, Wait};
    use TaskState as S;
    use TriggerRule as R;

    fn counts(states: &[S]) -> UpstreamCounts {
        let mut c = UpstreamCounts::default();
        for &s in states {
            c.add(s, false);
        }
        c
    }

    /// One table row: rule, upstream states, expected decision.
    fn check(rule: R, states: &[S], expected: Decision) {
        assert_eq!(
            evaluate(rule, &counts(states)),
            expected,
            "{rule} with upstreams {states:?}"
        );
    }

    #[test]
    fn no_upstreams_always_runs() {
        for rule in R::ALL {
            check(rule, &[], Run);
        }
    }

    #[test]
    fn all_success() {
        check(R::AllSuccess, &[S::Success, S::Success], Run);
        check(R::AllSuccess, &[S::Success, S::Running], Wait);
        check(R::AllSuccess, &[S::Failed, S::Running], UpstreamFailed);
        check(
            R::AllSuccess,
            &[S::UpstreamFailed, S::Success],
            UpstreamFailed,
        );
        check(R::AllSuccess, &[S::Skipped, S::Running], Skip);
        check(R::AllSuccess, &[S::UpForRetry, S::Success], Wait);
    }

    #[test]
    fn all_failed() {
        check(R::AllFailed, &[S::Failed, S::UpstreamFailed], Run);
        check(R::AllFailed, &[S::Failed, S::Running], Wait);
        check(R::AllFailed, &[S::Failed, S::Success], Skip);
        check(R::AllFailed, &[S::Skipped, S::Running], Skip);
    }

    #[test]
    fn all_done() {
        check(
            R::AllDone,
            &[S::Failed, S::Success, S::Skipped, S::UpstreamFailed],
            Run,
        );
        check(R::AllDone, &[S::Failed, S::Queued], Wait);
    }

    #[test]
    fn all_done_setup_success() {
        let mut c = UpstreamCounts::default();
        c.add(S::Success, true);
        c.add(S::Failed, false);
        assert_eq!(evaluate(R::AllDoneSetupSuccess, &c), Run);
        let mut c = UpstreamCounts::default();
        c.add(S::Failed, true);
        c.add(S::Success, false);
        assert_eq!(evaluate(R::AllDoneSetupSuccess, &c), UpstreamFailed);
        let mut c = UpstreamCounts::default();
        c.add(S::Skipped, true);
        c.add(S::Success, false);
        assert_eq!(evaluate(R::AllDoneSetupSuccess, &c), Skip);
        check(R::AllDoneSetupSuccess, &[S::Failed, S::Success], Run);
        check(R::AllDoneSetupSuccess, &[S::Running, S::Success], Wait);
    }

    #[test]
    fn all_skipped() {
        check(R::AllSkipped, &[S::Skipped, S::Skipped], Run);
        check(R::AllSkipped, &[S::Skipped, S::Running], Wait);
        check(R::AllSkipped, &[S::Skipped, S::Success], Skip);
        check(R::AllSkipped, &[S::UpstreamFailed, S::Running], Skip);
    }

    #[test]
    fn one_success_fires_early() {
        check(R::OneSuccess, &[S::Success, S::Running], Run);
        check(R::OneSuccess, &[S::Failed, S::Running], Wait);
        check(R::OneSuccess, &[S::Failed, S::Skipped], UpstreamFailed);
        check(R::OneSuccess, &[S::Skipped, S::Skipped], Skip);
    }

    #[test]
    fn one_failed_fires_early() {
        check(R::OneFailed, &[S::Failed, S::Running], Run);
        check(R::OneFailed, &[S::UpstreamFailed, S::Running], Run);
        check(R::OneFailed, &[S::Success, S::Running], Wait);
        check(R::OneFailed, &[S::Success, S::Skipped], Skip);
    }

    #[test]
    fn one_done() {
        check(R::OneDone, &[S::Success, S::Running], Run);
        check(R::OneDone, &[S::Failed, S::Running], Run);
        check(R::OneDone, &[S::Skipped, S::Running], Wait);
        check(R::OneDone, &[S::Skipped, S::UpstreamFailed], Skip);
    }

    #[test]
    fn none_failed() {
        check(R::NoneFailed, &[S::Success, S::Skipped], Run);
        check(R::NoneFailed, &[S::Skipped, S::Skipped], Run);
        check(R::NoneFailed, &[S::Success, S::Running], Wait);
        check(R::NoneFailed, &[S::Failed, S::Running], UpstreamFailed);
        check(
            R::NoneFailed,
            &[S::UpstreamFailed, S::Success],
            UpstreamFailed,
        );
    }

    #[test]
    fn none_failed_min_one_success() {
        check(R::NoneFailedMinOneSuccess, &[S::Success, S::Skipped], Run);
        check(R::NoneFailedMinOneSuccess, &[S::Skipped, S::Skipped], Skip);
        check(
            R::NoneFailedMinOneSuccess,
            &[S::Failed, S::Success],
            UpstreamFailed,
        );
        check(R::NoneFailedMinOneSuccess, &[S::Skipped, S::Running], Wait);
    }

    #[test]
    fn none_skipped() {
        check(R::NoneSkipped, &[S::Success, S::Failed], Run);
        check(R::NoneSkipped, &[S::Success, S::Running], Wait);
        check(R::NoneSkipped, &[S::Skipped, S::Running], Skip);
    }

    #[test]
    fn always_runs_at_once() {
        check(R::Always, &[S::Running, S::None], Run);
        check(R::Always, &[S::Failed], Run);
    }
}
