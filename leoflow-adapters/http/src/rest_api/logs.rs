//! `GET …/taskInstances/{task_id}/logs/{try_number}`: an attempt's log in Airflow's
//! `TaskInstancesLogResponse` shape (`{content: [{event, timestamp, level, logger}],
//! continuation_token}`), as NDJSON when asked (`Accept: application/x-ndjson`, what the
//! UI uses), or as plain lines for `Accept: text/plain`. The continuation token is the
//! line offset where the next page starts; `full_content=true` reads everything.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leoflow_ports::log::{LogLine, LogStream};
use leoflow_ports::run::{AttemptId, RunKey, TaskKey};
use serde_json::{json, Value};

use super::query::Params;
use super::{shapes, Api};
use crate::problem::{datastore_problem, Problem};

/// Lines per page without `full_content`.
const PAGE_LINES: usize = 10_000;

/// `GET …/logs/{try_number}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path((dag_id, run_id, task_id, try_number)): Path<(String, String, String, String)>,
    q: RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let q = Params::from(q);
    let try_number: u32 = try_number.parse().map_err(|_| {
        Problem::bad_request(format!(
            "try_number must be a positive integer, got {try_number:?}"
        ))
    })?;
    let map_index: i32 = q.parsed("map_index", "an integer")?.unwrap_or(-1);
    let full = q.flag("full_content")?.unwrap_or(false);
    let offset: u64 = match q.one("token") {
        Some(t) => t.parse().map_err(|_| {
            Problem::bad_request(format!(
                "token {t:?} is not a continuation token from a previous page of this log"
            ))
        })?,
        None => 0,
    };
    let task = TaskKey::new(&RunKey::new(dag_id, run_id), task_id, map_index);
    api.engine
        .datastore()
        .get_task_instance(&task)
        .await
        .map_err(datastore_problem)?
        .ok_or_else(|| Problem::not_found(format!("task instance {task} not found")))?;
    let attempt = AttemptId { task, try_number };
    let limit = if full { usize::MAX } else { PAGE_LINES };
    let chunk = api
        .engine
        .logs()
        .read(&attempt, offset, limit)
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    let mut events = Vec::with_capacity(chunk.lines.len() + 2);
    if offset == 0 {
        events.push(json!({
            "event": "::group::Log message source details",
            "sources": [format!(
                "dag_id={}/run_id={}/task_id={}/attempt={}.log",
                attempt.task.dag_id, attempt.task.run_id, attempt.task.task_id, try_number
            )],
        }));
        events.push(json!({"event": "::endgroup::"}));
    }
    events.extend(chunk.lines.iter().map(event));
    let token = (!chunk.complete).then(|| chunk.next_offset.to_string());
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("ndjson") {
        let mut body = String::new();
        for e in &events {
            body.push_str(&e.to_string());
            body.push('\n');
        }
        return Ok(([(CONTENT_TYPE, "application/x-ndjson")], body).into_response());
    }
    if accept.starts_with("text/plain") {
        let mut body = String::new();
        for l in &chunk.lines {
            body.push_str(&l.message);
            body.push('\n');
        }
        return Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response());
    }
    Ok(Json(json!({"content": events, "continuation_token": token})).into_response())
}

fn event(line: &LogLine) -> Value {
    let (level, logger) = match line.stream {
        LogStream::Stdout => ("info", "task.stdout"),
        LogStream::Stderr => ("error", "task.stderr"),
        LogStream::System => ("info", "leoflow"),
    };
    json!({
        "event": line.message,
        "timestamp": shapes::ts(line.at),
        "level": level,
        "logger": logger,
    })
}
