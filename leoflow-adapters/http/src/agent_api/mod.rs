//! The agent API (`/agent/v1/*`): what a running attempt's agent calls to start, heartbeat,
//! ship logs, push and read XComs and report its outcome. Every call carries the
//! attempt's bearer token (`crate::token`); every failure is a problem document.
//! The protocol is ADR 0003.

mod auth;
mod context;
mod dto;
mod handlers;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use leoflow_core::engine::Error as EngineError;
use leoflow_core::Engine;
use leoflow_ports::datastore;
use leoflow_ports::run::{AttemptId, TaskInstance};
use leoflow_ports::xcom;
use serde::de::DeserializeOwned;

use crate::problem::{self, Problem};
use crate::token::AgentTokens;

/// The largest log batch accepted.
pub const MAX_LOG_BATCH_BYTES: usize = 1024 * 1024;
/// Room for the JSON around a value (keys, escaping slack) on top of the XCom cap.
const ENVELOPE_BYTES: usize = 64 * 1024;
/// Bodies of the small calls (start, heartbeat).
const SMALL_BODY_BYTES: usize = 64 * 1024;

/// Everything the agent API needs: the engine and the token authority.
#[derive(Clone)]
pub struct AgentApi {
    engine: Engine,
    tokens: AgentTokens,
    heartbeat_interval: Duration,
}

impl AgentApi {
    /// The API over `engine`, checking tokens with `tokens`. Agents heartbeat at a third
    /// of the engine's heartbeat timeout, so two lost beats are not yet a reaped attempt.
    pub fn new(engine: Engine, tokens: AgentTokens) -> AgentApi {
        let interval = (engine.config().heartbeat_timeout / 3).max(Duration::from_secs(1));
        AgentApi {
            engine,
            tokens,
            heartbeat_interval: interval,
        }
    }

    /// Overrides how often agents heartbeat.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> AgentApi {
        self.heartbeat_interval = interval;
        self
    }

    pub fn tokens(&self) -> &AgentTokens {
        &self.tokens
    }

    /// The largest request body carrying one XCom value.
    fn value_body_limit(&self) -> usize {
        self.engine.xcom().max_value_bytes() + ENVELOPE_BYTES
    }

    /// The task instance, if `attempt` is its current in-flight try; else a 409 (or 404).
    async fn current(&self, attempt: &AttemptId) -> Result<TaskInstance, Problem> {
        let ti = self
            .engine
            .datastore()
            .get_task_instance(&attempt.task)
            .await
            .map_err(datastore_problem)?
            .ok_or_else(|| {
                Problem::not_found(format!("task instance {} not found", attempt.task))
            })?;
        if ti.try_number != attempt.try_number || !ti.state.is_in_flight() {
            return Err(Problem::conflict(format!(
                "attempt {attempt} is no longer current: the task instance is at try {} in state {}",
                ti.try_number, ti.state
            )));
        }
        Ok(ti)
    }
}

/// The agent API router; mount it on the control plane's axum server.
pub fn agent_router(api: AgentApi) -> Router {
    let api = Arc::new(api);
    Router::new()
        .route("/agent/v1/start", post(handlers::start))
        .route("/agent/v1/heartbeat", post(handlers::heartbeat))
        .route("/agent/v1/logs", post(handlers::logs))
        .route(
            "/agent/v1/xcom",
            post(handlers::push_xcom).get(handlers::get_xcom),
        )
        .route("/agent/v1/finish", post(handlers::finish))
        .fallback(problem::no_route)
        .method_not_allowed_fallback(problem::wrong_method)
        .layer(axum::middleware::from_fn(problem::fill_instance))
        .with_state(api)
}

/// Bodies past their limit are still read (and dropped) up to this size, so the client
/// finishes sending and reads the 413 instead of a reset connection.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// The body's bytes, at most `limit`; `what` names the limit in the 413.
async fn read_body(body: Body, limit: usize, what: &str) -> Result<Vec<u8>, Problem> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Problem::bad_request(format!("could not read the request body: {e}")))?;
        total = total.saturating_add(chunk.len());
        if total <= limit {
            bytes.extend_from_slice(&chunk);
        } else if total > DRAIN_BYTES {
            break;
        }
    }
    if total > limit {
        return Err(Problem::too_large(format!(
            "the request body is larger than the {limit}-byte limit for {what}"
        )));
    }
    Ok(bytes)
}

/// Reads a JSON body of at most `limit` bytes.
async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    what: &str,
) -> Result<T, Problem> {
    let bytes = read_body(body, limit, what).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
}

/// Like [`read_json`], for bodies that may be empty.
async fn read_optional_json<T: DeserializeOwned + Default>(
    body: Body,
    limit: usize,
    what: &str,
) -> Result<T, Problem> {
    let bytes = read_body(body, limit, what).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
}

fn datastore_problem(e: datastore::Error) -> Problem {
    match e {
        datastore::Error::NotFound { what } => Problem::not_found(format!("{what} not found")),
        datastore::Error::Conflict { .. } => Problem::conflict(e.to_string()),
        datastore::Error::Invalid { .. } => Problem::bad_request(e.to_string()),
        datastore::Error::Unavailable { .. } => Problem::unavailable(e.to_string()),
        _ => Problem::internal(e.to_string()),
    }
}

fn xcom_problem(e: &xcom::Error) -> Problem {
    match e {
        xcom::Error::TooLarge { .. } => Problem::too_large(e.to_string()),
        xcom::Error::Unavailable { .. } => Problem::unavailable(e.to_string()),
        _ => Problem::internal(e.to_string()),
    }
}

fn engine_problem(e: EngineError) -> Problem {
    match e {
        EngineError::NotFound(m) => Problem::not_found(m),
        EngineError::Conflict(m) => Problem::conflict(m),
        EngineError::BadRequest(m) => Problem::bad_request(m),
        EngineError::Datastore(e) => datastore_problem(e),
        EngineError::XCom(e) => xcom_problem(&e),
        other => Problem::internal(other.to_string()),
    }
}
