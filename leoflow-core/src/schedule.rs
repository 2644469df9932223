//! Schedules and which scheduled runs are due, with Airflow 3's default semantics: cron
//! expressions, presets and `timedelta` intervals are *trigger* timetables — a run's
//! logical date is the moment it fires and its data interval is that instant — and
//! `catchup` decides whether missed fire times are all run or only the latest one.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use croner::Cron;

/// A parsed `schedule`.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `None`: runs only when triggered.
    Manual,
    /// `@once`: one run, at the start date (or as soon as the DAG is seen).
    Once,
    /// `@continuous`: accepted; Leoflow does not run it on its own yet (documented).
    Continuous,
    Cron {
        expr: String,
        cron: Box<Cron>,
    },
    /// `@every <duration>` (Airflow `timedelta` schedules), anchored at the start date.
    Every(Duration),
}

/// A schedule string that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule {expr:?}: {reason}; Leoflow supports 5- or 6-field cron (e.g. \"*/3 * * * *\"), the presets @hourly/@daily/@weekly/@monthly/@quarterly/@yearly, @once, @continuous and @every <duration> (e.g. \"@every 1h30m\")")]
pub struct ScheduleError {
    pub expr: String,
    pub reason: String,
}

impl Schedule {
    pub fn parse(schedule: Option<&str>) -> Result<Schedule, ScheduleError> {
        let Some(raw) = schedule.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Schedule::Manual);
        };
        let err = |reason: String| ScheduleError {
            expr: raw.to_string(),
            reason,
        };
        let lower = raw.to_ascii_lowercase();
        let expr = match lower.as_str() {
            "@once" => return Ok(Schedule::Once),
            "@continuous" => return Ok(Schedule::Continuous),
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@quarterly" => "0 0 1 */3 *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            _ if lower.starts_with("@every") => {
                let d = parse_duration(lower["@every".len()..].trim()).map_err(err)?;
                return Ok(Schedule::Every(d));
            }
            _ if lower.starts_with('@') => return Err(err("unknown preset".into())),
            _ => raw,
        };
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(err(format!(
                "a cron expression has 5 or 6 fields, this one has {fields}"
            )));
        }
        let cron = Cron::new(expr)
            .with_seconds_optional()
            .parse()
            .map_err(|e| err(e.to_string()))?;
        Ok(Schedule::Cron {
            expr: expr.to_string(),
            cron: Box::new(cron),
        })
    }

    /// Whether the scheduler creates runs for it on its own.
    pub fn is_periodic(&self) -> bool {
        matches!(self, Schedule::Cron { .. } | Schedule::Every(_))
    }

    /// The first fire time strictly after `t` (`anchor` places `@every` intervals).
    pub fn next_after(&self, t: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { cron, .. } => cron.find_next_occurrence(&t, false).ok(),
            Schedule::Every(d) => {
                let step = TimeDelta::from_std(*d).ok()?;
                if t < anchor {
                    return Some(anchor);
                }
                let step_us = step.num_microseconds()?.max(1);
                let since = (t - anchor).num_microseconds()?;
                let k = since / step_us + 1;
                Some(anchor + TimeDelta::microseconds(k.checked_mul(step_us)?))
            }
            _ => None,
        }
    }

    /// The latest fire time at or before `t`, if any at or after `floor`.
    fn latest_at_or_before(
        &self,
        t: DateTime<Utc>,
        floor: DateTime<Utc>,
        anchor: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        // Step back by a growing window until a fire time ≤ t is found, then walk forward.
        let mut span = TimeDelta::minutes(2);
        loop {
            let from = (t - span).max(floor - TimeDelta::microseconds(1));
            let mut best = None;
            let mut cursor = from;
            while let Some(n) = self.next_after(cursor, anchor) {
                if n > t {
                    break;
                }
                best = Some(n);
                cursor = n;
            }
            if best.is_some() || from < floor || span > TimeDelta::days(366 * 30) {
                return best.filter(|b| *b >= floor);
            }
            span = span * 4;
        }
    }
}

/// What the scheduler knows about a DAG when deciding which runs are due.
#[derive(Debug, Clone)]
pub struct DueInput<'a> {
    pub schedule: &'a Schedule,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub catchup: bool,
    /// The latest logical date among the DAG's scheduled runs.
    pub last_scheduled: Option<DateTime<Utc>>,
    /// When the DAG was first registered (the anchor when it has no start date).
    pub registered_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// The logical dates of the scheduled runs to create now, oldest first, at most `cap`.
pub fn due_runs(input: &DueInput<'_>, cap: usize) -> Vec<DateTime<Utc>> {
    let anchor = input.start_date.unwrap_or(input.registered_at);
    let within_end = |t: DateTime<Utc>| input.end_date.is_none_or(|e| t <= e);
    match input.schedule {
        Schedule::Once => {
            let at = input.start_date.unwrap_or(input.registered_at);
            if input.last_scheduled.is_none() && at <= input.now {
                vec![at]
            } else {
                Vec::new()
            }
        }
        Schedule::Cron { .. } | Schedule::Every(_) => {
            let floor = input.start_date.unwrap_or(input.registered_at);
            if input.catchup && input.start_date.is_some() {
                let mut out = Vec::new();
                let mut cursor = match input.last_scheduled {
                    Some(last) => last,
                    None => floor - TimeDelta::microseconds(1),
                };
                while out.len() < cap {
                    match input.schedule.next_after(cursor, anchor) {
                        Some(n) if n <= input.now && within_end(n) => {
                            out.push(n);
                            cursor = n;
                        }
                        _ => break,
                    }
                }
                out
            } else {
                let latest = input.schedule.latest_at_or_before(input.now, floor, anchor);
                match latest {
                    Some(t) if input.last_scheduled.is_none_or(|l| t > l) && within_end(t) => {
                        vec![t]
                    }
                    _ => Vec::new(),
                }
            }
        }
        Schedule::Manual | Schedule::Continuous => Vec::new(),
    }
}

/// When the scheduler should next look at this DAG's schedule.
pub fn next_fire_after(input: &DueInput<'_>) -> Option<DateTime<Utc>> {
    let anchor = input.start_date.unwrap_or(input.registered_at);
    let from = input.now.max(input.last_scheduled.unwrap_or(input.now));
    input
        .schedule
        .next_after(from, anchor)
        .filter(|n| input.end_date.is_none_or(|e| *n <= e))
}

/// Parses `3600s`, `1h30m`, `2d`, `500ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("`@every` needs a duration such as 30m or 1h".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return positive(secs);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration"))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604_800.0,
            _ => {
                return Err(format!(
                    "unknown unit {unit:?} in {s:?} (use ms, s, m, h, d or w)"
                ))
            }
        };
        total += n * scale;
        rest = next;
    }
    positive(total)
}

fn positive(secs: f64) -> Result<Duration, String> {
    if secs.is_finite() && secs > 0.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err("the interval must be positive".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn input(s: &Schedule, catchup: bool, now: DateTime<Utc>) -> DueInput<'_> {
        DueInput {
            schedule: s,
            start_date: Some(at(2024, 1, 1, 0)),
            end_date: None,
            catchup,
            last_scheduled: None,
            registered_at: at(2024, 3, 1, 0),
            now,
        }
    }

    #[test]
    fn presets_cron_and_intervals_parse() {
        for ok in [
            "@daily",
            "@HOURLY",
            "*/3 * * * *",
            "0 0 * * * *",
            "@every 1h30m",
            "@every 90s",
            "@once",
        ] {
            Schedule::parse(Some(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert!(matches!(Schedule::parse(None).unwrap(), Schedule::Manual));
        assert!(matches!(
            Schedule::parse(Some("  ")).unwrap(),
            Schedule::Manual
        ));
        let Schedule::Every(d) = Schedule::parse(Some("@every 1h30m")).unwrap() else {
            panic!()
        };
        assert_eq!(d, Duration::from_secs(5400));
    }

    #[test]
    fn bad_schedules_quote_the_expression_and_the_fix() {
        for bad in [
            "* * * *",
            "every day",
            "@fortnightly",
            "@every 3 parsecs",
            "61 * * * *",
        ] {
            let e = Schedule::parse(Some(bad)).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(msg.contains("@daily"), "{msg}");
        }
    }

    #[test]
    fn daily_catchup_over_ten_days_creates_ten_runs_at_midnight() {
        let s = Schedule::parse(Some("@daily")).unwrap();
        let due = due_runs(&input(&s, true, at(2024, 1, 10, 12)), 100);
        let expected: Vec<_> = (1..=10).map(|d| at(2024, 1, d, 0)).collect();
        assert_eq!(due, expected);
    }

    #[test]
    fn catchup_resumes_after_the_last_run_and_respects_the_cap() {
        let s = Schedule::parse(Some("@daily")).unwrap();
        let mut i = input(&s, true, at(2024, 1, 10, 12));
        i.last_scheduled = Some(at(2024, 1, 8, 0));
        assert_eq!(due_runs(&i, 100), [at(2024, 1, 9, 0), at(2024, 1, 10, 0)]);
        i.last_scheduled = None;
        assert_eq!(due_runs(&i, 3).len(), 3);
    }

    #[test]
    fn without_catchup_only_the_latest_fire_time_runs() {
        let s = Schedule::parse(Some("@daily")).unwrap();
        let i = input(&s, false, at(2024, 1, 10, 12));
        assert_eq!(due_runs(&i, 100), [at(2024, 1, 10, 0)]);
        let mut later = i.clone();
        later.last_scheduled = Some(at(2024, 1, 10, 0));
        assert!(due_runs(&later, 100).is_empty());
    }

    #[test]
    fn nothing_is_due_before_the_start_date_or_after_the_end_date() {
        let s = Schedule::parse(Some("@hourly")).unwrap();
        assert!(due_runs(&input(&s, true, at(2023, 12, 31, 0)), 100).is_empty());
        let mut i = input(&s, true, at(2024, 1, 1, 5));
        i.end_date = Some(at(2024, 1, 1, 2));
        assert_eq!(due_runs(&i, 100).len(), 3);
    }

    #[test]
    fn intervals_are_anchored_at_the_start_date() {
        let s = Schedule::parse(Some("@every 6h")).unwrap();
        let due = due_runs(&input(&s, true, at(2024, 1, 2, 1)), 100);
        assert_eq!(
            due,
            [
                at(2024, 1, 1, 0),
                at(2024, 1, 1, 6),
                at(2024, 1, 1, 12),
                at(2024, 1, 1, 18),
                at(2024, 1, 2, 0)
            ]
        );
    }

    #[test]
    fn once_runs_a_single_time() {
        let s = Schedule::Once;
        assert_eq!(
            due_runs(&input(&s, false, at(2024, 2, 1, 0)), 100),
            [at(2024, 1, 1, 0)]
        );
        let mut i = input(&s, false, at(2024, 2, 1, 0));
        i.last_scheduled = Some(at(2024, 1, 1, 0));
        assert!(due_runs(&i, 100).is_empty());
    }

    #[test]
    fn next_fire_time_is_strictly_in_the_future() {
        let s = Schedule::parse(Some("@hourly")).unwrap();
        let i = input(&s, false, at(2024, 1, 1, 5));
        assert_eq!(next_fire_after(&i), Some(at(2024, 1, 1, 6)));
    }
}
