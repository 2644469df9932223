//! The `XComStore` port: small JSON values tasks pass to their downstream tasks.
//!
//! Contract, for every implementation:
//! - A value larger than `max_value_bytes()` (its compact JSON length) MUST be refused with
//!   [`Error::TooLarge`] and nothing stored.
//! - `put` of an existing (task, key) replaces the value.
//! - Values expire after the store's TTL; expired values are never returned.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::run::{RunKey, TaskKey};

/// The default cap on one value: 256 KiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 256 * 1024;

/// One stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct XComEntry {
    pub task: TaskKey,
    pub key: String,
    pub value: Value,
    pub size_bytes: usize,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// XCom failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("XCom value of {size} bytes exceeds the {limit}-byte limit; return a smaller value or write large data to storage and return its path")]
    TooLarge { size: usize, limit: usize },
    #[error("XCom store unavailable: {message}")]
    Unavailable { message: String, retryable: bool },
}

/// Stores XComs.
#[async_trait]
pub trait XComStore: Send + Sync {
    fn max_value_bytes(&self) -> usize;
    async fn put(&self, task: &TaskKey, key: &str, value: &Value) -> Result<(), Error>;
    async fn get(&self, task: &TaskKey, key: &str) -> Result<Option<XComEntry>, Error>;
    /// The run's values, optionally for one task, ordered by (task_id, map_index, key).
    async fn list(&self, run: &RunKey, task_id: Option<&str>) -> Result<Vec<XComEntry>, Error>;
    /// Deletes every value of one task instance (on retry and clear).
    async fn delete_for_task(&self, task: &TaskKey) -> Result<(), Error>;
    async fn delete_for_run(&self, run: &RunKey) -> Result<(), Error>;
    /// Deletes expired values; returns how many.
    async fn purge_expired(&self) -> Result<u64, Error>;
}

/// The compact JSON length of a value, which is what the size cap applies to.
pub fn json_size(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}
