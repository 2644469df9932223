//! The one HTTP server of `leoflow lite`: the agent API (`/agent/v1/*`), the REST API
//! (`/api/v2/*`, `/auth/*`, `/ui/*`) and the Airflow UI on one axum router, bound after a
//! port pre-flight that says what to do when the port is taken.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use leoflow_core::Engine;
use leoflow_http::token::AgentTokens;
use leoflow_http::{agent_router, api_router, ui_router, AgentApi, ApiConfig};
use tokio::net::TcpListener;

use crate::Error;

/// Binds `host:port`, or explains why not.
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, Error> {
    let addr = format!("{host}:{port}");
    let parsed: SocketAddr = addr.parse().map_err(|_| {
        Error::Usage(format!(
            "--host {host:?} is not an IP address; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        ))
    })?;
    TcpListener::bind(parsed).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::Usage(format!(
                "port {port} is already in use (needed for the HTTP server on {host}); another Leoflow Lite may be running — stop it, or pass --port"
            ))
        } else {
            Error::Usage(format!("cannot listen on {addr}: {e}; pass another --host or --port"))
        }
    })
}

/// Every route Lite serves: the agent API, the REST API (with the UI's `/ui/*` API) and
/// the Airflow UI bundle from `ui_dir`.
pub fn router(engine: &Engine, tokens: AgentTokens, api: ApiConfig, ui_dir: PathBuf) -> Router {
    agent_router(AgentApi::new(engine.clone(), tokens))
        .merge(api_router(engine.clone(), api))
        .merge(ui_router(ui_dir))
}
