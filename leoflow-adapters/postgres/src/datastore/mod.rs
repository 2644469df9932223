//! `PgStore`, the Postgres `Datastore`: the pieces its capability files (`dags`, `runs`,
//! `tasks`, `meta`) share — fencing, row decoding and the column arrays that batch many
//! task instances into one statement.

mod dags;
mod meta;
pub(crate) mod runs;
pub(crate) mod tasks;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use leoflow_ports::datastore::{Error, Fence, Result};
use leoflow_ports::run::{DagRun, RunType, TaskInstance, TaskKey};
use leoflow_ports::state::{RunState, TaskState};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};

use crate::error::{corrupt, out_of_range};

/// The Postgres `Datastore` (DAGs, versions, runs, task instances, metadata). Cheap to
/// clone: it is a handle on a connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// A store on an already migrated database (see `PostgresConfig::build`).
    pub fn new(pool: PgPool) -> PgStore {
        PgStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A statement in its leader-only (fenced) and any-replica (unfenced) variants.
///
/// The template marks where the fence goes: `/*FENCE_CTE*/` right after `WITH` (it becomes a
/// CTE locking the fence row `FOR SHARE`, so `raise_fence` waits for in-flight fenced writes),
/// `/*FENCE_OK*/` inside the write's `WHERE`, and `/*FENCE_TOKEN*/` in the final `SELECT`,
/// which reports the current token so a refused write can say why.
pub(crate) struct FencedSql {
    fenced: String,
    unfenced: String,
}

impl FencedSql {
    /// `token_param` is the number of the `$n` parameter that carries the token.
    pub(crate) fn new(template: &str, token_param: usize) -> FencedSql {
        let fenced = template
            .replace(
                "/*FENCE_CTE*/",
                "fence_row AS MATERIALIZED (SELECT token FROM fence FOR SHARE),",
            )
            .replace(
                "/*FENCE_OK*/",
                &format!("${token_param}::bigint >= (SELECT token FROM fence_row)"),
            )
            .replace("/*FENCE_TOKEN*/", "(SELECT token FROM fence_row)");
        let unfenced = template
            .replace("/*FENCE_CTE*/", "")
            .replace("/*FENCE_OK*/", &format!("${token_param}::bigint IS NULL"))
            .replace("/*FENCE_TOKEN*/", "NULL::bigint");
        FencedSql { fenced, unfenced }
    }

    pub(crate) fn sql(&self, fence: Fence) -> &str {
        if fence.is_some() {
            &self.fenced
        } else {
            &self.unfenced
        }
    }
}

/// The token parameter of a fenced statement.
pub(crate) fn fence_param(fence: Fence) -> Result<Option<i64>> {
    fence
        .map(|t| i64::try_from(t.0).map_err(|_| out_of_range("fencing token", t.0)))
        .transpose()
}

/// Turns the token a fenced statement reported into [`Error::Fenced`] when ours is older.
pub(crate) fn check_fence(fence: Fence, current: Option<i64>) -> Result<()> {
    match (fence, current) {
        (Some(token), Some(current)) if i128::from(token.0) < i128::from(current) => {
            Err(Error::Fenced {
                token: token.0,
                current: current as u64,
            })
        }
        _ => Ok(()),
    }
}

pub(crate) fn int(value: u32, what: &str) -> Result<i32> {
    i32::try_from(value).map_err(|_| out_of_range(what, value))
}

fn uint(row: &PgRow, column: &str) -> Result<u32> {
    let v: i32 = row.try_get(column).map_err(crate::error::datastore)?;
    u32::try_from(v).map_err(|_| corrupt(format!("negative {column} {v}")))
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(crate::error::datastore)
}

fn parse<T: FromStr>(row: &PgRow, column: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = get(row, column)?;
    text.parse().map_err(|e| corrupt(format!("{column}: {e}")))
}

/// The columns [`task_instance`] reads, in table order.
pub(crate) const TI_COLUMNS: &str = "dag_id, run_id, task_id, map_index, state, try_number, \
    max_tries, operator, scheduled_at, queued_at, started_at, ended_at, next_retry_at, \
    last_heartbeat_at, executor_ref, hostname, exit_code, error_message, note";

pub(crate) fn task_instance(row: &PgRow) -> Result<TaskInstance> {
    Ok(TaskInstance {
        key: TaskKey {
            dag_id: get(row, "dag_id")?,
            run_id: get(row, "run_id")?,
            task_id: get(row, "task_id")?,
            map_index: get(row, "map_index")?,
        },
        state: parse::<TaskState>(row, "state")?,
        try_number: uint(row, "try_number")?,
        max_tries: uint(row, "max_tries")?,
        operator: get(row, "operator")?,
        scheduled_at: get(row, "scheduled_at")?,
        queued_at: get(row, "queued_at")?,
        started_at: get(row, "started_at")?,
        ended_at: get(row, "ended_at")?,
        next_retry_at: get(row, "next_retry_at")?,
        last_heartbeat_at: get(row, "last_heartbeat_at")?,
        executor_ref: get(row, "executor_ref")?,
        hostname: get(row, "hostname")?,
        exit_code: get(row, "exit_code")?,
        error_message: get(row, "error_message")?,
        note: get(row, "note")?,
    })
}

/// The columns of `dag_runs`, in the order [`dag_run`] and the writers use.
pub(crate) const RUN_COLUMNS: &str = "dag_id, run_id, run_type, logical_date, \
    data_interval_start, data_interval_end, run_after, conf, note, state, version_number, \
    queued_at, started_at, ended_at, triggered_by";

/// What [`dag_run`] reads (`conf` as its exact JSON text).
pub(crate) const RUN_SELECT: &str = "dag_id, run_id, run_type, logical_date, \
    data_interval_start, data_interval_end, run_after, conf::text AS conf, note, state, \
    version_number, queued_at, started_at, ended_at, triggered_by";

/// Parses a `json` column read as text.
pub(crate) fn json_text(row: &PgRow, column: &str) -> Result<serde_json::Value> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("{column} is not JSON: {e}")))
}

/// A JSON value as the text a `json` column stores.
pub(crate) fn to_json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

pub(crate) fn dag_run(row: &PgRow) -> Result<DagRun> {
    let run_type: String = get(row, "run_type")?;
    let run_type = match run_type.as_str() {
        "scheduled" => RunType::Scheduled,
        "manual" => RunType::Manual,
        "backfill" => RunType::Backfill,
        other => return Err(corrupt(format!("unknown run_type `{other}`"))),
    };
    Ok(DagRun {
        dag_id: get(row, "dag_id")?,
        run_id: get(row, "run_id")?,
        run_type,
        logical_date: get(row, "logical_date")?,
        data_interval_start: get(row, "data_interval_start")?,
        data_interval_end: get(row, "data_interval_end")?,
        run_after: get(row, "run_after")?,
        conf: json_text(row, "conf")?,
        note: get(row, "note")?,
        state: parse::<RunState>(row, "state")?,
        version_number: uint(row, "version_number")?,
        queued_at: get(row, "queued_at")?,
        started_at: get(row, "started_at")?,
        ended_at: get(row, "ended_at")?,
        triggered_by: get(row, "triggered_by")?,
    })
}

/// Task instances as one array per column, so any number of them travels in one statement
/// (`unnest($1::text[], …)`), in [`TI_COLUMNS`] order.
#[derive(Default)]
pub(crate) struct TiArrays {
    dag_id: Vec<String>,
    run_id: Vec<String>,
    task_id: Vec<String>,
    map_index: Vec<i32>,
    state: Vec<&'static str>,
    try_number: Vec<i32>,
    max_tries: Vec<i32>,
    operator: Vec<String>,
    scheduled_at: Vec<Option<DateTime<Utc>>>,
    queued_at: Vec<Option<DateTime<Utc>>>,
    started_at: Vec<Option<DateTime<Utc>>>,
    ended_at: Vec<Option<DateTime<Utc>>>,
    next_retry_at: Vec<Option<DateTime<Utc>>>,
    last_heartbeat_at: Vec<Option<DateTime<Utc>>>,
    executor_ref: Vec<Option<String>>,
    hostname: Vec<Option<String>>,
    exit_code: Vec<Option<i32>>,
    error_message: Vec<Option<String>>,
    note: Vec<Option<String>>,
}

/// Number of parameters [`TiArrays::bind`] adds.
pub(crate) const TI_ARRAY_PARAMS: usize = 19;

impl TiArrays {
    pub(crate) fn new(tasks: &[TaskInstance]) -> Result<TiArrays> {
        let mut a = TiArrays::default();
        for t in tasks {
            a.dag_id.push(t.key.dag_id.clone());
            a.run_id.push(t.key.run_id.clone());
            a.task_id.push(t.key.task_id.clone());
            a.map_index.push(t.key.map_index);
            a.state.push(t.state.as_str());
            a.try_number.push(int(t.try_number, "try_number")?);
            a.max_tries.push(int(t.max_tries, "max_tries")?);
            a.operator.push(t.operator.clone());
            a.scheduled_at.push(t.scheduled_at);
            a.queued_at.push(t.queued_at);
            a.started_at.push(t.started_at);
            a.ended_at.push(t.ended_at);
            a.next_retry_at.push(t.next_retry_at);
            a.last_heartbeat_at.push(t.last_heartbeat_at);
            a.executor_ref.push(t.executor_ref.clone());
            a.hostname.push(t.hostname.clone());
            a.exit_code.push(t.exit_code);
            a.error_message.push(t.error_message.clone());
            a.note.push(t.note.clone());
        }
        Ok(a)
    }

    /// `unnest(...)` over the arrays bound from parameter `$first` on.
    pub(crate) fn unnest(first: usize) -> String {
        const TYPES: [&str; TI_ARRAY_PARAMS] = [
            "text",
            "text",
            "text",
            "int4",
            "text",
            "int4",
            "int4",
            "text",
            "timestamptz",
            "timestamptz",
            "timestamptz",
            "timestamptz",
            "timestamptz",
            "timestamptz",
            "text",
            "text",
            "int4",
            "text",
            "text",
        ];
        let args: Vec<String> = TYPES
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("${}::{ty}[]", first + i))
            .collect();
        format!("unnest({})", args.join(", "))
    }

    pub(crate) fn bind(
        self,
        q: Query<'_, Postgres, PgArguments>,
    ) -> Query<'_, Postgres, PgArguments> {
        q.bind(self.dag_id)
            .bind(self.run_id)
            .bind(self.task_id)
            .bind(self.map_index)
            .bind(self.state)
            .bind(self.try_number)
            .bind(self.max_tries)
            .bind(self.operator)
            .bind(self.scheduled_at)
            .bind(self.queued_at)
            .bind(self.started_at)
            .bind(self.ended_at)
            .bind(self.next_retry_at)
            .bind(self.last_heartbeat_at)
            .bind(self.executor_ref)
            .bind(self.hostname)
            .bind(self.exit_code)
            .bind(self.error_message)
            .bind(self.note)
    }
}

/// A SQL string literal for a state name (they come from a closed enum, never from users):
/// inlined rather than bound so the planner can match the partial indexes.
pub(crate) fn task_state_list(states: &[TaskState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn run_state_list(states: &[RunState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converts a page size to a SQL `LIMIT` (`None` = all).
pub(crate) fn limit(limit: Option<usize>) -> i64 {
    limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

pub(crate) fn offset(offset: usize) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

pub(crate) fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}
