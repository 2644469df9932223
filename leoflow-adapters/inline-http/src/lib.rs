//! The inline HTTP executor: `http_api` tasks whose execution mode is `inline` are plain
//! HTTP calls, so the control plane makes them itself (reqwest) instead of starting a
//! process or pod: bounded concurrency, a hard cap on each call's duration
//! (`LEOFLOW_INLINE_HTTP_MAX_DURATION`, default 300 s, also enforced at validation), the
//! task's success status codes, a response body of at most 1 MiB as the return value, and
//! one summary line per call in the attempt's log.

mod config;
mod executor;

pub use config::{ConfigError, InlineHttpConfig};
pub use executor::InlineHttpExecutor;
