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

use axum::routing::post;
use axum::Router;
use leoflow_core::Engine;
use leoflow_ports::run::{AttemptId, TaskInstance};

use crate::problem::{self, datastore_problem, Problem};
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
