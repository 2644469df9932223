//! `MemoryLogs`: each attempt's lines in a vector, with a watch channel per attempt that
//! wakes followers when lines arrive or the log is closed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use futures::stream::BoxStream;
use leoflow_ports::log::{Error, LogChunk, LogLine, LogStore};
use leoflow_ports::run::{AttemptId, RunKey};
use tokio::sync::watch;

/// How many lines a follower copies out per lock; bounds the time the lock is held.
const FOLLOW_BATCH: usize = 1024;

type Logs = Arc<Mutex<HashMap<AttemptId, AttemptLog>>>;

/// An in-memory `LogStore`.
#[derive(Default)]
pub struct MemoryLogs {
    logs: Logs,
}

struct AttemptLog {
    lines: Vec<LogLine>,
    closed: bool,
    /// Pinged on every append and on close. Dropping it (the log was deleted) ends the
    /// attempt's followers.
    changed: watch::Sender<()>,
}

impl AttemptLog {
    fn new() -> AttemptLog {
        AttemptLog {
            lines: Vec::new(),
            closed: false,
            changed: watch::Sender::new(()),
        }
    }
}

impl MemoryLogs {
    pub fn new() -> MemoryLogs {
        MemoryLogs::default()
    }

    fn logs(&self) -> MutexGuard<'_, HashMap<AttemptId, AttemptLog>> {
        lock(&self.logs)
    }
}

fn lock(logs: &Logs) -> MutexGuard<'_, HashMap<AttemptId, AttemptLog>> {
    // Every mutation is a push or a flag, so a poisoned lock holds consistent data.
    logs.lock().unwrap_or_else(PoisonError::into_inner)
}

fn as_index(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// What a follower found when it looked at the log.
enum Look {
    Lines,
    Wait(watch::Receiver<()>),
    End,
}

/// A follower's position and the lines it copied out but has not yielded yet.
struct Follower {
    logs: Logs,
    attempt: AttemptId,
    offset: usize,
    pending: VecDeque<LogLine>,
}

impl Follower {
    /// Copies the next lines out, or says what to wait for. Subscribing while the lock is
    /// held means no append can slip between the look and the wait.
    fn look(&mut self) -> Look {
        let logs = lock(&self.logs);
        let Some(log) = logs.get(&self.attempt) else {
            return Look::End;
        };
        if self.offset < log.lines.len() {
            let end = log.lines.len().min(self.offset + FOLLOW_BATCH);
            self.pending
                .extend(log.lines[self.offset..end].iter().cloned());
            self.offset = end;
            Look::Lines
        } else if log.closed {
            Look::End
        } else {
            Look::Wait(log.changed.subscribe())
        }
    }
}

async fn next_line(mut f: Follower) -> Option<(LogLine, Follower)> {
    loop {
        if let Some(line) = f.pending.pop_front() {
            return Some((line, f));
        }
        match f.look() {
            Look::Lines => {}
            Look::End => return None,
            Look::Wait(mut rx) => {
                if rx.changed().await.is_err() {
                    // The log was deleted while we waited.
                    return None;
                }
            }
        }
    }
}

#[async_trait]
impl LogStore for MemoryLogs {
    async fn append(&self, attempt: &AttemptId, lines: &[LogLine]) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut logs = self.logs();
        let log = logs.entry(attempt.clone()).or_insert_with(AttemptLog::new);
        log.lines.extend_from_slice(lines);
        log.changed.send_replace(());
        Ok(())
    }

    async fn read(
        &self,
        attempt: &AttemptId,
        offset: u64,
        limit: usize,
    ) -> Result<LogChunk, Error> {
        let logs = self.logs();
        let Some(log) = logs.get(attempt) else {
            return Ok(LogChunk {
                lines: Vec::new(),
                next_offset: 0,
                complete: false,
            });
        };
        let start = as_index(offset).min(log.lines.len());
        let end = start.saturating_add(limit).min(log.lines.len());
        Ok(LogChunk {
            lines: log.lines[start..end].to_vec(),
            next_offset: end as u64,
            complete: log.closed && end == log.lines.len(),
        })
    }

    async fn follow(
        &self,
        attempt: &AttemptId,
        offset: u64,
    ) -> Result<BoxStream<'static, LogLine>, Error> {
        // Following an attempt that has not logged yet creates its (empty) log, so the
        // follower has something to wait on.
        self.logs()
            .entry(attempt.clone())
            .or_insert_with(AttemptLog::new);
        let follower = Follower {
            logs: Arc::clone(&self.logs),
            attempt: attempt.clone(),
            offset: as_index(offset),
            pending: VecDeque::new(),
        };
        Ok(Box::pin(futures::stream::unfold(follower, next_line)))
    }

    async fn close(&self, attempt: &AttemptId) -> Result<(), Error> {
        let mut logs = self.logs();
        let log = logs.entry(attempt.clone()).or_insert_with(AttemptLog::new);
        log.closed = true;
        log.changed.send_replace(());
        Ok(())
    }

    async fn delete_for_run(&self, run: &RunKey) -> Result<(), Error> {
        self.logs()
            .retain(|id, _| id.task.dag_id != run.dag_id || id.task.run_id != run.run_id);
        Ok(())
    }
}
