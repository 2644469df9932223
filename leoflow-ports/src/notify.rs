//! The `Notifier` port: "something changed" signals that wake the scheduler (and any
//! replica) immediately instead of waiting for a poll.
//!
//! Contract, for every implementation:
//! - A change published after `subscribe` returned is delivered to that subscription,
//!   unless the subscriber falls behind or the connection drops; then it receives
//!   [`Change::Resync`] and must re-read the datastore.
//! - Publishing never blocks on slow subscribers.

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::run::{RunKey, TaskKey};

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    RunCreated {
        run: RunKey,
    },
    /// A run's or one of its task instances' state changed outside the scheduler.
    RunChanged {
        run: RunKey,
    },
    TaskFinished {
        task: TaskKey,
    },
    DagVersionRegistered {
        dag_id: String,
        version_number: u32,
    },
    DagChanged {
        dag_id: String,
    },
    /// Changes may have been missed; re-read everything.
    Resync,
}

/// Notifier failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("notifier unavailable: {message}")]
    Unavailable { message: String, retryable: bool },
}

/// Publishes and delivers changes.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, change: Change) -> Result<(), Error>;
    async fn subscribe(&self) -> Result<BoxStream<'static, Change>, Error>;
}
