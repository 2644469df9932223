//! `TaskStore` on Postgres: every state change is one compare-and-set statement on
//! (state, try_number) plus the fence; a batch of transitions is one statement too
//! (`UPDATE … FROM unnest(…)`), so dispatching a fan-out costs one round trip.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leoflow_ports::datastore::{Error, Fence, Result, TaskFilter, TaskStore, Transition};
use leoflow_ports::lock::FencingToken;
use leoflow_ports::run::{RunKey, TaskInstance, TaskKey};

use super::runs::check_owned;
use super::{
    check_fence, count, fence_param, get, int, limit, offset, task_instance, task_state_list,
    FencedSql, PgStore, TiArrays, TI_ARRAY_PARAMS, TI_COLUMNS,
};
use crate::error::{datastore as db, out_of_range};

pub(crate) static TASK_INSTANCES_OF_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TI_COLUMNS} FROM task_instances WHERE dag_id = $1 AND run_id = $2
         ORDER BY task_id, map_index"
    )
});

pub(crate) static IN_FLIGHT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TI_COLUMNS} FROM task_instances WHERE state IN ('queued', 'running')
         ORDER BY dag_id, run_id, task_id, map_index"
    )
});

static GET_TASK_INSTANCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TI_COLUMNS} FROM task_instances
         WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4"
    )
});

static TRIES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TI_COLUMNS} FROM task_instance_tries
          WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4
         UNION ALL
         SELECT {TI_COLUMNS} FROM task_instances
          WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4
            AND try_number > 0
         ORDER BY try_number"
    )
});

/// Many compare-and-sets in one statement. Row `ord` of the input is written only if the
/// stored row is still at its expected (state, try); the statement returns the `ord`s it
/// wrote. When the try number changes the heartbeat is cleared, and the trigger
/// `task_instances_archive_try` archives the previous try.
static TRANSITION: LazyLock<FencedSql> = LazyLock::new(|| {
    FencedSql::new(
        "WITH /*FENCE_CTE*/
         input AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[],
                $6::int4[], $7::text[], $8::int4[], $9::int4[], $10::text[],
                $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
                $15::timestamptz[], $16::text[], $17::text[], $18::int4[], $19::text[])
            WITH ORDINALITY AS i(dag_id, run_id, task_id, map_index, expected_state,
                expected_try, state, try_number, max_tries, operator, scheduled_at, queued_at,
                started_at, ended_at, next_retry_at, executor_ref, hostname, exit_code,
                error_message, ord)
         ),
         written AS (
            UPDATE task_instances ti SET
                state = i.state, try_number = i.try_number, max_tries = i.max_tries,
                operator = i.operator, scheduled_at = i.scheduled_at, queued_at = i.queued_at,
                started_at = i.started_at, ended_at = i.ended_at,
                next_retry_at = i.next_retry_at, executor_ref = i.executor_ref,
                hostname = i.hostname, exit_code = i.exit_code,
                error_message = i.error_message,
                last_heartbeat_at = CASE WHEN i.try_number = ti.try_number
                                         THEN ti.last_heartbeat_at END
            FROM input i
            WHERE ti.dag_id = i.dag_id AND ti.run_id = i.run_id AND ti.task_id = i.task_id
              AND ti.map_index = i.map_index
              AND ti.state = i.expected_state AND ti.try_number = i.expected_try
              AND /*FENCE_OK*/
            RETURNING i.ord
         )
         SELECT /*FENCE_TOKEN*/ AS fence_token, ARRAY(SELECT ord FROM written) AS written",
        20,
    )
});

/// One compare-and-set as a plain single-row `UPDATE`: about half the cost of a one-item
/// `TRANSITION` batch, and the common case (one executor event, one API call). Parameters:
/// key ($1–$4), new values ($5–$17), expected state and try ($18, $19), token ($20).
const TRANSITION_ONE_SET: &str = "UPDATE task_instances SET
        state = $5, try_number = $6, max_tries = $7, operator = $8, scheduled_at = $9,
        queued_at = $10, started_at = $11, ended_at = $12, next_retry_at = $13,
        executor_ref = $14, hostname = $15, exit_code = $16, error_message = $17,
        last_heartbeat_at = CASE WHEN try_number = $6 THEN last_heartbeat_at END
    WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4
      AND state = $18 AND try_number = $19";

static TRANSITION_ONE: LazyLock<FencedSql> = LazyLock::new(|| {
    FencedSql::new(
        &format!(
            "WITH /*FENCE_CTE*/
             written AS ({TRANSITION_ONE_SET} AND /*FENCE_OK*/ RETURNING 1)
             SELECT /*FENCE_TOKEN*/ AS fence_token, (SELECT count(*) FROM written) AS written"
        ),
        20,
    )
});

static ADD_TASK_INSTANCES: LazyLock<FencedSql> = LazyLock::new(|| {
    let run = TI_ARRAY_PARAMS + 1;
    FencedSql::new(
        &format!(
            "WITH /*FENCE_CTE*/
             run AS (
                SELECT 1 FROM dag_runs WHERE dag_id = ${run} AND run_id = ${run_id}
                FOR KEY SHARE
             ),
             ins AS (
                INSERT INTO task_instances ({TI_COLUMNS})
                SELECT * FROM {unnest} WHERE EXISTS (SELECT 1 FROM run) AND /*FENCE_OK*/
                ON CONFLICT (dag_id, run_id, task_id, map_index) DO NOTHING
             )
             SELECT /*FENCE_TOKEN*/ AS fence_token, EXISTS (SELECT 1 FROM run) AS run_exists",
            run_id = run + 1,
            unnest = TiArrays::unnest(1),
        ),
        run + 2,
    )
});

/// The `SELECT` and `count(*)` of a task-instance listing, and the parameters in order.
pub(crate) fn list_sql(filter: &TaskFilter) -> (String, String, Vec<&str>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    for (column, value) in [
        ("dag_id", &filter.dag_id),
        ("run_id", &filter.run_id),
        ("task_id", &filter.task_id),
    ] {
        if let Some(v) = value {
            binds.push(v.as_str());
            clauses.push(format!("{column} = ${}", binds.len()));
        }
    }
    if !filter.states.is_empty() {
        clauses.push(format!("state IN ({})", task_state_list(&filter.states)));
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let list = format!(
        "SELECT {TI_COLUMNS} FROM task_instances {where_sql}
         ORDER BY dag_id, run_id, task_id, map_index LIMIT ${} OFFSET ${}",
        binds.len() + 1,
        binds.len() + 2
    );
    let total = format!("SELECT count(*) FROM task_instances {where_sql}");
    (list, total, binds)
}

/// The transition arrays, in `TRANSITION`'s parameter order.
#[derive(Default)]
struct TransitionArrays {
    dag_id: Vec<String>,
    run_id: Vec<String>,
    task_id: Vec<String>,
    map_index: Vec<i32>,
    expected_state: Vec<&'static str>,
    expected_try: Vec<i32>,
    state: Vec<&'static str>,
    try_number: Vec<i32>,
    max_tries: Vec<i32>,
    operator: Vec<String>,
    scheduled_at: Vec<Option<DateTime<Utc>>>,
    queued_at: Vec<Option<DateTime<Utc>>>,
    started_at: Vec<Option<DateTime<Utc>>>,
    ended_at: Vec<Option<DateTime<Utc>>>,
    next_retry_at: Vec<Option<DateTime<Utc>>>,
    executor_ref: Vec<Option<String>>,
    hostname: Vec<Option<String>>,
    exit_code: Vec<Option<i32>>,
    error_message: Vec<Option<String>>,
}

impl TransitionArrays {
    fn push(&mut self, t: &Transition) -> Result<()> {
        let n = &t.new;
        self.dag_id.push(n.key.dag_id.clone());
        self.run_id.push(n.key.run_id.clone());
        self.task_id.push(n.key.task_id.clone());
        self.map_index.push(n.key.map_index);
        self.expected_state.push(t.expected_state.as_str());
        self.expected_try
            .push(int(t.expected_try, "expected try_number")?);
        self.state.push(n.state.as_str());
        self.try_number.push(int(n.try_number, "try_number")?);
        self.max_tries.push(int(n.max_tries, "max_tries")?);
        self.operator.push(n.operator.clone());
        self.scheduled_at.push(n.scheduled_at);
        self.queued_at.push(n.queued_at);
        self.started_at.push(n.started_at);
        self.ended_at.push(n.ended_at);
        self.next_retry_at.push(n.next_retry_at);
        self.executor_ref.push(n.executor_ref.clone());
        self.hostname.push(n.hostname.clone());
        self.exit_code.push(n.exit_code);
        self.error_message.push(n.error_message.clone());
        Ok(())
    }
}

impl PgStore {
    /// One statement for the whole batch; every key appears at most once.
    async fn transition_batch(&self, ts: &[Transition], fence: Fence) -> Result<Vec<bool>> {
        let mut a = TransitionArrays::default();
        for t in ts {
            a.push(t)?;
        }
        let row = sqlx::query(TRANSITION.sql(fence))
            .bind(a.dag_id)
            .bind(a.run_id)
            .bind(a.task_id)
            .bind(a.map_index)
            .bind(a.expected_state)
            .bind(a.expected_try)
            .bind(a.state)
            .bind(a.try_number)
            .bind(a.max_tries)
            .bind(a.operator)
            .bind(a.scheduled_at)
            .bind(a.queued_at)
            .bind(a.started_at)
            .bind(a.ended_at)
            .bind(a.next_retry_at)
            .bind(a.executor_ref)
            .bind(a.hostname)
            .bind(a.exit_code)
            .bind(a.error_message)
            .bind(fence_param(fence)?)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        check_fence(fence, get(&row, "fence_token")?)?;
        let written: Vec<i64> = get(&row, "written")?;
        let mut out = vec![false; ts.len()];
        for ord in written {
            // `WITH ORDINALITY` counts from 1.
            if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = true;
            }
        }
        Ok(out)
    }
}

impl PgStore {
    async fn transition_one(&self, t: &Transition, fence: Fence) -> Result<bool> {
        let n = &t.new;
        let sql = if fence.is_some() {
            TRANSITION_ONE.sql(fence)
        } else {
            TRANSITION_ONE_SET
        };
        let q = sqlx::query(sql)
            .bind(&n.key.dag_id)
            .bind(&n.key.run_id)
            .bind(&n.key.task_id)
            .bind(n.key.map_index)
            .bind(n.state.as_str())
            .bind(int(n.try_number, "try_number")?)
            .bind(int(n.max_tries, "max_tries")?)
            .bind(&n.operator)
            .bind(n.scheduled_at)
            .bind(n.queued_at)
            .bind(n.started_at)
            .bind(n.ended_at)
            .bind(n.next_retry_at)
            .bind(&n.executor_ref)
            .bind(&n.hostname)
            .bind(n.exit_code)
            .bind(&n.error_message)
            .bind(t.expected_state.as_str())
            .bind(int(t.expected_try, "expected try_number")?);
        if fence.is_none() {
            let done = q.execute(&self.pool).await.map_err(db)?;
            return Ok(done.rows_affected() > 0);
        }
        let row = q
            .bind(fence_param(fence)?)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        check_fence(fence, get(&row, "fence_token")?)?;
        Ok(get::<i64>(&row, "written")? > 0)
    }
}

fn key_params(key: &TaskKey) -> (&str, &str, &str, i32) {
    (&key.dag_id, &key.run_id, &key.task_id, key.map_index)
}

#[async_trait]
impl TaskStore for PgStore {
    async fn task_instances(&self, run: &RunKey) -> Result<Vec<TaskInstance>> {
        sqlx::query(&TASK_INSTANCES_OF_RUN)
            .bind(&run.dag_id)
            .bind(&run.run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(task_instance)
            .collect()
    }

    async fn get_task_instance(&self, key: &TaskKey) -> Result<Option<TaskInstance>> {
        let (dag_id, run_id, task_id, map_index) = key_params(key);
        sqlx::query(&GET_TASK_INSTANCE)
            .bind(dag_id)
            .bind(run_id)
            .bind(task_id)
            .bind(map_index)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(task_instance)
            .transpose()
    }

    async fn add_task_instances(
        &self,
        run: &RunKey,
        tasks: &[TaskInstance],
        fence: Fence,
    ) -> Result<()> {
        check_owned(run, tasks)?;
        let q = TiArrays::new(tasks)?.bind(sqlx::query(ADD_TASK_INSTANCES.sql(fence)));
        let row = q
            .bind(&run.dag_id)
            .bind(&run.run_id)
            .bind(fence_param(fence)?)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        check_fence(fence, get(&row, "fence_token")?)?;
        if !get::<bool>(&row, "run_exists")? {
            return Err(Error::not_found(format!("run {run}")));
        }
        Ok(())
    }

    async fn transition(&self, t: &Transition, fence: Fence) -> Result<bool> {
        self.transition_one(t, fence).await
    }

    async fn transition_many(&self, ts: &[Transition], fence: Fence) -> Result<Vec<bool>> {
        match ts {
            [] => return Ok(Vec::new()),
            [one] => return Ok(vec![self.transition_one(one, fence).await?]),
            _ => {}
        }
        let mut seen = HashSet::with_capacity(ts.len());
        if ts.iter().all(|t| seen.insert(&t.new.key)) {
            return self.transition_batch(ts, fence).await;
        }
        // A key listed twice must see its first transition's result, which one UPDATE
        // cannot do (it touches each row once): apply the batch in order instead.
        let mut out = Vec::with_capacity(ts.len());
        for t in ts {
            out.push(self.transition(t, fence).await?);
        }
        Ok(out)
    }

    async fn heartbeat(&self, key: &TaskKey, try_number: u32, at: DateTime<Utc>) -> Result<bool> {
        let Ok(try_number) = i32::try_from(try_number) else {
            return Ok(false);
        };
        let (dag_id, run_id, task_id, map_index) = key_params(key);
        let done = sqlx::query(
            "UPDATE task_instances SET last_heartbeat_at = $6
             WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4
               AND try_number = $5 AND state IN ('queued', 'running')",
        )
        .bind(dag_id)
        .bind(run_id)
        .bind(task_id)
        .bind(map_index)
        .bind(try_number)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn in_flight(&self) -> Result<Vec<TaskInstance>> {
        sqlx::query(&IN_FLIGHT)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(task_instance)
            .collect()
    }

    async fn tries(&self, key: &TaskKey) -> Result<Vec<TaskInstance>> {
        let (dag_id, run_id, task_id, map_index) = key_params(key);
        sqlx::query(&TRIES)
            .bind(dag_id)
            .bind(run_id)
            .bind(task_id)
            .bind(map_index)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(task_instance)
            .collect()
    }

    async fn list_task_instances(&self, filter: &TaskFilter) -> Result<(Vec<TaskInstance>, usize)> {
        let (list_sql, count_sql, binds) = list_sql(filter);
        let mut list = sqlx::query(&list_sql);
        let mut total = sqlx::query_scalar::<_, i64>(&count_sql);
        for b in binds {
            list = list.bind(b);
            total = total.bind(b);
        }
        let rows = list
            .bind(limit(filter.limit))
            .bind(offset(filter.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let total = total.fetch_one(&self.pool).await.map_err(db)?;
        let tasks = rows.iter().map(task_instance).collect::<Result<_>>()?;
        Ok((tasks, count(total)))
    }

    async fn set_task_note(&self, key: &TaskKey, note: Option<String>) -> Result<()> {
        let (dag_id, run_id, task_id, map_index) = key_params(key);
        let done = sqlx::query(
            "UPDATE task_instances SET note = $5
             WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4",
        )
        .bind(dag_id)
        .bind(run_id)
        .bind(task_id)
        .bind(map_index)
        .bind(note)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("task instance {key}")));
        }
        Ok(())
    }

    async fn raise_fence(&self, token: FencingToken) -> Result<()> {
        let value = i64::try_from(token.0).map_err(|_| out_of_range("fencing token", token))?;
        sqlx::query("UPDATE fence SET token = GREATEST(token, $1)")
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
