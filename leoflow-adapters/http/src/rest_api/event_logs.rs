//! `GET /api/v2/eventLogs`: the audit trail — one entry per successful mutating call,
//! written by the guard — newest first, optionally for one DAG.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::Json;
use leoflow_ports::datastore::AuditEvent;
use serde_json::{json, Value};

use super::query::Params;
use super::{shapes, Api};
use crate::problem::{datastore_problem, Problem};

fn entry(e: &AuditEvent) -> Value {
    json!({
        "event_log_id": e.id,
        "when": shapes::ts(e.at),
        "dag_id": e.dag_id,
        "task_id": e.task_id,
        "run_id": e.run_id,
        "map_index": null,
        "try_number": null,
        "event": e.event,
        "logical_date": null,
        "owner": e.actor,
        "extra": if e.extra.is_null() { Value::Null } else { json!(e.extra.to_string()) },
        "dag_display_name": e.dag_id,
        "task_display_name": e.task_id,
    })
}

/// `GET /api/v2/eventLogs` (newest first; `order_by` accepts `-when`/`-event_log_id`).
pub async fn list(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    if let Some((field, desc)) = q.order_by(&["when", "event_log_id", "id"])? {
        if !desc {
            return Err(Problem::bad_request(format!(
                "event logs are listed newest first; use order_by=-{field}"
            )));
        }
    }
    let (events, total) = api
        .engine
        .datastore()
        .list_audit(q.one("dag_id"), page.limit, page.offset)
        .await
        .map_err(datastore_problem)?;
    let items = events.iter().map(entry).collect();
    Ok(Json(shapes::collection("event_logs", items, total)))
}
