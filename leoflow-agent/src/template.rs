//! The Jinja subset the agent renders in a `bash_command`: `{{ ds }}`, `{{ ds_nodash }}`,
//! `{{ ts }}`, `{{ ts_nodash }}`, `{{ run_id }}`, `{{ params.NAME }}`, `{{ ti.task_id }}`,
//! `{{ ti.try_number }}`, `{{ ti.map_index }}`, `{{ task.task_id }}`, `{{ dag.dag_id }}`,
//! `{{ dag_run.run_id }}` and `{{ macros.ds_add(ds, N) }}`, plus `{# comments #}`. Anything
//! else is an error naming the expression, never a silent empty string.

use chrono::{NaiveDate, TimeDelta};
use serde_json::Value;

use crate::context::{iso, Context};

const SUPPORTED: &str = "ds, ds_nodash, ts, ts_nodash, run_id, params.NAME, ti.task_id, \
ti.try_number, ti.map_index, task.task_id, dag.dag_id, dag_run.run_id and macros.ds_add(ds, N)";

/// Renders `template` for the attempt in `ctx`.
pub fn render(template: &str, ctx: &Context) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    loop {
        let Some(open) = rest.find('{') else {
            out.push_str(rest);
            return Ok(out);
        };
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        if let Some(inner) = tail.strip_prefix("{{") {
            let close = inner
                .find("}}")
                .ok_or_else(|| "unterminated `{{` in bash_command".to_string())?;
            out.push_str(&eval(inner[..close].trim(), ctx)?);
            rest = &inner[close + 2..];
        } else if let Some(inner) = tail.strip_prefix("{#") {
            let close = inner
                .find("#}")
                .ok_or_else(|| "unterminated `{#` comment in bash_command".to_string())?;
            rest = &inner[close + 2..];
        } else if tail.starts_with("{%") {
            let end = tail.find("%}").map_or(tail.len(), |i| i + 2);
            return Err(format!(
                "unsupported template statement `{}` in bash_command: Leoflow renders only expressions ({SUPPORTED})",
                &tail[..end]
            ));
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
}

fn eval(expr: &str, ctx: &Context) -> Result<String, String> {
    let date = ctx.run.date();
    let unsupported = || {
        format!(
            "unsupported template expression `{{{{ {expr} }}}}` in bash_command: Leoflow renders {SUPPORTED}"
        )
    };
    let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    Ok(match compact.as_str() {
        "ds" => date.format("%Y-%m-%d").to_string(),
        "ds_nodash" => date.format("%Y%m%d").to_string(),
        "ts" => iso(date),
        "ts_nodash" => date.format("%Y%m%dT%H%M%S").to_string(),
        "run_id" | "dag_run.run_id" | "ti.run_id" => ctx.run.run_id.clone(),
        "ti.task_id" | "task_instance.task_id" | "task.task_id" => ctx.task.task_id.clone(),
        "ti.try_number" | "task_instance.try_number" => ctx.attempt.try_number.to_string(),
        "ti.map_index" | "task_instance.map_index" => ctx.attempt.map_index.to_string(),
        "dag.dag_id" | "ti.dag_id" | "dag_run.dag_id" => ctx.dag.dag_id.clone(),
        other => {
            if let Some(name) = param_name(other) {
                let value = ctx.params.get(name).ok_or_else(|| {
                    format!("template expression `{{{{ {expr} }}}}`: the DAG has no param {name:?} and the run's conf does not set it")
                })?;
                return Ok(python_str(value));
            }
            if let Some(args) = other
                .strip_prefix("macros.ds_add(")
                .and_then(|a| a.strip_suffix(')'))
            {
                return ds_add(args, date.date_naive())
                    .map_err(|why| format!("template expression `{{{{ {expr} }}}}`: {why}"));
            }
            return Err(unsupported());
        }
    })
}

/// `params.NAME`, `params['NAME']` or `params["NAME"]`.
fn param_name(expr: &str) -> Option<&str> {
    if let Some(name) = expr.strip_prefix("params.") {
        return name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            .then_some(name);
    }
    let inner = expr.strip_prefix("params[")?.strip_suffix(']')?;
    inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

/// `macros.ds_add(ds, N)` with `ds` or a quoted `YYYY-MM-DD`.
fn ds_add(args: &str, ds: NaiveDate) -> Result<String, String> {
    let (first, days) = args
        .split_once(',')
        .ok_or("ds_add takes two arguments: a date and a number of days")?;
    let base = if first == "ds" {
        ds
    } else {
        let quoted = first
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .or_else(|| first.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            .ok_or("the first argument of ds_add must be ds or a quoted YYYY-MM-DD date")?;
        NaiveDate::parse_from_str(quoted, "%Y-%m-%d")
            .map_err(|_| format!("{quoted:?} is not a YYYY-MM-DD date"))?
    };
    let days: i64 = days
        .parse()
        .map_err(|_| format!("{days:?} is not a whole number of days"))?;
    let shifted = TimeDelta::try_days(days)
        .and_then(|d| base.checked_add_signed(d))
        .ok_or("the resulting date is out of range")?;
    Ok(shifted.format("%Y-%m-%d").to_string())
}

/// How Jinja prints a Python value: strings bare, `True`/`False`/`None`, numbers as is;
/// lists and dicts as JSON (close to, not exactly, Python's repr).
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        serde_json::from_value(serde_json::json!({
            "attempt": {"dag_id": "d", "run_id": "manual__1", "task_id": "t", "map_index": -1, "try_number": 2},
            "task": {"task_id": "t", "type": "bash", "entrypoint": "echo"},
            "dag": {"dag_id": "d", "owner": "ops"},
            "run": {"run_id": "manual__1", "logical_date": "2024-03-01T06:30:00Z", "run_after": "2024-03-02T00:00:00Z"},
            "params": {"x": "hello", "n": 3, "flag": true, "none": null, "obj": {"a": [1]}},
            "heartbeat_interval_seconds": 30.0
        }))
        .unwrap()
    }

    fn check(template: &str, expected: &str) {
        assert_eq!(
            render(template, &ctx()).as_deref(),
            Ok(expected),
            "{template}"
        );
    }

    fn check_err(template: &str, needle: &str) {
        let err = render(template, &ctx()).unwrap_err();
        assert!(err.contains(needle), "{template}: {err}");
    }

    #[test]
    fn the_supported_expressions_render_like_airflow() {
        check("echo {{ ds }}", "echo 2024-03-01");
        check("{{ds_nodash}}", "20240301");
        check("{{ ts }}", "2024-03-01T06:30:00+00:00");
        check("{{ ts_nodash }}", "20240301T063000");
        check("{{ run_id }} {{ dag_run.run_id }}", "manual__1 manual__1");
        check("{{ ti.task_id }}/{{ task.task_id }}", "t/t");
        check("{{ ti.try_number }} {{ ti.map_index }}", "2 -1");
        check("{{ dag.dag_id }}", "d");
        check("{{ macros.ds_add(ds, 7) }}", "2024-03-08");
        check("{{ macros.ds_add(ds, -1) }}", "2024-02-29");
        check("{{ macros.ds_add('2024-12-31', 1) }}", "2025-01-01");
    }

    #[test]
    fn params_print_as_python_would() {
        check("{{ params.x }} {{ params['n'] }}", "hello 3");
        check("{{ params.flag }} {{ params.none }}", "True None");
        check("{{ params.obj }}", r#"{"a":[1]}"#);
    }

    #[test]
    fn plain_text_braces_and_comments() {
        check("awk '{print $1}' f", "awk '{print $1}' f");
        check("a{# note #}b", "ab");
        check("${HOME}", "${HOME}");
        check("", "");
    }

    #[test]
    fn anything_else_fails_naming_the_expression() {
        check_err("{{ var.value.x }}", "`{{ var.value.x }}`");
        check_err("{{ ds | upper }}", "`{{ ds | upper }}`");
        check_err("{{ params.missing }}", "no param \"missing\"");
        check_err(
            "{% if x %}a{% endif %}",
            "unsupported template statement `{% if x %}`",
        );
        check_err("echo {{ ds", "unterminated");
        check_err("{{ macros.ds_add(ds, x) }}", "not a whole number");
    }
}
