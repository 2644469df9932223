//! Driving adapter: the control plane's HTTP surfaces on axum — the agent API
//! (`/agent/v1/*`, ADR 0003) with its per-attempt tokens ([`agent_router`]), and the
//! Airflow 3.2.1-compatible REST API v2 with login, roles and audit ([`api_router`]);
//! every endpoint answers failures with RFC 7807 problem bodies. `api_router` also serves
//! the private `/ui/*` API the Airflow 3.2.1 web UI calls; [`ui_router`] serves the UI
//! bundle itself, which [`ui_assets::fetch`] installs from the pinned PyPI wheel.
//!
//! Wire types (the agent DTOs and Airflow's REST shapes) stay inside this crate.

mod agent_api;
mod body;
pub mod cipher;
pub mod password;
pub mod problem;
mod rest_api;
pub mod token;
mod ui_api;
pub mod ui_assets;

pub use agent_api::{agent_router, AgentApi, MAX_LOG_BATCH_BYTES};
pub use rest_api::{api_router, ApiConfig, Role, UserClaims, UserTokens, USER_AUDIENCE};
pub use ui_assets::ui_router;
