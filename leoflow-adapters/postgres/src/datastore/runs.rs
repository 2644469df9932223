//! `RunStore` on Postgres: `dag_runs`, created together with all their task instances in
//! one statement, and updated by compare-and-set on the run state.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leoflow_ports::datastore::{Error, Fence, Result, RunFilter, RunStore};
use leoflow_ports::run::{DagRun, RunKey, TaskInstance};
use leoflow_ports::state::RunState;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::Postgres;

use super::{
    check_fence, count, dag_run, fence_param, get, int, limit, offset, run_state_list,
    to_json_text, FencedSql, PgStore, TiArrays, RUN_COLUMNS, RUN_SELECT, TI_ARRAY_PARAMS,
    TI_COLUMNS,
};
use crate::error::datastore as db;

/// Parameters [`bind_run`] adds, in [`RUN_COLUMNS`] order.
const RUN_PARAMS: usize = 15;

fn bind_run<'q>(
    q: Query<'q, Postgres, PgArguments>,
    run: &'q DagRun,
) -> Result<Query<'q, Postgres, PgArguments>> {
    Ok(q.bind(&run.dag_id)
        .bind(&run.run_id)
        .bind(run.run_type.as_str())
        .bind(run.logical_date)
        .bind(run.data_interval_start)
        .bind(run.data_interval_end)
        .bind(run.run_after)
        .bind(to_json_text(&run.conf))
        .bind(&run.note)
        .bind(run.state.as_str())
        .bind(int(run.version_number, "version_number")?)
        .bind(run.queued_at)
        .bind(run.started_at)
        .bind(run.ended_at)
        .bind(&run.triggered_by))
}

/// `$first, …` for the run columns; `conf` (the 8th) arrives as text and becomes `json`.
fn run_params(first: usize) -> String {
    (first..first + RUN_PARAMS)
        .map(|i| {
            if i == first + 7 {
                format!("${i}::json")
            } else {
                format!("${i}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run and its task instances in one statement: atomic without a transaction, one
/// round trip whatever the number of task instances.
static CREATE_RUN: LazyLock<FencedSql> = LazyLock::new(|| {
    let run_first = TI_ARRAY_PARAMS + 1;
    let fence = run_first + RUN_PARAMS;
    FencedSql::new(
        &format!(
            "WITH /*FENCE_CTE*/
             run AS (
                INSERT INTO dag_runs ({RUN_COLUMNS})
                SELECT {run_values} WHERE /*FENCE_OK*/
                ON CONFLICT (dag_id, run_id) DO NOTHING
                RETURNING 1
             ),
             tis AS (
                INSERT INTO task_instances ({TI_COLUMNS})
                SELECT * FROM {unnest} WHERE EXISTS (SELECT 1 FROM run)
             )
             SELECT /*FENCE_TOKEN*/ AS fence_token, (SELECT count(*) FROM run) AS created",
            run_values = run_params(run_first),
            unnest = TiArrays::unnest(1),
        ),
        fence,
    )
});

static UPDATE_RUN: LazyLock<FencedSql> = LazyLock::new(|| {
    FencedSql::new(
        "WITH /*FENCE_CTE*/
         w AS (
            UPDATE dag_runs SET run_type = $3, logical_date = $4, data_interval_start = $5,
                data_interval_end = $6, run_after = $7, conf = $8::json, note = $9, state = $10,
                version_number = $11, queued_at = $12, started_at = $13, ended_at = $14,
                triggered_by = $15
            WHERE dag_id = $1 AND run_id = $2 AND state = $16 AND /*FENCE_OK*/
            RETURNING 1
         )
         SELECT /*FENCE_TOKEN*/ AS fence_token, (SELECT count(*) FROM w) AS written",
        17,
    )
});

/// Refuses task instances that belong to another run.
pub(crate) fn check_owned(run: &RunKey, tasks: &[TaskInstance]) -> Result<()> {
    match tasks
        .iter()
        .find(|t| t.key.dag_id != run.dag_id || t.key.run_id != run.run_id)
    {
        Some(t) => Err(Error::Invalid {
            message: format!("task instance {} does not belong to run {run}", t.key),
        }),
        None => Ok(()),
    }
}

pub(crate) static ACTIVE_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RUN_SELECT} FROM dag_runs WHERE state IN ('queued', 'running')
         ORDER BY run_after, dag_id, run_id"
    )
});

/// The `SELECT` and `count(*)` of a run listing and whether `$1` is the DAG; the
/// `SELECT` takes `LIMIT` and `OFFSET` as its last two parameters.
pub(crate) fn list_sql(filter: &RunFilter) -> (String, String, bool) {
    let mut clauses = Vec::new();
    if filter.dag_id.is_some() {
        clauses.push("dag_id = $1".to_string());
    }
    if !filter.states.is_empty() {
        clauses.push(format!("state IN ({})", run_state_list(&filter.states)));
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let first = if filter.dag_id.is_some() { 2 } else { 1 };
    let list = format!(
        "SELECT {RUN_SELECT} FROM dag_runs {where_sql}
         ORDER BY run_after DESC, run_id DESC, dag_id DESC
         LIMIT ${first} OFFSET ${}",
        first + 1
    );
    let total = format!("SELECT count(*) FROM dag_runs {where_sql}");
    (list, total, filter.dag_id.is_some())
}

#[async_trait]
impl RunStore for PgStore {
    async fn create_run(&self, run: &DagRun, tasks: &[TaskInstance], fence: Fence) -> Result<()> {
        let key = run.key();
        check_owned(&key, tasks)?;
        let q = sqlx::query(CREATE_RUN.sql(fence));
        let q = TiArrays::new(tasks)?.bind(q);
        let q = bind_run(q, run)?.bind(fence_param(fence)?);
        let row = q.fetch_one(&self.pool).await.map_err(|e| match db(e) {
            Error::Conflict { .. } => Error::Invalid {
                message: format!("run {key} lists the same task instance twice"),
            },
            other => other,
        })?;
        check_fence(fence, get(&row, "fence_token")?)?;
        let created: i64 = get(&row, "created")?;
        if created == 0 {
            return Err(Error::conflict(format!("run {key}")));
        }
        Ok(())
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<DagRun>> {
        sqlx::query(&format!(
            "SELECT {RUN_SELECT} FROM dag_runs WHERE dag_id = $1 AND run_id = $2"
        ))
        .bind(&key.dag_id)
        .bind(&key.run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(dag_run)
        .transpose()
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<(Vec<DagRun>, usize)> {
        let (list_sql, count_sql, _) = list_sql(filter);
        let mut list = sqlx::query(&list_sql);
        let mut total = sqlx::query_scalar::<_, i64>(&count_sql);
        if let Some(dag_id) = &filter.dag_id {
            list = list.bind(dag_id);
            total = total.bind(dag_id);
        }
        let rows = list
            .bind(limit(filter.limit))
            .bind(offset(filter.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let total = total.fetch_one(&self.pool).await.map_err(db)?;
        let runs = rows.iter().map(dag_run).collect::<Result<_>>()?;
        Ok((runs, count(total)))
    }

    async fn active_runs(&self) -> Result<Vec<DagRun>> {
        sqlx::query(&ACTIVE_RUNS)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(dag_run)
            .collect()
    }

    async fn last_scheduled_logical_date(&self, dag_id: &str) -> Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar(
            "SELECT max(logical_date) FROM dag_runs WHERE dag_id = $1 AND run_type = 'scheduled'",
        )
        .bind(dag_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn update_run(&self, expected: RunState, new: &DagRun, fence: Fence) -> Result<bool> {
        let q = bind_run(sqlx::query(UPDATE_RUN.sql(fence)), new)?
            .bind(expected.as_str())
            .bind(fence_param(fence)?);
        let row = q.fetch_one(&self.pool).await.map_err(db)?;
        check_fence(fence, get(&row, "fence_token")?)?;
        let written: i64 = get(&row, "written")?;
        Ok(written > 0)
    }

    async fn delete_run(&self, key: &RunKey) -> Result<()> {
        // Task instances and archived tries go with the run (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM dag_runs WHERE dag_id = $1 AND run_id = $2")
            .bind(&key.dag_id)
            .bind(&key.run_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("run {key}")));
        }
        Ok(())
    }
}
