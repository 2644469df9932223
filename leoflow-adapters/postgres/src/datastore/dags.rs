//! `DagStore` on Postgres: the `dags` table and the immutable `dag_versions`, one per
//! distinct spec hash.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::{DagStore, Error, Result};
use leoflow_ports::version::{DagRecord, DagVersion};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

use super::{get, int, uint, PgStore};
use crate::error::datastore as db;

const DAG_COLUMNS: &str =
    "dag_id, is_paused, is_active, latest_version, created_at, last_registered_at";

fn dag_record(row: &PgRow) -> Result<DagRecord> {
    Ok(DagRecord {
        dag_id: get(row, "dag_id")?,
        is_paused: get(row, "is_paused")?,
        is_active: get(row, "is_active")?,
        latest_version: uint(row, "latest_version")?,
        created_at: get(row, "created_at")?,
        last_registered_at: get(row, "last_registered_at")?,
    })
}

const VERSION_COLUMNS: &str = "dag_id, version_number, label, spec_hash, spec, created_at";

fn dag_version(row: &PgRow) -> Result<DagVersion> {
    let Json(spec): Json<DagSpec> = get(row, "spec")?;
    Ok(DagVersion {
        dag_id: get(row, "dag_id")?,
        version_number: uint(row, "version_number")?,
        label: get(row, "label")?,
        spec_hash: get(row, "spec_hash")?,
        spec: Arc::new(spec),
        created_at: get(row, "created_at")?,
    })
}

#[async_trait]
impl DagStore for PgStore {
    async fn register_version(
        &self,
        spec: Arc<DagSpec>,
        spec_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(DagVersion, bool)> {
        let dag_id = spec.dag_id.as_str();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Creating or touching the DAG row locks it: concurrent registrations of one DAG
        // are serialised, so version numbers are dense and a hash is stored once.
        sqlx::query(
            "INSERT INTO dags (dag_id, latest_version, created_at, last_registered_at)
             VALUES ($1, 1, $2, $2)
             ON CONFLICT (dag_id) DO UPDATE
                SET is_active = true, last_registered_at = EXCLUDED.last_registered_at",
        )
        .bind(dag_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;

        let existing = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM dag_versions WHERE dag_id = $1 AND spec_hash = $2"
        ))
        .bind(dag_id)
        .bind(spec_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(row) = existing {
            let version = dag_version(&row)?;
            // Re-registering an older content (a rollback) makes it current again.
            sqlx::query("UPDATE dags SET latest_version = $2 WHERE dag_id = $1")
                .bind(dag_id)
                .bind(int(version.version_number, "version_number")?)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok((version, false));
        }

        let json = serde_json::to_value(&*spec).map_err(|e| Error::Invalid {
            message: format!("DAG `{dag_id}` cannot be stored as JSON: {e}"),
        })?;
        let row = sqlx::query(
            "INSERT INTO dag_versions (dag_id, version_number, label, spec_hash, spec, created_at)
             SELECT $1, COALESCE(max(version_number), 0) + 1, $2, $3, $4, $5
               FROM dag_versions WHERE dag_id = $1
             RETURNING version_number",
        )
        .bind(dag_id)
        .bind(&spec.dag_version)
        .bind(spec_hash)
        .bind(Json(json))
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let version_number: i32 = row.try_get(0).map_err(db)?;
        sqlx::query("UPDATE dags SET latest_version = $2 WHERE dag_id = $1")
            .bind(dag_id)
            .bind(version_number)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((
            DagVersion {
                dag_id: dag_id.to_string(),
                version_number: version_number as u32,
                label: spec.dag_version.clone(),
                spec_hash: spec_hash.to_string(),
                spec,
                created_at: at,
            },
            true,
        ))
    }

    async fn get_dag(&self, dag_id: &str) -> Result<Option<DagRecord>> {
        sqlx::query(&format!("SELECT {DAG_COLUMNS} FROM dags WHERE dag_id = $1"))
            .bind(dag_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(dag_record)
            .transpose()
    }

    async fn list_dags(&self) -> Result<Vec<DagRecord>> {
        sqlx::query(&format!(
            "SELECT {DAG_COLUMNS} FROM dags WHERE is_active ORDER BY dag_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(dag_record)
        .collect()
    }

    async fn get_version(&self, dag_id: &str, version_number: u32) -> Result<Option<DagVersion>> {
        let Ok(version_number) = i32::try_from(version_number) else {
            return Ok(None);
        };
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM dag_versions WHERE dag_id = $1 AND version_number = $2"
        ))
        .bind(dag_id)
        .bind(version_number)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(dag_version)
        .transpose()
    }

    async fn list_versions(&self, dag_id: &str) -> Result<Vec<DagVersion>> {
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM dag_versions WHERE dag_id = $1
             ORDER BY version_number DESC"
        ))
        .bind(dag_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(dag_version)
        .collect()
    }

    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<DagRecord> {
        let row = sqlx::query(&format!(
            "UPDATE dags SET is_paused = $2 WHERE dag_id = $1 RETURNING {DAG_COLUMNS}"
        ))
        .bind(dag_id)
        .bind(paused)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(row) => dag_record(&row),
            None => Err(Error::not_found(format!("DAG `{dag_id}`"))),
        }
    }

    async fn clear_history(&self, dag_id: &str) -> Result<()> {
        // Task instances and archived tries go with their runs (ON DELETE CASCADE).
        let row = sqlx::query(
            "WITH gone AS (DELETE FROM dag_runs WHERE dag_id = $1 RETURNING 1)
             SELECT (SELECT count(*) FROM gone) AS deleted,
                    EXISTS (SELECT 1 FROM dags WHERE dag_id = $1) AS known",
        )
        .bind(dag_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let deleted: i64 = get(&row, "deleted")?;
        let known: bool = get(&row, "known")?;
        if deleted == 0 && !known {
            return Err(Error::not_found(format!("DAG `{dag_id}`")));
        }
        Ok(())
    }

    async fn deactivate(&self, dag_id: &str) -> Result<()> {
        let done = sqlx::query("UPDATE dags SET is_active = false WHERE dag_id = $1")
            .bind(dag_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("DAG `{dag_id}`")));
        }
        Ok(())
    }
}
