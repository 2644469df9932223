//! `MemoryStore`: the whole `Datastore` in one mutex-guarded struct, indexed so the engine's
//! hot paths (a run's instances, one transition, the in-flight set) cost what they touch,
//! not what the store holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::{
    AuditEvent, Connection, DagStore, Error, Fence, ImportError, MetaStore, Result, RunFilter,
    RunStore, TaskFilter, TaskStore, Transition, User, Variable,
};
use leoflow_ports::lock::FencingToken;
use leoflow_ports::run::{DagRun, RunKey, RunType, TaskInstance, TaskKey};
use leoflow_ports::state::RunState;
use leoflow_ports::version::{DagRecord, DagVersion};

/// An in-memory `Datastore`. Every call takes one lock, so each call is atomic.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is only mutated after every check has passed, so a panic in another
        // caller cannot leave it half-written; carrying on is safe.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct State {
    dags: BTreeMap<String, DagEntry>,
    /// dag_id → run_id → run. Nested so lookups borrow `&str` instead of building keys.
    runs: BTreeMap<String, BTreeMap<String, RunEntry>>,
    /// Queued and running runs.
    active_runs: BTreeSet<RunKey>,
    /// Queued and running task instances, so `in_flight` never scans finished runs.
    in_flight: BTreeSet<TaskKey>,
    fence: u64,
    users: BTreeMap<String, User>,
    variables: BTreeMap<String, Variable>,
    connections: BTreeMap<String, Connection>,
    /// In id order; the id of event `i` is `i + 1`.
    audit: Vec<AuditEvent>,
    import_errors: BTreeMap<String, ImportError>,
}

struct DagEntry {
    record: DagRecord,
    /// Version `n` is at index `n - 1`.
    versions: Vec<DagVersion>,
}

struct RunEntry {
    run: DagRun,
    /// task_id → map_index → instance: iteration order is the listing order.
    tasks: BTreeMap<String, BTreeMap<i32, Slot>>,
}

/// One task instance and its archived tries.
struct Slot {
    ti: TaskInstance,
    archived: Vec<TaskInstance>,
}

impl State {
    fn check_fence(&self, fence: Fence) -> Result<()> {
        match fence {
            Some(FencingToken(token)) if token < self.fence => Err(Error::Fenced {
                token,
                current: self.fence,
            }),
            _ => Ok(()),
        }
    }

    fn run(&self, dag_id: &str, run_id: &str) -> Option<&RunEntry> {
        self.runs.get(dag_id)?.get(run_id)
    }

    fn run_mut(&mut self, dag_id: &str, run_id: &str) -> Option<&mut RunEntry> {
        self.runs.get_mut(dag_id)?.get_mut(run_id)
    }

    fn slot(&self, key: &TaskKey) -> Option<&Slot> {
        self.run(&key.dag_id, &key.run_id)?
            .tasks
            .get(&key.task_id)?
            .get(&key.map_index)
    }

    fn slot_mut(&mut self, key: &TaskKey) -> Option<&mut Slot> {
        self.run_mut(&key.dag_id, &key.run_id)?
            .tasks
            .get_mut(&key.task_id)?
            .get_mut(&key.map_index)
    }

    /// Keeps `in_flight` in step with one instance's state change.
    fn track_in_flight(&mut self, key: &TaskKey, was: bool, is: bool) {
        if was && !is {
            self.in_flight.remove(key);
        } else if is && !was {
            self.in_flight.insert(key.clone());
        }
    }

    fn track_active(&mut self, key: RunKey, state: RunState) {
        if state.is_finished() {
            self.active_runs.remove(&key);
        } else {
            self.active_runs.insert(key);
        }
    }

    /// One compare-and-set. The fence was checked by the caller.
    fn transition(&mut self, t: &Transition) -> bool {
        let key = &t.new.key;
        let Some(slot) = self.slot_mut(key) else {
            return false;
        };
        if slot.ti.state != t.expected_state || slot.ti.try_number != t.expected_try {
            return false;
        }
        let mut new = t.new.clone();
        let old = &mut slot.ti;
        new.note = old.note.take();
        let new_try = new.try_number > old.try_number;
        new.last_heartbeat_at = if new_try { None } else { old.last_heartbeat_at };
        let (was, is) = (old.state.is_in_flight(), new.state.is_in_flight());
        let mut old = std::mem::replace(&mut slot.ti, new);
        if new_try && old.try_number >= 1 {
            old.note.clone_from(&slot.ti.note);
            slot.archived.push(old);
        }
        self.track_in_flight(key, was, is);
        true
    }

    /// Removes a run and its instances from every index.
    fn remove_run(&mut self, dag_id: &str, run_id: &str) -> Option<RunEntry> {
        let runs = self.runs.get_mut(dag_id)?;
        let entry = runs.remove(run_id)?;
        if runs.is_empty() {
            self.runs.remove(dag_id);
        }
        self.forget_run(&entry);
        Some(entry)
    }

    fn forget_run(&mut self, entry: &RunEntry) {
        self.active_runs.remove(&entry.run.key());
        for slot in entry.tasks.values().flat_map(BTreeMap::values) {
            if slot.ti.state.is_in_flight() {
                self.in_flight.remove(&slot.ti.key);
            }
        }
    }

    /// Every run, optionally of one DAG.
    fn runs_of<'a>(&'a self, dag_id: Option<&str>) -> Box<dyn Iterator<Item = &'a RunEntry> + 'a> {
        match dag_id {
            Some(id) => Box::new(self.runs.get(id).into_iter().flat_map(BTreeMap::values)),
            None => Box::new(self.runs.values().flat_map(BTreeMap::values)),
        }
    }
}

fn not_found_dag(dag_id: &str) -> Error {
    Error::not_found(format!("DAG `{dag_id}`"))
}

fn not_found_run(dag_id: &str, run_id: &str) -> Error {
    Error::not_found(format!("run `{dag_id}/{run_id}`"))
}

/// Builds a run's instance index, refusing instances of another run and duplicates.
fn index_tasks(
    run: &RunKey,
    tasks: &[TaskInstance],
) -> Result<BTreeMap<String, BTreeMap<i32, Slot>>> {
    let mut index: BTreeMap<String, BTreeMap<i32, Slot>> = BTreeMap::new();
    for ti in tasks {
        check_belongs(run, ti)?;
        let slot = Slot {
            ti: ti.clone(),
            archived: Vec::new(),
        };
        let by_index = index.entry(ti.key.task_id.clone()).or_default();
        if by_index.insert(ti.key.map_index, slot).is_some() {
            return Err(Error::Invalid {
                message: format!("task instance {} appears twice", ti.key),
            });
        }
    }
    Ok(index)
}

fn check_belongs(run: &RunKey, ti: &TaskInstance) -> Result<()> {
    if ti.key.dag_id == run.dag_id && ti.key.run_id == run.run_id {
        Ok(())
    } else {
        Err(Error::Invalid {
            message: format!("task instance {} does not belong to run {run}", ti.key),
        })
    }
}

/// The `[offset, offset + limit)` window of an iterator, and its full length.
fn window<T>(
    items: impl Iterator<Item = T>,
    offset: usize,
    limit: Option<usize>,
) -> (Vec<T>, usize) {
    let end = limit.map_or(usize::MAX, |l| offset.saturating_add(l));
    let mut total = 0;
    let mut out = Vec::new();
    for item in items {
        if total >= offset && total < end {
            out.push(item);
        }
        total += 1;
    }
    (out, total)
}

#[async_trait]
impl DagStore for MemoryStore {
    async fn register_version(
        &self,
        spec: Arc<DagSpec>,
        spec_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(DagVersion, bool)> {
        let mut state = self.state();
        let dag_id = spec.dag_id.clone();
        let entry = state
            .dags
            .entry(dag_id.clone())
            .or_insert_with(|| DagEntry {
                record: DagRecord {
                    dag_id: dag_id.clone(),
                    is_paused: false,
                    is_active: true,
                    latest_version: 0,
                    created_at: at,
                    last_registered_at: at,
                },
                versions: Vec::new(),
            });
        entry.record.is_active = true;
        entry.record.last_registered_at = at;
        if let Some(known) = entry.versions.iter().find(|v| v.spec_hash == spec_hash) {
            entry.record.latest_version = known.version_number;
            return Ok((known.clone(), false));
        }
        let version = DagVersion {
            dag_id,
            version_number: entry.versions.len() as u32 + 1,
            label: spec.dag_version.clone(),
            spec_hash: spec_hash.to_string(),
            spec,
            created_at: at,
        };
        entry.record.latest_version = version.version_number;
        entry.versions.push(version.clone());
        Ok((version, true))
    }

    async fn get_dag(&self, dag_id: &str) -> Result<Option<DagRecord>> {
        Ok(self.state().dags.get(dag_id).map(|d| d.record.clone()))
    }

    async fn list_dags(&self) -> Result<Vec<DagRecord>> {
        Ok(self
            .state()
            .dags
            .values()
            .filter(|d| d.record.is_active)
            .map(|d| d.record.clone())
            .collect())
    }

    async fn get_version(&self, dag_id: &str, version_number: u32) -> Result<Option<DagVersion>> {
        let state = self.state();
        let Some(dag) = state.dags.get(dag_id) else {
            return Ok(None);
        };
        let index = (version_number as usize).checked_sub(1);
        Ok(index.and_then(|i| dag.versions.get(i)).cloned())
    }

    async fn list_versions(&self, dag_id: &str) -> Result<Vec<DagVersion>> {
        let state = self.state();
        let versions = state.dags.get(dag_id).map(|d| d.versions.as_slice());
        Ok(versions.unwrap_or_default().iter().rev().cloned().collect())
    }

    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<DagRecord> {
        let mut state = self.state();
        let dag = state
            .dags
            .get_mut(dag_id)
            .ok_or_else(|| not_found_dag(dag_id))?;
        dag.record.is_paused = paused;
        Ok(dag.record.clone())
    }

    async fn clear_history(&self, dag_id: &str) -> Result<()> {
        let mut state = self.state();
        let runs = state.runs.remove(dag_id);
        if runs.is_none() && !state.dags.contains_key(dag_id) {
            return Err(not_found_dag(dag_id));
        }
        for entry in runs.iter().flat_map(BTreeMap::values) {
            state.forget_run(entry);
        }
        Ok(())
    }

    async fn deactivate(&self, dag_id: &str) -> Result<()> {
        let mut state = self.state();
        let dag = state
            .dags
            .get_mut(dag_id)
            .ok_or_else(|| not_found_dag(dag_id))?;
        dag.record.is_active = false;
        Ok(())
    }
}

#[async_trait]
impl RunStore for MemoryStore {
    async fn create_run(&self, run: &DagRun, tasks: &[TaskInstance], fence: Fence) -> Result<()> {
        let mut state = self.state();
        state.check_fence(fence)?;
        if state.run(&run.dag_id, &run.run_id).is_some() {
            return Err(Error::conflict(format!("run `{}`", run.key())));
        }
        // Everything is checked before anything is stored: the run lands whole or not at all.
        let index = index_tasks(&run.key(), tasks)?;
        for ti in tasks.iter().filter(|t| t.state.is_in_flight()) {
            state.in_flight.insert(ti.key.clone());
        }
        state.track_active(run.key(), run.state);
        state.runs.entry(run.dag_id.clone()).or_default().insert(
            run.run_id.clone(),
            RunEntry {
                run: run.clone(),
                tasks: index,
            },
        );
        Ok(())
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<DagRun>> {
        Ok(self
            .state()
            .run(&key.dag_id, &key.run_id)
            .map(|e| e.run.clone()))
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<(Vec<DagRun>, usize)> {
        let state = self.state();
        let mut runs: Vec<&DagRun> = state
            .runs_of(filter.dag_id.as_deref())
            .map(|e| &e.run)
            .filter(|r| filter.states.is_empty() || filter.states.contains(&r.state))
            .collect();
        runs.sort_by(|a, b| {
            (b.run_after, &b.run_id, &b.dag_id).cmp(&(a.run_after, &a.run_id, &a.dag_id))
        });
        let (page, total) = window(runs.into_iter(), filter.offset, filter.limit);
        Ok((page.into_iter().cloned().collect(), total))
    }

    async fn active_runs(&self) -> Result<Vec<DagRun>> {
        let state = self.state();
        let mut runs: Vec<&DagRun> = state
            .active_runs
            .iter()
            .filter_map(|k| state.run(&k.dag_id, &k.run_id))
            .map(|e| &e.run)
            .collect();
        runs.sort_by(|a, b| {
            (a.run_after, a.queued_at, &a.dag_id, &a.run_id).cmp(&(
                b.run_after,
                b.queued_at,
                &b.dag_id,
                &b.run_id,
            ))
        });
        Ok(runs.into_iter().cloned().collect())
    }

    async fn last_scheduled_logical_date(&self, dag_id: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .state()
            .runs_of(Some(dag_id))
            .filter(|e| e.run.run_type == RunType::Scheduled)
            .filter_map(|e| e.run.logical_date)
            .max())
    }

    async fn update_run(&self, expected: RunState, new: &DagRun, fence: Fence) -> Result<bool> {
        let mut state = self.state();
        state.check_fence(fence)?;
        let Some(entry) = state.run_mut(&new.dag_id, &new.run_id) else {
            return Ok(false);
        };
        if entry.run.state != expected {
            return Ok(false);
        }
        entry.run = new.clone();
        state.track_active(new.key(), new.state);
        Ok(true)
    }

    async fn delete_run(&self, key: &RunKey) -> Result<()> {
        self.state()
            .remove_run(&key.dag_id, &key.run_id)
            .map(|_| ())
            .ok_or_else(|| not_found_run(&key.dag_id, &key.run_id))
    }
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn task_instances(&self, run: &RunKey) -> Result<Vec<TaskInstance>> {
        let state = self.state();
        let Some(entry) = state.run(&run.dag_id, &run.run_id) else {
            return Ok(Vec::new());
        };
        Ok(entry
            .tasks
            .values()
            .flat_map(BTreeMap::values)
            .map(|s| s.ti.clone())
            .collect())
    }

    async fn get_task_instance(&self, key: &TaskKey) -> Result<Option<TaskInstance>> {
        Ok(self.state().slot(key).map(|s| s.ti.clone()))
    }

    async fn add_task_instances(
        &self,
        run: &RunKey,
        tasks: &[TaskInstance],
        fence: Fence,
    ) -> Result<()> {
        let mut state = self.state();
        state.check_fence(fence)?;
        if state.run(&run.dag_id, &run.run_id).is_none() {
            return Err(not_found_run(&run.dag_id, &run.run_id));
        }
        for ti in tasks {
            check_belongs(run, ti)?;
        }
        let mut now_in_flight = Vec::new();
        let entry = state
            .run_mut(&run.dag_id, &run.run_id)
            .ok_or_else(|| not_found_run(&run.dag_id, &run.run_id))?;
        for ti in tasks {
            let by_index = entry.tasks.entry(ti.key.task_id.clone()).or_default();
            if let std::collections::btree_map::Entry::Vacant(v) = by_index.entry(ti.key.map_index)
            {
                v.insert(Slot {
                    ti: ti.clone(),
                    archived: Vec::new(),
                });
                if ti.state.is_in_flight() {
                    now_in_flight.push(ti.key.clone());
                }
            }
        }
        state.in_flight.extend(now_in_flight);
        Ok(())
    }

    async fn transition(&self, t: &Transition, fence: Fence) -> Result<bool> {
        let mut state = self.state();
        state.check_fence(fence)?;
        Ok(state.transition(t))
    }

    async fn transition_many(&self, ts: &[Transition], fence: Fence) -> Result<Vec<bool>> {
        // One lock for the batch: a dispatcher moving thousands of instances pays for the
        // lock once.
        let mut state = self.state();
        state.check_fence(fence)?;
        Ok(ts.iter().map(|t| state.transition(t)).collect())
    }

    async fn heartbeat(&self, key: &TaskKey, try_number: u32, at: DateTime<Utc>) -> Result<bool> {
        let mut state = self.state();
        match state.slot_mut(key) {
            Some(slot) if slot.ti.try_number == try_number && slot.ti.state.is_in_flight() => {
                slot.ti.last_heartbeat_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn in_flight(&self) -> Result<Vec<TaskInstance>> {
        let state = self.state();
        Ok(state
            .in_flight
            .iter()
            .filter_map(|k| state.slot(k))
            .map(|s| s.ti.clone())
            .collect())
    }

    async fn tries(&self, key: &TaskKey) -> Result<Vec<TaskInstance>> {
        let state = self.state();
        let Some(slot) = state.slot(key) else {
            return Ok(Vec::new());
        };
        let current = (slot.ti.try_number >= 1).then_some(&slot.ti);
        Ok(slot.archived.iter().chain(current).cloned().collect())
    }

    async fn list_task_instances(&self, filter: &TaskFilter) -> Result<(Vec<TaskInstance>, usize)> {
        let state = self.state();
        let runs: Box<dyn Iterator<Item = &RunEntry>> = match (&filter.dag_id, &filter.run_id) {
            (Some(dag), Some(run)) => Box::new(state.run(dag, run).into_iter()),
            (dag, run) => Box::new(
                state
                    .runs_of(dag.as_deref())
                    .filter(move |e| run.as_ref().is_none_or(|r| *r == e.run.run_id)),
            ),
        };
        let instances = runs
            .flat_map(|e| -> Box<dyn Iterator<Item = &Slot>> {
                match &filter.task_id {
                    Some(task) => {
                        Box::new(e.tasks.get(task).into_iter().flat_map(BTreeMap::values))
                    }
                    None => Box::new(e.tasks.values().flat_map(BTreeMap::values)),
                }
            })
            .map(|s| &s.ti)
            .filter(|ti| filter.states.is_empty() || filter.states.contains(&ti.state));
        let (page, total) = window(instances, filter.offset, filter.limit);
        Ok((page.into_iter().cloned().collect(), total))
    }

    async fn set_task_note(&self, key: &TaskKey, note: Option<String>) -> Result<()> {
        let mut state = self.state();
        let slot = state
            .slot_mut(key)
            .ok_or_else(|| Error::not_found(format!("task instance `{key}`")))?;
        slot.ti.note = note;
        Ok(())
    }

    async fn raise_fence(&self, token: FencingToken) -> Result<()> {
        let mut state = self.state();
        state.fence = state.fence.max(token.0);
        Ok(())
    }
}

#[async_trait]
impl MetaStore for MemoryStore {
    async fn put_user(&self, user: &User) -> Result<()> {
        self.state()
            .users
            .insert(user.username.clone(), user.clone());
        Ok(())
    }

    async fn get_user(&self, username: &str) -> Result<Option<User>> {
        Ok(self.state().users.get(username).cloned())
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn put_variable(&self, var: &Variable) -> Result<()> {
        self.state().variables.insert(var.key.clone(), var.clone());
        Ok(())
    }

    async fn get_variable(&self, key: &str) -> Result<Option<Variable>> {
        Ok(self.state().variables.get(key).cloned())
    }

    async fn list_variables(&self) -> Result<Vec<Variable>> {
        Ok(self.state().variables.values().cloned().collect())
    }

    async fn delete_variable(&self, key: &str) -> Result<()> {
        self.state()
            .variables
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("variable `{key}`")))
    }

    async fn put_connection(&self, conn: &Connection) -> Result<()> {
        self.state()
            .connections
            .insert(conn.conn_id.clone(), conn.clone());
        Ok(())
    }

    async fn get_connection(&self, conn_id: &str) -> Result<Option<Connection>> {
        Ok(self.state().connections.get(conn_id).cloned())
    }

    async fn list_connections(&self) -> Result<Vec<Connection>> {
        Ok(self.state().connections.values().cloned().collect())
    }

    async fn delete_connection(&self, conn_id: &str) -> Result<()> {
        self.state()
            .connections
            .remove(conn_id)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("connection `{conn_id}`")))
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<u64> {
        let mut state = self.state();
        let id = state.audit.len() as u64 + 1;
        state.audit.push(AuditEvent {
            id,
            ..event.clone()
        });
        Ok(id)
    }

    async fn list_audit(
        &self,
        dag_id: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<AuditEvent>, usize)> {
        let state = self.state();
        let events = state
            .audit
            .iter()
            .rev()
            .filter(|e| dag_id.is_none() || e.dag_id.as_deref() == dag_id);
        let (page, total) = window(events, offset, Some(limit));
        Ok((page.into_iter().cloned().collect(), total))
    }

    async fn put_import_error(&self, err: &ImportError) -> Result<()> {
        self.state()
            .import_errors
            .insert(err.filename.clone(), err.clone());
        Ok(())
    }

    async fn delete_import_error(&self, filename: &str) -> Result<()> {
        self.state().import_errors.remove(filename);
        Ok(())
    }

    async fn list_import_errors(&self) -> Result<Vec<ImportError>> {
        Ok(self.state().import_errors.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use leoflow_ports::run::TaskInstance;
    use leoflow_ports::state::TaskState;
    use leoflow_ports::testkit::fixtures;

    use super::*;

    /// The engine's hot path: a run of 10,000 instances, each dispatched and finished
    /// with one transition at a time, while 10 finished runs of the same size sit in the
    /// store. The in-flight set and per-run index keep this linear.
    #[tokio::test]
    async fn a_ten_thousand_task_run_stays_linear() {
        let store = MemoryStore::new();
        let ids: Vec<String> = (0..10_000).map(|i| format!("t{i:05}")).collect();
        let make = |run_id: &str| -> (DagRun, Vec<TaskInstance>) {
            let run = fixtures::run("big", run_id, fixtures::at(0));
            let tasks = ids
                .iter()
                .map(|id| fixtures::task(&run.key(), id, -1))
                .collect();
            (run, tasks)
        };
        for i in 0..10 {
            let (run, tasks) = make(&format!("old{i}"));
            store.create_run(&run, &tasks, None).await.unwrap();
        }
        let (run, tasks) = make("hot");
        store.create_run(&run, &tasks, None).await.unwrap();
        let started = std::time::Instant::now();
        for ti in &tasks {
            let queued = fixtures::moved(ti, TaskState::Queued, 1);
            let t = Transition {
                expected_state: ti.state,
                expected_try: ti.try_number,
                new: queued.clone(),
            };
            assert!(store.transition(&t, None).await.unwrap());
            let done = fixtures::moved(&queued, TaskState::Success, 1);
            let t = Transition {
                expected_state: queued.state,
                expected_try: 1,
                new: done,
            };
            assert!(store.transition(&t, None).await.unwrap());
        }
        assert!(store.in_flight().await.unwrap().is_empty());
        assert_eq!(
            store.task_instances(&run.key()).await.unwrap().len(),
            10_000
        );
        // Generous even for a debug build on a slow machine; a scan of the 110,000 stored
        // instances per transition would take minutes.
        let elapsed = started.elapsed();
        eprintln!("20,000 transitions: {elapsed:?}");
        assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
    }
}
