//! The `LogStore` port: the lines each attempt prints, readable while it runs and after.
//!
//! Contract, for every implementation:
//! - Lines of one attempt are read back in append order; offsets are line indexes.
//! - `follow` yields lines appended after it started too, and ends once the attempt's
//!   log is closed and every line was delivered.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::run::{AttemptId, RunKey};

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines written by the agent or executor about the attempt (start, exit, cause).
    System,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub stream: LogStream,
    pub message: String,
}

/// A page of lines and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LogChunk {
    pub lines: Vec<LogLine>,
    pub next_offset: u64,
    /// The attempt's log is closed and `next_offset` is its end.
    pub complete: bool,
}

/// Log failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("log store unavailable: {message}")]
    Unavailable { message: String, retryable: bool },
}

/// Stores attempt logs.
#[async_trait]
pub trait LogStore: Send + Sync {
    async fn append(&self, attempt: &AttemptId, lines: &[LogLine]) -> Result<(), Error>;
    /// Up to `limit` lines from `offset`. An attempt with no log reads as empty.
    async fn read(&self, attempt: &AttemptId, offset: u64, limit: usize)
        -> Result<LogChunk, Error>;
    /// Every line from `offset`, then new ones as they arrive, until the log is closed.
    async fn follow(
        &self,
        attempt: &AttemptId,
        offset: u64,
    ) -> Result<BoxStream<'static, LogLine>, Error>;
    /// Marks the attempt's log complete; followers finish.
    async fn close(&self, attempt: &AttemptId) -> Result<(), Error>;
    async fn delete_for_run(&self, run: &RunKey) -> Result<(), Error>;
}
