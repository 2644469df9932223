//! The `/agent/v1/*` handlers. Each authenticates its caller (`Caller`), checks that the
//! attempt may still do what it asks, and calls the engine or a port.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use leoflow_core::engine::FinishResult;
use leoflow_ports::dag::{XComRef, RETURN_VALUE};
use leoflow_ports::executor::Outcome;
use leoflow_ports::log::{LogLine, LogStream};
use leoflow_ports::state::TaskState;
use leoflow_ports::xcom::{self, json_size};
use serde_json::Value;

use super::auth::Caller;
use super::context::{start_response, Scope, XComReader};
use super::dto::{
    FinishRequest, FinishResponse, FinishStatus, HeartbeatAction, HeartbeatResponse, LogBatch,
    LogLineDto, StartRequest, StartResponse, XComPush, XComQuery, XComValue,
};
use super::{AgentApi, MAX_LOG_BATCH_BYTES, SMALL_BODY_BYTES};
use crate::body::{read_json, read_optional_json};
use crate::problem::{datastore_problem, engine_problem, xcom_problem, Problem};

type Api = State<Arc<AgentApi>>;

/// `POST /agent/v1/start`: marks the attempt running and returns its context.
pub async fn start(
    State(api): Api,
    Caller(attempt): Caller,
    body: Body,
) -> Result<Json<StartResponse>, Problem> {
    let req: StartRequest = read_optional_json(body, SMALL_BODY_BYTES, "a start call").await?;
    let started = api
        .engine
        .attempt_started(&attempt, None, req.hostname)
        .await
        .map_err(engine_problem)?;
    if !started {
        // Re-read for a precise message; `current` answers 409 when it moved on.
        api.current(&attempt).await?;
        return Err(Problem::conflict(format!(
            "attempt {attempt} could not be marked running"
        )));
    }
    Ok(Json(start_response(&api, &attempt).await?))
}

/// `POST /agent/v1/heartbeat`: records a beat; tells the agent to stop when the attempt is
/// no longer current or its run has ended.
pub async fn heartbeat(
    State(api): Api,
    Caller(attempt): Caller,
) -> Result<Json<HeartbeatResponse>, Problem> {
    let store = api.engine.datastore();
    let now = api.engine.clock().now();
    let mut current = store
        .heartbeat(&attempt.task, attempt.try_number, now)
        .await
        .map_err(datastore_problem)?;
    if current {
        let run = store
            .get_run(&attempt.task.run())
            .await
            .map_err(datastore_problem)?;
        current = run.is_some_and(|r| !r.state.is_finished());
    }
    let action = if current {
        HeartbeatAction::Continue
    } else {
        HeartbeatAction::Cancel
    };
    Ok(Json(HeartbeatResponse { action }))
}

/// `POST /agent/v1/logs`: appends a batch of lines to the attempt's log. Accepted after
/// the attempt finished too, so the agent's closing lines are kept.
pub async fn logs(
    State(api): Api,
    Caller(attempt): Caller,
    body: Body,
) -> Result<StatusCode, Problem> {
    let batch: LogBatch = read_json(body, MAX_LOG_BATCH_BYTES, "a log batch").await?;
    if batch.lines.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let lines = log_lines(batch.lines, api.engine.clock().now());
    api.engine
        .logs()
        .append(&attempt, &lines)
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /agent/v1/xcom`: stores an extra XCom under the caller's own task.
pub async fn push_xcom(
    State(api): Api,
    Caller(attempt): Caller,
    body: Body,
) -> Result<StatusCode, Problem> {
    let limit = api.value_body_limit();
    let push: XComPush = read_json(body, limit, "an XCom push")
        .await
        .map_err(|p| too_large_value(p, api.engine.xcom().max_value_bytes()))?;
    if push.key.is_empty() {
        return Err(Problem::bad_request("an XCom key must not be empty"));
    }
    api.current(&attempt).await?;
    api.engine
        .xcom()
        .put(&attempt.task, &push.key, &push.value)
        .await
        .map_err(|e| xcom_problem(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /agent/v1/xcom`: an XCom of this run, only from the caller's declared upstreams.
pub async fn get_xcom(
    State(api): Api,
    Caller(attempt): Caller,
    Query(q): Query<XComQuery>,
) -> Result<Json<XComValue>, Problem> {
    let scope = Scope::load(&api, &attempt).await?;
    if !scope.readable().contains(q.task_id.as_str()) {
        return Err(Problem::forbidden(format!(
            "task {:?} may not read the XComs of {:?}: it is not one of its declared upstreams",
            attempt.task.task_id, q.task_id
        )));
    }
    let r = XComRef {
        task_id: q.task_id,
        key: q.key.unwrap_or_else(|| RETURN_VALUE.to_string()),
    };
    let value = XComReader::new(&api, &scope)
        .value(&r, q.map_index)
        .await?
        .unwrap_or(Value::Null);
    Ok(Json(XComValue { value }))
}

/// `POST /agent/v1/finish`: records the attempt's outcome through the engine, then appends
/// the log lines that came with it and, when the agent gave its elapsed time, the closing
/// line.
pub async fn finish(
    State(api): Api,
    Caller(attempt): Caller,
    body: Body,
) -> Result<Json<FinishResponse>, Problem> {
    let cap = api.engine.xcom().max_value_bytes();
    let req: FinishRequest = read_json(body, api.value_body_limit(), "a finish call")
        .await
        .map_err(|p| too_large_value(p, cap))?;
    if let (FinishStatus::Success, Some(v)) = (req.status, &req.return_value) {
        let size = json_size(v);
        if size > cap {
            let e = xcom::Error::TooLarge { size, limit: cap };
            return Err(Problem::too_large(format!(
                "the return value was refused: {e}"
            )));
        }
    }
    let now = api.engine.clock().now();
    let mut lines = log_lines(req.logs, now);
    let outcome = match req.status {
        FinishStatus::Success => Outcome::Success {
            return_value: req.return_value,
        },
        FinishStatus::Skipped => Outcome::Skipped {
            message: req.error.clone(),
        },
        FinishStatus::Failed => Outcome::Failed {
            message: req
                .error
                .clone()
                .unwrap_or_else(|| "the task failed without a message".into()),
            exit_code: req.exit_code,
            retryable: req.retryable.unwrap_or(true),
        },
    };
    let recorded = api
        .engine
        .finish_attempt(&attempt, outcome)
        .await
        .map_err(engine_problem);
    let answer = match recorded {
        Ok(FinishResult::Recorded(state)) => {
            let error = if matches!(state, TaskState::Failed | TaskState::UpForRetry) {
                api.engine
                    .datastore()
                    .tries(&attempt.task)
                    .await
                    .ok()
                    .and_then(|tries| {
                        tries
                            .into_iter()
                            .find(|t| t.try_number == attempt.try_number)
                    })
                    .and_then(|t| t.error_message)
            } else {
                None
            };
            if let Some(elapsed) = req.elapsed_seconds {
                let closing = closing_line(
                    state,
                    elapsed,
                    req.exit_code,
                    error.as_deref().or(req.error.as_deref()),
                );
                lines.push(LogLine {
                    at: api.engine.clock().now(),
                    stream: LogStream::System,
                    message: closing,
                });
            }
            Ok(FinishResponse {
                state: state.as_str().to_string(),
                error,
            })
        }
        // `current` explains precisely why (gone, or at another try or state).
        Ok(FinishResult::Stale) => api.current(&attempt).await.and_then(|_| {
            Err(Problem::conflict(format!(
                "attempt {attempt} is no longer current"
            )))
        }),
        Err(p) => Err(p),
    };
    // Kept whatever the answer: like `logs`, lines are accepted after the attempt ended.
    if !lines.is_empty() {
        if let Err(e) = api.engine.logs().append(&attempt, &lines).await {
            tracing::warn!(%attempt, error = %e, "could not store the log lines sent with finish");
        }
    }
    answer.map(Json)
}

/// The agent's lines as the log store keeps them (a line without a time gets `now`).
fn log_lines(lines: Vec<LogLineDto>, now: DateTime<Utc>) -> Vec<LogLine> {
    lines
        .into_iter()
        .map(|l| LogLine {
            at: l.at.unwrap_or(now),
            stream: l.stream,
            message: l.message,
        })
        .collect()
}

/// The last line of an attempt's log: how it ended and after how long.
fn closing_line(
    state: TaskState,
    elapsed: f64,
    exit_code: Option<i32>,
    cause: Option<&str>,
) -> String {
    let took = took(elapsed);
    let cause = cause.map(|c| format!(": {c}")).unwrap_or_default();
    match state {
        TaskState::Success => format!("✓ task succeeded in {took}"),
        TaskState::Skipped => format!("↷ task skipped in {took}{cause}"),
        _ => {
            let code = exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            format!("✗ task failed{code} in {took}{cause}")
        }
    }
}

/// `0.02s` under ten seconds, whole seconds above.
fn took(elapsed: f64) -> String {
    let elapsed = if elapsed.is_finite() {
        elapsed.max(0.0)
    } else {
        0.0
    };
    if elapsed < 10.0 {
        format!("{elapsed:.2}s")
    } else {
        format!("{}s", elapsed.trunc())
    }
}

/// A body over the limit of a value-carrying call is explained in terms of the XCom cap.
fn too_large_value(p: Problem, cap: usize) -> Problem {
    if p.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16() {
        Problem::too_large(format!(
            "{}; XCom values are capped at {cap} bytes: return a smaller value or write large data to storage and return its path",
            p.detail
        ))
    } else {
        p
    }
}
