//! `GET /api/v2/version` and `GET /api/v2/monitor/health` (both public). Health pings
//! the datastore; the scheduler, triggerer and DAG processor are one control plane in
//! Leoflow, so they share its status.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{shapes, Api};

/// `GET /api/v2/version`.
pub async fn version() -> Json<Value> {
    Json(json!({"version": env!("CARGO_PKG_VERSION"), "git_version": null}))
}

/// `GET /api/v2/monitor/health`.
pub async fn health(State(api): State<Arc<Api>>) -> Json<Value> {
    let db = match api.engine.datastore().get_dag("").await {
        Ok(_) => "healthy",
        Err(e) => {
            tracing::warn!(error = %e, "health check: the datastore is unreachable");
            "unhealthy"
        }
    };
    let now = shapes::ts(api.engine.clock().now());
    let beat = now.as_str().map(str::to_string);
    Json(json!({
        "metadatabase": {"status": db},
        "scheduler": {"status": db, "latest_scheduler_heartbeat": beat},
        "triggerer": {"status": db, "latest_triggerer_heartbeat": beat},
        "dag_processor": {"status": db, "latest_dag_processor_heartbeat": beat},
    }))
}
