//! `PgLogs`: the `LogStore` port on Postgres. Each append becomes one or more chunk rows
//! (a JSON array of lines) at consecutive line offsets; `follow` re-reads when a NOTIFY
//! says the attempt grew, with a poll as the fallback for missed notifications.

use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use leoflow_ports::log::{Error, LogChunk, LogLine, LogStore};
use leoflow_ports::run::{AttemptId, RunKey};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use tokio::sync::{broadcast, mpsc};

use crate::error::log as db;
use crate::listen::{ListenHub, Signal, LOGS_CHANNEL};

/// At most this many lines per chunk row, so reading from an offset inside a huge append
/// decodes a bounded amount of JSON.
const CHUNK_LINES: usize = 1000;
/// Lines a follower reads per query.
const FOLLOW_PAGE: usize = 1000;

/// The Postgres `LogStore`. Cheap to clone.
#[derive(Clone)]
pub struct PgLogs {
    pool: PgPool,
    hub: ListenHub,
    poll_interval: Duration,
}

impl std::fmt::Debug for PgLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLogs")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// The NOTIFY payload naming an attempt: short and fixed-size whatever the ids' length.
fn attempt_tag(attempt: &AttemptId) -> String {
    let mut h = Sha256::new();
    for part in [
        attempt.task.dag_id.as_str(),
        attempt.task.run_id.as_str(),
        attempt.task.task_id.as_str(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(attempt.task.map_index.to_be_bytes());
    h.update(attempt.try_number.to_be_bytes());
    let digest = h.finalize();
    digest[..12]
        .iter()
        .fold(String::with_capacity(24), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn try_param(attempt: &AttemptId) -> i32 {
    // Try numbers beyond i32 cannot exist in the task tables; such an attempt has no log.
    i32::try_from(attempt.try_number).unwrap_or(-1)
}

impl PgLogs {
    pub(crate) fn new(pool: PgPool, hub: ListenHub, poll_interval: Duration) -> PgLogs {
        PgLogs {
            pool,
            hub,
            poll_interval,
        }
    }
}

#[async_trait]
impl LogStore for PgLogs {
    async fn append(&self, attempt: &AttemptId, lines: &[LogLine]) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut rel = Vec::new();
        let mut counts = Vec::new();
        let mut chunks = Vec::new();
        for (i, chunk) in lines.chunks(CHUNK_LINES).enumerate() {
            rel.push((i * CHUNK_LINES) as i64);
            counts.push(chunk.len() as i32);
            chunks.push(
                serde_json::to_string(chunk).map_err(|e| Error::Unavailable {
                    message: format!("log lines cannot be serialised: {e}"),
                    retryable: false,
                })?,
            );
        }
        let t = &attempt.task;
        // The head row's lock orders concurrent appends to one attempt; the NOTIFY is
        // delivered at commit, once the lines are visible.
        sqlx::query(
            "WITH head AS (
                INSERT INTO task_logs (dag_id, run_id, task_id, map_index, try_number, line_count)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO UPDATE
                   SET line_count = task_logs.line_count + EXCLUDED.line_count
                RETURNING line_count - $6 AS base
             ),
             ins AS (
                INSERT INTO task_log_chunks (dag_id, run_id, task_id, map_index, try_number,
                                             first_line, line_count, lines)
                SELECT $1, $2, $3, $4, $5, head.base + c.rel, c.n, c.lines::json
                  FROM head, unnest($7::int8[], $8::int4[], $9::text[]) AS c(rel, n, lines)
             )
             SELECT pg_notify($10, $11)",
        )
        .bind(&t.dag_id)
        .bind(&t.run_id)
        .bind(&t.task_id)
        .bind(t.map_index)
        .bind(try_param(attempt))
        .bind(lines.len() as i64)
        .bind(rel)
        .bind(counts)
        .bind(chunks)
        .bind(LOGS_CHANNEL)
        .bind(attempt_tag(attempt))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn read(
        &self,
        attempt: &AttemptId,
        offset: u64,
        limit: usize,
    ) -> Result<LogChunk, Error> {
        let t = &attempt.task;
        let start = i64::try_from(offset).unwrap_or(i64::MAX);
        let end = start.saturating_add(i64::try_from(limit).unwrap_or(i64::MAX));
        // Chunks first, then the head: a line appended in between makes the head longer
        // than what we read, so `complete` can never be reported too early.
        let rows = sqlx::query(
            "SELECT first_line, lines::text AS lines FROM task_log_chunks
             WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4
               AND try_number = $5 AND first_line < $7
               AND first_line >= COALESCE((
                   SELECT max(first_line) FROM task_log_chunks
                   WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4
                     AND try_number = $5 AND first_line <= $6), 0)
             ORDER BY first_line",
        )
        .bind(&t.dag_id)
        .bind(&t.run_id)
        .bind(&t.task_id)
        .bind(t.map_index)
        .bind(try_param(attempt))
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let head = sqlx::query(
            "SELECT line_count, closed_at IS NOT NULL AS closed FROM task_logs
             WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4
               AND try_number = $5",
        )
        .bind(&t.dag_id)
        .bind(&t.run_id)
        .bind(&t.task_id)
        .bind(t.map_index)
        .bind(try_param(attempt))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;

        let mut lines = Vec::new();
        let mut next = start;
        for row in rows {
            let first: i64 = row.try_get("first_line").map_err(db)?;
            let text: String = row.try_get("lines").map_err(db)?;
            let chunk: Vec<LogLine> =
                serde_json::from_str(&text).map_err(|e| Error::Unavailable {
                    message: format!("stored log chunk is not readable ({e})"),
                    retryable: false,
                })?;
            for (i, line) in chunk.into_iter().enumerate() {
                let at = first + i as i64;
                if at >= next && at < end {
                    lines.push(line);
                    next = at + 1;
                }
            }
        }
        let (total, closed) = match head {
            Some(row) => (
                row.try_get::<i64, _>("line_count").map_err(db)?,
                row.try_get::<bool, _>("closed").map_err(db)?,
            ),
            None => (0, false),
        };
        let next_offset = next;
        Ok(LogChunk {
            lines,
            next_offset: u64::try_from(next_offset).unwrap_or(offset),
            complete: closed && next_offset >= total,
        })
    }

    async fn follow(
        &self,
        attempt: &AttemptId,
        offset: u64,
    ) -> Result<BoxStream<'static, LogLine>, Error> {
        // Subscribe before the first read so nothing appended in between is missed. If
        // the LISTEN connection cannot be had, the follower still works by polling.
        let wake = match self.hub.subscribe(LOGS_CHANNEL).await {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::warn!(error = %e, "log follow without NOTIFY; polling");
                None
            }
        };
        let first = self.read(attempt, offset, FOLLOW_PAGE).await?;
        let (tx, rx) = mpsc::channel::<LogLine>(FOLLOW_PAGE);
        let logs = self.clone();
        let attempt = attempt.clone();
        tokio::spawn(async move {
            logs.feed(attempt, first, wake, tx).await;
        });
        Ok(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|line| (line, rx))
        })
        .boxed())
    }

    async fn close(&self, attempt: &AttemptId) -> Result<(), Error> {
        let t = &attempt.task;
        sqlx::query(
            "WITH head AS (
                INSERT INTO task_logs (dag_id, run_id, task_id, map_index, try_number, closed_at)
                VALUES ($1, $2, $3, $4, $5, now())
                ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO UPDATE
                   SET closed_at = COALESCE(task_logs.closed_at, now())
             )
             SELECT pg_notify($6, $7)",
        )
        .bind(&t.dag_id)
        .bind(&t.run_id)
        .bind(&t.task_id)
        .bind(t.map_index)
        .bind(try_param(attempt))
        .bind(LOGS_CHANNEL)
        .bind(attempt_tag(attempt))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete_for_run(&self, run: &RunKey) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for table in ["task_log_chunks", "task_logs"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE dag_id = $1 AND run_id = $2"
            ))
            .bind(&run.dag_id)
            .bind(&run.run_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

impl PgLogs {
    /// Pushes lines to a follower until the log is closed and drained, or the follower
    /// goes away.
    async fn feed(
        &self,
        attempt: AttemptId,
        first: LogChunk,
        mut wake: Option<broadcast::Receiver<Signal>>,
        tx: mpsc::Sender<LogLine>,
    ) {
        let tag = attempt_tag(&attempt);
        let mut chunk = first;
        loop {
            let got_lines = !chunk.lines.is_empty();
            for line in chunk.lines.drain(..) {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            if chunk.complete {
                return;
            }
            if !got_lines {
                // Nothing new: wait for a NOTIFY about this attempt, a reconnect (which
                // may have hidden one), or the poll interval, whichever comes first.
                tokio::select! {
                    () = tx.closed() => return,
                    () = wait_for(&mut wake, &tag, self.poll_interval) => {}
                }
            }
            let offset = chunk.next_offset;
            // A failed read (server restarting, pool exhausted) is retried soon, not after a
            // whole poll interval: the lines are there, only the read failed.
            let mut backoff = Duration::from_millis(50);
            chunk = loop {
                match self.read(&attempt, offset, FOLLOW_PAGE).await {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::debug!(error = %e, ?backoff, "log follow read failed; retrying");
                        tokio::select! {
                            () = tx.closed() => return,
                            () = wait_for(&mut wake, &tag, backoff) => {}
                        }
                        backoff = (backoff * 2).min(self.poll_interval);
                    }
                }
            };
        }
    }
}

async fn wait_for(wake: &mut Option<broadcast::Receiver<Signal>>, tag: &str, poll: Duration) {
    let Some(rx) = wake else {
        tokio::time::sleep(poll).await;
        return;
    };
    let signal = async {
        loop {
            match rx.recv().await {
                Ok(Signal::Payload(p)) if &*p == tag => return,
                Ok(Signal::Payload(_)) => {}
                Ok(Signal::Reconnected) | Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    // The hub is gone; fall back to the poll alone.
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    let _ = tokio::time::timeout(poll, signal).await;
}

#[cfg(test)]
mod tests {
    use leoflow_ports::run::TaskKey;

    use super::*;

    #[test]
    fn attempt_tags_are_short_and_distinct() {
        let a = AttemptId {
            task: TaskKey::new(&RunKey::new("d", "r"), "t", -1),
            try_number: 1,
        };
        let mut b = a.clone();
        b.try_number = 2;
        assert_eq!(attempt_tag(&a).len(), 24);
        assert_ne!(attempt_tag(&a), attempt_tag(&b));
        assert_eq!(attempt_tag(&a), attempt_tag(&a.clone()));
    }
}
