//! Driving adapter: the control plane's HTTP surfaces on axum. Today that is the agent API
//! (`/agent/v1/*`, ADR 0003) with its per-attempt tokens and the RFC 7807 problem bodies
//! every endpoint answers with; the Airflow-compatible `/api/v2` and `/ui` come with
//! issues #7 and #9.
//!
//! Wire types (the agent DTOs, and later Airflow's REST shapes) stay inside this crate.

mod agent_api;
mod body;
pub mod cipher;
pub mod password;
pub mod problem;
mod rest_api;
pub mod token;
pub mod ui_assets;

pub use agent_api::{agent_router, AgentApi, MAX_LOG_BATCH_BYTES};
pub use rest_api::{api_router, ApiConfig, UserClaims, UserTokens, USER_AUDIENCE};
pub use ui_assets::ui_router;
