//! `RedisXCom`: each value is a string key with a TTL; each run has a set indexing its
//! values (so listing a run is one SMEMBERS and one MGET); a sorted set by expiry lets
//! `purge_expired` find what the clock says has expired.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use leoflow_ports::clock::Clock;
use leoflow_ports::run::{RunKey, TaskKey};
use leoflow_ports::xcom::{json_size, Error, XComEntry, XComStore};
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::connection::{describe, RedisConnection};
use crate::keys;

/// Removes one value if it is still expired (a value written again since has a later
/// score and stays). KEYS: expiry set, value key, run index; ARGV: expiry member, now (ms),
/// index member.
static PURGE_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if score and tonumber(score) <= tonumber(ARGV[2]) then
            redis.call('ZREM', KEYS[1], ARGV[1])
            redis.call('DEL', KEYS[2])
            redis.call('SREM', KEYS[3], ARGV[3])
            return 1
        end
        return 0
        ",
    )
});

/// An `XComStore` on Redis.
pub struct RedisXCom {
    conn: ConnectionManager,
    prefix: String,
    clock: Arc<dyn Clock>,
    max_value_bytes: usize,
    ttl: TimeDelta,
}

/// What one value key holds.
#[derive(Serialize, Deserialize)]
struct Stored {
    value: Value,
    size: usize,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// A run's index member, decoded.
struct Member {
    raw: String,
    task_id: String,
    map_index: i32,
    key: String,
}

impl Member {
    fn parse(raw: String) -> Option<Member> {
        let (task_id, map_index, key): (String, i32, String) = serde_json::from_str(&raw).ok()?;
        Some(Member {
            raw,
            task_id,
            map_index,
            key,
        })
    }
}

impl RedisXCom {
    /// A store refusing values over `max_value_bytes` (compact JSON) and expiring values
    /// `ttl` after they were written, as `clock` tells time.
    pub fn new(
        conn: &RedisConnection,
        clock: Arc<dyn Clock>,
        max_value_bytes: usize,
        ttl: Duration,
    ) -> RedisXCom {
        RedisXCom {
            conn: conn.manager.clone(),
            prefix: conn.prefix.clone(),
            clock,
            max_value_bytes,
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Redis's own TTL for keys written now: the logical TTL, at least one second.
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.num_milliseconds()).map_or(u64::MAX, |ms| ms.max(1000))
    }

    /// The expiry sorted set's member for a value: every id needed to find it again.
    fn expiry_member(run: &RunKey, member: &Member) -> String {
        json!([
            run.dag_id,
            run.run_id,
            member.task_id,
            member.map_index,
            member.key
        ])
        .to_string()
    }

    async fn members(&self, run: &RunKey) -> Result<Vec<Member>, Error> {
        let raw: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::xcom_index(&self.prefix, run))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(raw.into_iter().filter_map(Member::parse).collect())
    }

    /// Removes the given values of `run` (their keys, index members and expiry entries).
    async fn remove(&self, run: &RunKey, members: &[Member]) -> Result<(), Error> {
        if members.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for m in members {
            pipe.del(keys::xcom_value(&self.prefix, run, &m.raw))
                .ignore();
            pipe.srem(keys::xcom_index(&self.prefix, run), &m.raw)
                .ignore();
            pipe.zrem(keys::xcom_expiry(&self.prefix), Self::expiry_member(run, m))
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }
}

fn unavailable(e: RedisError) -> Error {
    let (message, retryable) = describe(e);
    Error::Unavailable { message, retryable }
}

fn corrupt(what: &str, e: &serde_json::Error) -> Error {
    Error::Unavailable {
        message: format!("unreadable XCom record {what}: {e}"),
        retryable: false,
    }
}

fn entry(task: TaskKey, key: String, stored: Stored) -> XComEntry {
    XComEntry {
        task,
        key,
        value: stored.value,
        size_bytes: stored.size,
        created_at: stored.created_at,
        expires_at: stored.expires_at,
    }
}

#[async_trait]
impl XComStore for RedisXCom {
    fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    async fn put(&self, task: &TaskKey, key: &str, value: &Value) -> Result<(), Error> {
        let size = json_size(value);
        if size > self.max_value_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_value_bytes,
            });
        }
        let now = self.clock.now();
        let expires_at = now
            .checked_add_signed(self.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let stored = serde_json::to_string(&Stored {
            value: value.clone(),
            size,
            created_at: now,
            expires_at,
        })
        .map_err(|e| corrupt(key, &e))?;
        let run = task.run();
        let member = keys::member(task, key);
        let parsed = Member::parse(member.clone()).ok_or_else(|| Error::Unavailable {
            message: format!("cannot index XCom {key:?} of {task}"),
            retryable: false,
        })?;
        let ttl_ms = self.ttl_ms();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(keys::xcom_value(&self.prefix, &run, &member))
            .arg(stored)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .sadd(keys::xcom_index(&self.prefix, &run), &member)
            .ignore()
            .cmd("PEXPIRE")
            .arg(keys::xcom_index(&self.prefix, &run))
            .arg(ttl_ms)
            .ignore()
            .zadd(
                keys::xcom_expiry(&self.prefix),
                Self::expiry_member(&run, &parsed),
                expires_at.timestamp_millis(),
            )
            .ignore();
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    async fn get(&self, task: &TaskKey, key: &str) -> Result<Option<XComEntry>, Error> {
        let member = keys::member(task, key);
        let raw: Option<String> = redis::cmd("GET")
            .arg(keys::xcom_value(&self.prefix, &task.run(), &member))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_str(&raw).map_err(|e| corrupt(key, &e))?;
        if stored.expires_at <= self.clock.now() {
            return Ok(None);
        }
        Ok(Some(entry(task.clone(), key.to_string(), stored)))
    }

    async fn list(&self, run: &RunKey, task_id: Option<&str>) -> Result<Vec<XComEntry>, Error> {
        let mut members: Vec<Member> = self
            .members(run)
            .await?
            .into_iter()
            .filter(|m| task_id.is_none_or(|t| m.task_id == t))
            .collect();
        if members.is_empty() {
            return Ok(Vec::new());
        }
        members.sort_by(|a, b| {
            (&a.task_id, a.map_index, &a.key).cmp(&(&b.task_id, b.map_index, &b.key))
        });
        let value_keys: Vec<String> = members
            .iter()
            .map(|m| keys::xcom_value(&self.prefix, run, &m.raw))
            .collect();
        let raws: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&value_keys)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let now = self.clock.now();
        let mut out = Vec::with_capacity(members.len());
        for (m, raw) in members.into_iter().zip(raws) {
            let Some(raw) = raw else { continue };
            let stored: Stored = serde_json::from_str(&raw).map_err(|e| corrupt(&m.key, &e))?;
            if stored.expires_at > now {
                out.push(entry(
                    TaskKey::new(run, m.task_id, m.map_index),
                    m.key,
                    stored,
                ));
            }
        }
        Ok(out)
    }

    async fn delete_for_task(&self, task: &TaskKey) -> Result<(), Error> {
        let run = task.run();
        let members: Vec<Member> = self
            .members(&run)
            .await?
            .into_iter()
            .filter(|m| m.task_id == task.task_id && m.map_index == task.map_index)
            .collect();
        self.remove(&run, &members).await
    }

    async fn delete_for_run(&self, run: &RunKey) -> Result<(), Error> {
        let members = self.members(run).await?;
        self.remove(run, &members).await?;
        redis::cmd("DEL")
            .arg(keys::xcom_index(&self.prefix, run))
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    async fn purge_expired(&self) -> Result<u64, Error> {
        let now = self.clock.now().timestamp_millis();
        let expired: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(keys::xcom_expiry(&self.prefix))
            .arg("-inf")
            .arg(now)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut purged = 0;
        for raw in expired {
            let Ok((dag_id, run_id, task_id, map_index, key)) =
                serde_json::from_str::<(String, String, String, i32, String)>(&raw)
            else {
                continue;
            };
            let run = RunKey::new(dag_id, run_id);
            let member = keys::member(&TaskKey::new(&run, task_id, map_index), &key);
            let removed: i64 = PURGE_ONE
                .key(keys::xcom_expiry(&self.prefix))
                .key(keys::xcom_value(&self.prefix, &run, &member))
                .key(keys::xcom_index(&self.prefix, &run))
                .arg(&raw)
                .arg(now)
                .arg(&member)
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            purged += u64::try_from(removed).unwrap_or(0);
        }
        Ok(purged)
    }
}
