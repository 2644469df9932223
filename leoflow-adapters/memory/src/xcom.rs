//! `MemoryXCom`: XCom values per run in ordered maps, capped in size and expiring on the
//! injected clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use leoflow_ports::clock::Clock;
use leoflow_ports::run::{RunKey, TaskKey};
use leoflow_ports::xcom::{json_size, Error, XComEntry, XComStore};
use serde_json::Value;

/// (task_id, map_index, key): the listing order within a run.
type EntryKey = (String, i32, String);

/// An in-memory `XComStore`.
pub struct MemoryXCom {
    clock: Arc<dyn Clock>,
    max_value_bytes: usize,
    ttl: TimeDelta,
    runs: Mutex<BTreeMap<RunKey, BTreeMap<EntryKey, XComEntry>>>,
}

impl MemoryXCom {
    /// A store refusing values over `max_value_bytes` (compact JSON) and expiring values
    /// `ttl` after they were written, as `clock` tells time.
    pub fn new(clock: Arc<dyn Clock>, max_value_bytes: usize, ttl: Duration) -> MemoryXCom {
        MemoryXCom {
            clock,
            max_value_bytes,
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
            runs: Mutex::new(BTreeMap::new()),
        }
    }

    fn runs(&self) -> MutexGuard<'_, BTreeMap<RunKey, BTreeMap<EntryKey, XComEntry>>> {
        // Every mutation is a single map operation, so a poisoned lock holds consistent data.
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn entry_key(task: &TaskKey, key: &str) -> EntryKey {
    (task.task_id.clone(), task.map_index, key.to_string())
}

fn is_live(entry: &XComEntry, now: DateTime<Utc>) -> bool {
    entry.expires_at > now
}

#[async_trait]
impl XComStore for MemoryXCom {
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
        let entry = XComEntry {
            task: task.clone(),
            key: key.to_string(),
            value: value.clone(),
            size_bytes: size,
            created_at: now,
            expires_at: now
                .checked_add_signed(self.ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        self.runs()
            .entry(task.run())
            .or_default()
            .insert(entry_key(task, key), entry);
        Ok(())
    }

    async fn get(&self, task: &TaskKey, key: &str) -> Result<Option<XComEntry>, Error> {
        let now = self.clock.now();
        let runs = self.runs();
        let entry = runs
            .get(&task.run())
            .and_then(|values| values.get(&entry_key(task, key)));
        Ok(entry.filter(|e| is_live(e, now)).cloned())
    }

    async fn list(&self, run: &RunKey, task_id: Option<&str>) -> Result<Vec<XComEntry>, Error> {
        let now = self.clock.now();
        let runs = self.runs();
        let Some(values) = runs.get(run) else {
            return Ok(Vec::new());
        };
        Ok(values
            .values()
            .filter(|e| task_id.is_none_or(|t| e.task.task_id == t) && is_live(e, now))
            .cloned()
            .collect())
    }

    async fn delete_for_task(&self, task: &TaskKey) -> Result<(), Error> {
        let mut runs = self.runs();
        let run = task.run();
        if let Some(values) = runs.get_mut(&run) {
            values.retain(|(task_id, map_index, _), _| {
                !(*task_id == task.task_id && *map_index == task.map_index)
            });
            if values.is_empty() {
                runs.remove(&run);
            }
        }
        Ok(())
    }

    async fn delete_for_run(&self, run: &RunKey) -> Result<(), Error> {
        self.runs().remove(run);
        Ok(())
    }

    async fn purge_expired(&self) -> Result<u64, Error> {
        let now = self.clock.now();
        let mut purged = 0;
        self.runs().retain(|_, values| {
            let before = values.len();
            values.retain(|_, e| is_live(e, now));
            purged += (before - values.len()) as u64;
            !values.is_empty()
        });
        Ok(purged)
    }
}
