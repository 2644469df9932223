//! RFC 7807 problem details: the one error body every Leoflow HTTP endpoint answers with
//! (`application/problem+json`), plus the middleware that names the failing request in
//! `instance` and the fallbacks that keep unknown routes and methods in the same shape.

use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leoflow_core::engine::Error as EngineError;
use leoflow_ports::{datastore, xcom};
use serde::Serialize;

/// The media type of a problem body.
pub const CONTENT_TYPE_PROBLEM: &str = "application/problem+json";

/// One problem, as RFC 7807 spells it. `kind` is a stable URN (`urn:leoflow:problem:<slug>`)
/// a client may branch on; `detail` is the sentence a person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Problem {
    /// A problem with the status's canonical reason as its title.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:leoflow:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", detail)
    }
    pub fn too_large(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// The request this problem is about (the middleware fills it in when left empty).
    pub fn with_instance(mut self, instance: impl Into<String>) -> Problem {
        self.instance = Some(instance.into());
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PROBLEM));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Kept on the response so `fill_instance` can re-render it with the request path.
        res.extensions_mut().insert(self);
        res
    }
}

/// Middleware: a problem answered without an `instance` gets the request's path.
pub async fn fill_instance(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    match res.extensions_mut().remove::<Problem>() {
        Some(p) if p.instance.is_none() => p.with_instance(path).into_response(),
        _ => res,
    }
}

/// Fallback for unknown routes.
pub async fn no_route() -> Problem {
    Problem::not_found("no such endpoint")
}

/// Fallback for a known route called with the wrong method.
pub async fn wrong_method() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not accept that HTTP method",
    )
}

/// The problem a datastore failure is answered with.
pub fn datastore_problem(e: datastore::Error) -> Problem {
    match e {
        datastore::Error::NotFound { what } => Problem::not_found(format!("{what} not found")),
        datastore::Error::Conflict { .. } => Problem::conflict(e.to_string()),
        datastore::Error::Invalid { .. } => Problem::bad_request(e.to_string()),
        datastore::Error::Unavailable { .. } => Problem::unavailable(e.to_string()),
        _ => Problem::internal(e.to_string()),
    }
}

/// The problem an XCom store failure is answered with.
pub fn xcom_problem(e: &xcom::Error) -> Problem {
    match e {
        xcom::Error::TooLarge { .. } => Problem::too_large(e.to_string()),
        xcom::Error::Unavailable { .. } => Problem::unavailable(e.to_string()),
        _ => Problem::internal(e.to_string()),
    }
}

/// The problem an engine failure is answered with.
pub fn engine_problem(e: EngineError) -> Problem {
    match e {
        EngineError::NotFound(m) => Problem::not_found(m),
        EngineError::Conflict(m) => Problem::conflict(m),
        EngineError::BadRequest(m) => Problem::bad_request(m),
        EngineError::Datastore(e) => datastore_problem(e),
        EngineError::XCom(e) => xcom_problem(&e),
        other => Problem::internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_renders_every_rfc_7807_member() {
        let p = Problem::forbidden("no").with_instance("/agent/v1/xcom");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "urn:leoflow:problem:forbidden",
                "title": "Forbidden",
                "status": 403,
                "detail": "no",
                "instance": "/agent/v1/xcom",
            })
        );
    }

    #[test]
    fn the_response_carries_the_problem_media_type_and_bearer_challenge() {
        let res = Problem::unauthorized("missing token").into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[CONTENT_TYPE], CONTENT_TYPE_PROBLEM);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer");
    }
}
