//! The API's own description, generated from the route table at request time (so it
//! cannot drift from what the guard enforces): `GET /api/v2/openapi.json` (OpenAPI 3.1:
//! every route with its path and query parameters, whether it needs a token, and the
//! least role in `x-leoflow-min-role`) and `GET /docs`, a self-contained page that renders
//! it. Response bodies are Airflow 3.2.1's for the same route; the document says so
//! rather than repeating Airflow's schemas.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::routes::{Access, Route};
use super::Api;

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn operation(route: &Route) -> Value {
    let mut params: Vec<Value> = path_params(route.path)
        .into_iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    params.extend(route.query.iter().map(
        |q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
    ));
    let mut op = json!({
        "operationId": format!("{}_{}", route.method.as_str().to_lowercase(), route.path.trim_matches('/').replace(['/', '{', '}', '~'], "_")),
        "parameters": params,
        "responses": {
            "2XX": {"description": "Airflow 3.2.1's response for this route (see its v2-rest-api-generated.yaml)"},
            "default": {"description": "An RFC 7807 problem document", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
        },
    });
    match route.access {
        Access::Public => op["security"] = json!([]),
        Access::AtLeast(role) => op["x-leoflow-min-role"] = json!(role.as_str()),
    }
    if let Some(event) = route.audit {
        op["x-leoflow-audit-event"] = json!(event);
    }
    op
}

/// `GET /api/v2/openapi.json`.
pub async fn document(State(api): State<Arc<Api>>) -> Json<Value> {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for ((method, path), route) in &api.routes {
        paths
            .entry(path)
            .or_default()
            .insert(method.as_str().to_lowercase(), operation(route));
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Leoflow REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Airflow 3.2.1's REST API v2 as Leoflow serves it. Log in with POST /auth/token; send the token as `Authorization: Bearer` or the `_token` cookie.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "_token"},
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                    },
                },
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }))
}

/// `GET /docs`: the route reference, rendered in the browser from `openapi.json`.
pub async fn page() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        DOCS_PAGE,
    )
        .into_response()
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leoflow REST API</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#111827}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
code{font-size:.9em}.m{font-weight:600;text-transform:uppercase}
</style></head><body>
<h1>Leoflow REST API</h1>
<p id="desc"></p>
<p>Machine-readable: <a href="/api/v2/openapi.json">/api/v2/openapi.json</a>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>Least role</th><th>Query parameters</th></tr></thead><tbody id="rows"></tbody></table>
<script>
fetch("/api/v2/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("desc").textContent = doc.info.description;
  const rows = document.getElementById("rows");
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tr = document.createElement("tr");
      const q = op.parameters.filter(p => p.in === "query").map(p => p.name).join(", ");
      for (const [text, cls] of [[method, "m"], [path, ""], [op["x-leoflow-min-role"] || "public", ""], [q, ""]]) {
        const td = document.createElement("td");
        if (cls) td.className = cls;
        const code = document.createElement("code");
        code.textContent = text;
        td.appendChild(code);
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    }
  }
});
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_come_from_the_template() {
        assert_eq!(
            path_params("/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}"),
            ["dag_id", "dag_run_id"]
        );
        assert!(path_params("/api/v2/dags").is_empty());
    }
}
