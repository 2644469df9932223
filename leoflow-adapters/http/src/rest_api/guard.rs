//! The one middleware every REST API route runs behind: it finds the route in the route
//! table, rejects query parameters the route does not know, authenticates the caller
//! (`Authorization: Bearer`, then the `_token` cookie — the first token that verifies
//! wins; the user must still exist and be active, and their stored role counts), checks
//! that role against the route's, and records the audit event of a successful mutating
//! call.

use std::sync::Arc;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::RequestExt;
use leoflow_ports::datastore::AuditEvent;
use serde_json::{json, Map, Value};

use super::identity::{Principal, Role};
use super::query::Params;
use super::routes::{Access, Route};
use super::Api;
use crate::problem::{datastore_problem, Problem};
use crate::token;

/// The cookie the Airflow UI authenticates with.
pub const TOKEN_COOKIE: &str = "_token";

pub async fn guard(State(api): State<Arc<Api>>, mut req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return Problem::internal("the request matched no route template").into_response();
    };
    let Some(route) = api.routes.get(&(req.method().clone(), path.as_str())) else {
        return Problem::internal(format!(
            "{} {path} is missing from the route table",
            req.method()
        ))
        .into_response();
    };
    let params = Params::parse(req.uri().query().unwrap_or(""));
    if let Some(unknown) = params.keys().find(|k| !route.query.contains(k)) {
        return Problem::bad_request(unknown_param(route, unknown)).into_response();
    }
    let principal = match route.access {
        Access::Public => None,
        Access::AtLeast(role) => {
            let principal = match authenticate(&api, req.headers()) {
                Ok(p) => p,
                Err(p) => return p.into_response(),
            };
            let principal = match current(&api, principal).await {
                Ok(p) => p,
                Err(p) => return p.into_response(),
            };
            if principal.role < role {
                return Problem::forbidden(format!(
                    "user {:?} has role {} but {} {} needs role {role} or higher; ask an admin for a role with more rights",
                    principal.username, principal.role, route.method, route.path
                ))
                .into_response();
            }
            req.extensions_mut().insert(principal.clone());
            Some(principal)
        }
    };
    let path_params: Vec<(String, String)> = req
        .extract_parts::<RawPathParams>()
        .await
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let res = next.run(req).await;
    if let Some(event) = route.audit {
        if res.status().is_success() {
            audit(&api, event, principal.as_ref(), &path_params, route).await;
        }
    }
    res
}

fn unknown_param(route: &Route, unknown: &str) -> String {
    if route.query.is_empty() {
        format!(
            "unknown query parameter `{unknown}`: {} {} takes no query parameters",
            route.method, route.path
        )
    } else {
        format!(
            "unknown query parameter `{unknown}` for {} {}; it accepts {}",
            route.method,
            route.path,
            route.query.join(", ")
        )
    }
}

/// The caller, from the first candidate token that verifies.
pub fn authenticate(api: &Api, headers: &HeaderMap) -> Result<Principal, Problem> {
    let candidates = candidate_tokens(headers);
    if candidates.is_empty() {
        return Err(Problem::unauthorized(
            "missing token: log in with POST /auth/token and send `Authorization: Bearer <access_token>` (or the _token cookie)",
        ));
    }
    let mut last = None;
    for t in candidates {
        match api.tokens.verify(&t) {
            Ok(c) => {
                return Ok(Principal {
                    username: c.sub,
                    role: c.role,
                    tenant: c.tenant,
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Problem::unauthorized(match last {
        Some(token::Error::Expired) => {
            "the token has expired; log in again with POST /auth/token".to_string()
        }
        Some(token::Error::Invalid { reason }) => {
            format!("invalid token: {reason}; log in again with POST /auth/token")
        }
        _ => "invalid token; log in again with POST /auth/token".to_string(),
    }))
}

/// The principal as the datastore has it now: a user deleted or disabled since the token
/// was issued is refused, and a changed role applies at once.
async fn current(api: &Api, token: Principal) -> Result<Principal, Problem> {
    let user = api
        .engine
        .datastore()
        .get_user(&token.username)
        .await
        .map_err(datastore_problem)?
        .filter(|u| u.is_active)
        .ok_or_else(|| {
            Problem::unauthorized(format!(
                "user {:?} no longer exists or is disabled; log in again with POST /auth/token",
                token.username
            ))
        })?;
    let role: Role = user.role.parse().map_err(|e: String| {
        Problem::internal(format!(
            "user {:?} has a bad stored role: {e}",
            user.username
        ))
    })?;
    Ok(Principal {
        username: user.username,
        role,
        tenant: user.tenant,
    })
}

/// The bearer token, then the `_token` cookie.
fn candidate_tokens(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        out.push(bearer.to_string());
    }
    for header in headers.get_all(COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name == TOKEN_COOKIE && !value.is_empty() {
                    out.push(value.to_string());
                }
            }
        }
    }
    out
}

/// Appends the audit entry of a successful call; a failure to write it is logged, never
/// turned into a failed request.
async fn audit(
    api: &Api,
    event: &str,
    principal: Option<&Principal>,
    path_params: &[(String, String)],
    route: &Route,
) {
    let param = |name: &str| {
        path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut extra = Map::new();
    extra.insert("method".into(), json!(route.method.as_str()));
    extra.insert("route".into(), json!(route.path));
    for (k, v) in path_params {
        if !matches!(k.as_str(), "dag_id" | "dag_run_id" | "task_id") {
            extra.insert(k.clone(), json!(v));
        }
    }
    let entry = AuditEvent {
        id: 0,
        at: api.engine.clock().now(),
        actor: principal.map(|p| p.username.clone()),
        event: event.to_string(),
        dag_id: param("dag_id").filter(|d| d != "~"),
        run_id: param("dag_run_id"),
        task_id: param("task_id"),
        extra: Value::Object(extra),
    };
    if let Err(e) = api.engine.datastore().append_audit(&entry).await {
        tracing::warn!(event, error = %e, "could not write an audit entry");
    }
}
