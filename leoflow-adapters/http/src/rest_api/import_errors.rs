//! `/api/v2/importErrors`: DAG files that failed to compile (written by the Lite watcher
//! and `leoflow push`), with a stable id per filename.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use leoflow_ports::datastore::ImportError;
use serde_json::{json, Value};

use super::query::{like, Params};
use super::{shapes, Api};
use crate::problem::{datastore_problem, Problem};

/// A stable positive id for a filename (Airflow's ids are integers).
fn id_of(filename: &str) -> u32 {
    // FNV-1a, 31 bits so the id is positive in every client's integer type.
    let mut h: u32 = 0x811c_9dc5;
    for b in filename.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h & 0x7fff_ffff
}

fn entry(e: &ImportError) -> Value {
    json!({
        "import_error_id": id_of(&e.filename),
        "timestamp": shapes::ts(e.at),
        "filename": e.filename,
        "bundle_name": shapes::BUNDLE,
        "stack_trace": e.message,
    })
}

async fn all(api: &Api) -> Result<Vec<ImportError>, Problem> {
    api.engine
        .datastore()
        .list_import_errors()
        .await
        .map_err(datastore_problem)
}

/// `GET /api/v2/importErrors`.
pub async fn list(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(&["filename", "timestamp", "id", "import_error_id"])?;
    let pattern = q.one("filename_pattern");
    let mut errors = all(&api).await?;
    errors.retain(|e| pattern.is_none_or(|p| like(p, &e.filename)));
    if matches!(order, Some((_, true))) {
        errors.reverse();
    }
    let total = errors.len();
    let items = page.apply(errors).iter().map(entry).collect();
    Ok(Json(shapes::collection("import_errors", items, total)))
}

/// `GET /api/v2/importErrors/{import_error_id}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let n: u32 = id.parse().map_err(|_| {
        Problem::bad_request(format!("import_error_id must be an integer, got {id:?}"))
    })?;
    all(&api)
        .await?
        .iter()
        .find(|e| id_of(&e.filename) == n)
        .map(|e| Json(entry(e)))
        .ok_or_else(|| Problem::not_found(format!("import error {n} not found")))
}
