//! `/healthz` (liveness: the process serves) and `/readyz` (readiness: Postgres answers with
//! every migration applied, and Redis answers), both without authentication.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use leoflow_postgres::PgHealthcheck;
use leoflow_redis::RedisConnection;
use serde_json::json;

/// A dependency slower than this counts as down: probes must answer quickly.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What readiness checks.
#[derive(Clone)]
pub struct Probes {
    pub postgres: PgHealthcheck,
    pub redis: RedisConnection,
}

/// The two probe routes.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .with_state(probes)
}

async fn ready(State(p): State<Probes>) -> Response {
    let postgres = async {
        match tokio::time::timeout(PROBE_TIMEOUT, p.postgres.check_schema()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("postgres: {e}")),
            Err(_) => Some("postgres: no answer within 2 s".to_string()),
        }
    };
    let redis = async {
        match tokio::time::timeout(PROBE_TIMEOUT, p.redis.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("redis: {e}")),
            Err(_) => Some("redis: no answer within 2 s".to_string()),
        }
    };
    let (pg, rd) = tokio::join!(postgres, redis);
    let reasons: Vec<String> = pg.into_iter().chain(rd).collect();
    if reasons.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": reasons.join("; ")})),
        )
            .into_response()
    }
}
