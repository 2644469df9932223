//! `GET /api/v2/config`: a read-only subset of the configuration, in Airflow's `Config`
//! shape, with the values that matter to API clients (page limits, engine tunables).
//! Secrets are never listed.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use super::query::{Params, DEFAULT_LIMIT, MAX_LIMIT};
use super::Api;
use crate::problem::Problem;

/// `GET /api/v2/config` (`section` narrows it to one section).
pub async fn get(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let engine = api.engine.config();
    let option = |key: &str, value: String| json!({"key": key, "value": value});
    let sections = vec![
        json!({"name": "api", "options": [
            option("maximum_page_limit", MAX_LIMIT.to_string()),
            option("fallback_page_limit", DEFAULT_LIMIT.to_string()),
            option("access_token_ttl_seconds", api.token_ttl.as_secs().to_string()),
            option("max_body_bytes", api.max_body_bytes.to_string()),
        ]}),
        json!({"name": "core", "options": [
            option("max_active_runs_per_dag", engine.default_max_active_runs.to_string()),
            option("executor", "leoflow".to_string()),
        ]}),
        json!({"name": "scheduler", "options": [
            option("tick_seconds", engine.tick.as_secs_f64().to_string()),
            option("task_queued_timeout", engine.queued_timeout.as_secs_f64().to_string()),
            option("task_instance_heartbeat_timeout", engine.heartbeat_timeout.as_secs_f64().to_string()),
        ]}),
    ];
    let sections: Vec<Value> = match q.one("section") {
        None => sections,
        Some(name) => {
            let found: Vec<Value> = sections.into_iter().filter(|s| s["name"] == name).collect();
            if found.is_empty() {
                return Err(Problem::not_found(format!(
                    "config section {name:?} not found; Leoflow exposes api, core and scheduler"
                )));
            }
            found
        }
    };
    Ok(Json(json!({ "sections": sections })))
}
