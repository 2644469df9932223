//! The agent API's authentication: the bearer token of every request is checked by
//! `AgentTokens` and turned into the one attempt it authorises.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use leoflow_ports::run::AttemptId;

use super::AgentApi;
use crate::problem::Problem;

/// The attempt the request's token authorises.
pub struct Caller(pub AttemptId);

impl FromRequestParts<Arc<AgentApi>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<AgentApi>) -> Result<Caller, Problem> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(Problem::unauthorized(
                "missing agent token: send `Authorization: Bearer <token>`",
            ));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let claims = api
            .tokens
            .verify(token)
            .map_err(|e| Problem::unauthorized(e.to_string()))?;
        Ok(Caller(claims.attempt()))
    }
}
