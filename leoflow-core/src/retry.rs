//! Retry and timeout settings of a task, resolved task value > `default_args` > Airflow's
//! defaults (0 retries, 300 s delay, no backoff, no timeout).

use std::time::Duration;

use leoflow_ports::dag::{DefaultArgs, TaskSpec};

/// Airflow's default retry delay.
pub const DEFAULT_RETRY_DELAY_SECONDS: f64 = 300.0;
/// The cap on an exponential backoff delay when the task sets none (Airflow's: 24 h).
pub const DEFAULT_MAX_BACKOFF_SECONDS: f64 = 86_400.0;

/// How a task retries and times out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub delay_seconds: f64,
    pub exponential: bool,
    pub max_delay_seconds: Option<f64>,
    pub timeout: Option<Duration>,
}

impl RetryPolicy {
    pub fn of(task: &TaskSpec, defaults: &DefaultArgs) -> RetryPolicy {
        RetryPolicy {
            retries: task.retries.or(defaults.retries).unwrap_or(0),
            delay_seconds: task
                .retry_delay_seconds
                .or(defaults.retry_delay_seconds)
                .unwrap_or(DEFAULT_RETRY_DELAY_SECONDS),
            exponential: task
                .retry_exponential_backoff
                .or(defaults.retry_exponential_backoff)
                .unwrap_or(false),
            max_delay_seconds: task
                .max_retry_delay_seconds
                .or(defaults.max_retry_delay_seconds),
            timeout: task
                .execution_timeout_seconds
                .or(defaults.execution_timeout_seconds)
                .map(Duration::from_secs_f64),
        }
    }

    /// The wait before the try after `failed_try` (1-based) starts.
    pub fn delay_after(&self, failed_try: u32) -> Duration {
        let mut secs = self.delay_seconds;
        if self.exponential {
            let factor = 2f64.powi(failed_try.saturating_sub(1).min(62) as i32);
            secs = (secs * factor).min(
                self.max_delay_seconds
                    .unwrap_or(DEFAULT_MAX_BACKOFF_SECONDS),
            );
        } else if let Some(max) = self.max_delay_seconds {
            secs = secs.min(max);
        }
        Duration::from_secs_f64(secs.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leoflow_ports::dag::TaskKind;

    #[test]
    fn task_values_win_over_default_args_over_airflow_defaults() {
        let mut t = TaskSpec::new("t", TaskKind::Bash);
        let d = DefaultArgs {
            retries: Some(2),
            retry_delay_seconds: Some(10.0),
            ..Default::default()
        };
        let p = RetryPolicy::of(&t, &DefaultArgs::default());
        assert_eq!((p.retries, p.delay_seconds, p.timeout), (0, 300.0, None));
        let p = RetryPolicy::of(&t, &d);
        assert_eq!((p.retries, p.delay_seconds), (2, 10.0));
        t.retries = Some(5);
        t.execution_timeout_seconds = Some(1.5);
        let p = RetryPolicy::of(&t, &d);
        assert_eq!(
            (p.retries, p.timeout),
            (5, Some(Duration::from_millis(1500)))
        );
    }

    #[test]
    fn exponential_backoff_doubles_and_is_capped() {
        let mut t = TaskSpec::new("t", TaskKind::Bash);
        t.retry_delay_seconds = Some(10.0);
        t.retry_exponential_backoff = Some(true);
        t.max_retry_delay_seconds = Some(35.0);
        let p = RetryPolicy::of(&t, &DefaultArgs::default());
        let delays: Vec<u64> = (1..=4).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 35, 35]);
    }
}
