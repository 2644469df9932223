//! `PgXCom`: the `XComStore` port on the `xcoms` table. Values are stored as their
//! compact JSON text (the size the cap applies to), expire after a TTL, and expired rows
//! are never returned even before `purge_expired` deletes them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leoflow_ports::clock::Clock;
use leoflow_ports::run::{RunKey, TaskKey};
use leoflow_ports::xcom::{Error, XComEntry, XComStore};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::clock::SystemClock;
use crate::error::xcom as db;

/// The Postgres `XComStore`. Cheap to clone.
#[derive(Clone)]
pub struct PgXCom {
    pool: PgPool,
    max_value_bytes: usize,
    ttl: chrono::Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PgXCom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgXCom")
            .field("max_value_bytes", &self.max_value_bytes)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PgXCom {
    pub fn new(pool: PgPool, max_value_bytes: usize, ttl: Duration) -> PgXCom {
        PgXCom {
            pool,
            max_value_bytes,
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            clock: Arc::new(SystemClock::default()),
        }
    }

    /// Uses `clock` for creation and expiry times (tests drive TTLs by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> PgXCom {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

fn entry(row: &PgRow) -> Result<XComEntry, Error> {
    let text: String = row.try_get("value").map_err(db)?;
    let value = serde_json::from_str(&text).map_err(|e| Error::Unavailable {
        message: format!("stored XCom value is not JSON ({e})"),
        retryable: false,
    })?;
    let size: i32 = row.try_get("size_bytes").map_err(db)?;
    Ok(XComEntry {
        task: TaskKey {
            dag_id: row.try_get("dag_id").map_err(db)?,
            run_id: row.try_get("run_id").map_err(db)?,
            task_id: row.try_get("task_id").map_err(db)?,
            map_index: row.try_get("map_index").map_err(db)?,
        },
        key: row.try_get("key").map_err(db)?,
        value,
        size_bytes: usize::try_from(size).unwrap_or(0),
        created_at: row.try_get("created_at").map_err(db)?,
        expires_at: row.try_get("expires_at").map_err(db)?,
    })
}

const COLUMNS: &str =
    "dag_id, run_id, task_id, map_index, key, value::text AS value, size_bytes, created_at, expires_at";

#[async_trait]
impl XComStore for PgXCom {
    fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    async fn put(&self, task: &TaskKey, key: &str, value: &serde_json::Value) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(|e| Error::Unavailable {
            message: format!("XCom value cannot be serialised to JSON: {e}"),
            retryable: false,
        })?;
        if text.len() > self.max_value_bytes {
            return Err(Error::TooLarge {
                size: text.len(),
                limit: self.max_value_bytes,
            });
        }
        let now = self.now();
        let expires_at = now
            .checked_add_signed(self.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        sqlx::query(
            "INSERT INTO xcoms (dag_id, run_id, task_id, map_index, key, value, size_bytes,
                                created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6::json, $7, $8, $9)
             ON CONFLICT (dag_id, run_id, task_id, map_index, key) DO UPDATE
                SET value = EXCLUDED.value, size_bytes = EXCLUDED.size_bytes,
                    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
        )
        .bind(&task.dag_id)
        .bind(&task.run_id)
        .bind(&task.task_id)
        .bind(task.map_index)
        .bind(key)
        .bind(&text)
        .bind(i32::try_from(text.len()).unwrap_or(i32::MAX))
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get(&self, task: &TaskKey, key: &str) -> Result<Option<XComEntry>, Error> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM xcoms
             WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4 AND key = $5
               AND expires_at > $6"
        ))
        .bind(&task.dag_id)
        .bind(&task.run_id)
        .bind(&task.task_id)
        .bind(task.map_index)
        .bind(key)
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(entry)
        .transpose()
    }

    async fn list(&self, run: &RunKey, task_id: Option<&str>) -> Result<Vec<XComEntry>, Error> {
        let task_clause = if task_id.is_some() {
            "AND task_id = $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM xcoms
             WHERE dag_id = $1 AND run_id = $2 AND expires_at > $3 {task_clause}
             ORDER BY task_id, map_index, key"
        );
        let mut q = sqlx::query(&sql)
            .bind(&run.dag_id)
            .bind(&run.run_id)
            .bind(self.now());
        if let Some(task_id) = task_id {
            q = q.bind(task_id);
        }
        q.fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(entry)
            .collect()
    }

    async fn delete_for_task(&self, task: &TaskKey) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM xcoms
             WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4",
        )
        .bind(&task.dag_id)
        .bind(&task.run_id)
        .bind(&task.task_id)
        .bind(task.map_index)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete_for_run(&self, run: &RunKey) -> Result<(), Error> {
        sqlx::query("DELETE FROM xcoms WHERE dag_id = $1 AND run_id = $2")
            .bind(&run.dag_id)
            .bind(&run.run_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn purge_expired(&self) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM xcoms WHERE expires_at <= $1")
            .bind(self.now())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}
