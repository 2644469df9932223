//! Request bodies read with a size limit: a body past its limit is answered 413 (after
//! draining a bounded amount, so the client reads the answer), malformed JSON 400.

use axum::body::Body;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// Bodies past their limit are still read (and dropped) up to this size, so the client
/// finishes sending and reads the 413 instead of a reset connection.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// The body's bytes, at most `limit`; `what` names the limit in the 413.
pub async fn read_body(body: Body, limit: usize, what: &str) -> Result<Vec<u8>, Problem> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Problem::bad_request(format!("could not read the request body: {e}")))?;
        total = total.saturating_add(chunk.len());
        if total <= limit {
            bytes.extend_from_slice(&chunk);
        } else if total > DRAIN_BYTES {
            break;
        }
    }
    if total > limit {
        return Err(Problem::too_large(format!(
            "the request body is larger than the {limit}-byte limit for {what}"
        )));
    }
    Ok(bytes)
}

/// Reads a JSON body of at most `limit` bytes.
pub async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    what: &str,
) -> Result<T, Problem> {
    let bytes = read_body(body, limit, what).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
}

/// Like [`read_json`], for bodies that may be empty.
pub async fn read_optional_json<T: DeserializeOwned + Default>(
    body: Body,
    limit: usize,
    what: &str,
) -> Result<T, Problem> {
    let bytes = read_body(body, limit, what).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
}
