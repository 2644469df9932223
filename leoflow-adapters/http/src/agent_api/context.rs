//! What an attempt is told when it starts: its task, DAG, run, resolved inputs, mapped
//! arguments and params, read from the run's pinned DAG version and the XCom store, and
//! for an http_api task the call to make (its connection resolved here). Also the XCom
//! reads of `GET /agent/v1/xcom`, which share the upstream rules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use leoflow_core::mapping;
use leoflow_core::plan::DagPlan;
use leoflow_ports::dag::{MapSource, TaskKind, TaskSpec, XComInput, XComRef};
use leoflow_ports::http_call::{resolve_call, HttpCall};
use leoflow_ports::run::{AttemptId, DagRun, RunKey, TaskInstance, TaskKey};
use serde_json::Value;

use super::dto::{AttemptDto, DagDto, HttpCallDto, RunDto, StartResponse};
use super::AgentApi;
use crate::problem::Problem;
use crate::problem::{datastore_problem, engine_problem, xcom_problem};

/// The run of an attempt and the DAG version it is pinned to.
pub(super) struct Scope {
    pub run: DagRun,
    pub plan: Arc<DagPlan>,
    pub idx: usize,
}

impl Scope {
    pub async fn load(api: &AgentApi, attempt: &AttemptId) -> Result<Scope, Problem> {
        let key = attempt.task.run();
        let run = api
            .engine
            .datastore()
            .get_run(&key)
            .await
            .map_err(datastore_problem)?
            .ok_or_else(|| Problem::not_found(format!("DAG run {key} not found")))?;
        let plan = api
            .engine
            .plan(&run.dag_id, run.version_number)
            .await
            .map_err(engine_problem)?;
        let idx = plan.graph.idx(&attempt.task.task_id).ok_or_else(|| {
            Problem::not_found(format!(
                "task {:?} is not in version {} of DAG {:?}",
                attempt.task.task_id, run.version_number, run.dag_id
            ))
        })?;
        Ok(Scope { run, plan, idx })
    }

    pub fn task(&self) -> &TaskSpec {
        &self.plan.spec.tasks[self.idx]
    }

    /// The tasks whose XComs this task may read: its declared inputs and map sources, its
    /// `depends_on`, and itself.
    pub fn readable(&self) -> HashSet<&str> {
        let task = self.task();
        task.xcom_upstreams()
            .map(|(_, r)| r.task_id.as_str())
            .chain(task.depends_on.iter().map(String::as_str))
            .chain(std::iter::once(task.task_id.as_str()))
            .collect()
    }
}

/// Reads upstream XComs of one run, loading the run's task instances once when a mapped
/// upstream needs them.
pub(super) struct XComReader<'a> {
    api: &'a AgentApi,
    scope: &'a Scope,
    run: RunKey,
    tis: Option<Vec<TaskInstance>>,
}

impl<'a> XComReader<'a> {
    pub fn new(api: &'a AgentApi, scope: &'a Scope) -> XComReader<'a> {
        XComReader {
            api,
            scope,
            run: scope.run.key(),
            tis: None,
        }
    }

    async fn one(&self, task_id: &str, map_index: i32, key: &str) -> Result<Value, Problem> {
        let entry = self
            .api
            .engine
            .xcom()
            .get(&TaskKey::new(&self.run, task_id, map_index), key)
            .await
            .map_err(|e| xcom_problem(&e))?;
        Ok(entry.map_or(Value::Null, |e| e.value))
    }

    /// The value of `r`: one instance's when `map_index` is given; for a mapped upstream
    /// otherwise the list of its instances' values in map-index order; `None` when an
    /// unmapped upstream pushed nothing.
    pub async fn value(
        &mut self,
        r: &XComRef,
        map_index: Option<i32>,
    ) -> Result<Option<Value>, Problem> {
        let mapped = self
            .scope
            .plan
            .spec
            .task(&r.task_id)
            .is_some_and(|t| t.map.is_some());
        if let Some(i) = map_index {
            return Ok(Some(self.one(&r.task_id, i, &r.key).await?).filter(|v| !v.is_null()));
        }
        if !mapped {
            return Ok(Some(self.one(&r.task_id, -1, &r.key).await?).filter(|v| !v.is_null()));
        }
        if self.tis.is_none() {
            let tis = self
                .api
                .engine
                .datastore()
                .task_instances(&self.run)
                .await
                .map_err(datastore_problem)?;
            self.tis = Some(tis);
        }
        let mut idxs: Vec<i32> = self
            .tis
            .iter()
            .flatten()
            .filter(|t| t.key.task_id == r.task_id && t.key.map_index >= 0)
            .map(|t| t.key.map_index)
            .collect();
        idxs.sort_unstable();
        let mut out = Vec::with_capacity(idxs.len());
        for i in idxs {
            out.push(self.one(&r.task_id, i, &r.key).await?);
        }
        Ok(Some(Value::Array(out)))
    }
}

/// The start response of `attempt`.
pub(super) async fn start_response(
    api: &AgentApi,
    attempt: &AttemptId,
) -> Result<StartResponse, Problem> {
    let scope = Scope::load(api, attempt).await?;
    let task = scope.task();
    let spec = &scope.plan.spec;
    let mut reader = XComReader::new(api, &scope);

    let mut inputs = BTreeMap::new();
    for (param, input) in &task.xcom_input {
        let value = match input {
            XComInput::One(r) => reader.value(r, None).await?.unwrap_or(Value::Null),
            XComInput::List(refs) => {
                let mut items = Vec::with_capacity(refs.len());
                for r in refs {
                    items.push(reader.value(r, None).await?.unwrap_or(Value::Null));
                }
                Value::Array(items)
            }
            XComInput::Dict(refs) => {
                let mut items = serde_json::Map::new();
                for (name, r) in refs {
                    let v = reader.value(r, None).await?.unwrap_or(Value::Null);
                    items.insert(name.clone(), v);
                }
                Value::Object(items)
            }
        };
        inputs.insert(param.clone(), value);
    }

    let mut mapped_kwargs = BTreeMap::new();
    if let (Some(map), Ok(index)) = (&task.map, usize::try_from(attempt.task.map_index)) {
        let mut values: HashMap<XComRef, Value> = HashMap::new();
        for (_, source) in map.sources() {
            if let MapSource::Xcom(r) = source {
                if let Some(v) = reader.value(r, None).await? {
                    values.insert(r.clone(), v);
                }
            }
        }
        let resolve = |r: &XComRef| values.get(r).cloned();
        let all = mapping::expand(map, &resolve).map_err(Problem::internal)?;
        let count = all.len();
        mapped_kwargs = all.into_iter().nth(index).ok_or_else(|| {
            Problem::conflict(format!(
                "map index {index} is out of range: the task expands to {count} instances now"
            ))
        })?;
    }

    let defaults: BTreeMap<String, Value> = spec
        .params
        .iter()
        .map(|(k, p)| (k.clone(), p.value.clone()))
        .collect();
    let mut params = defaults.clone();
    if let Value::Object(conf) = &scope.run.conf {
        params.extend(conf.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    let timeout = scope.plan.policies[scope.idx].timeout;
    let (http_call, http_call_error) = if task.kind == TaskKind::HttpApi {
        match http_call(api, task, timeout).await? {
            Ok(call) => (Some(HttpCallDto::from(call)), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };

    let run = &scope.run;
    Ok(StartResponse {
        attempt: AttemptDto::from(attempt),
        task: serde_json::to_value(task).map_err(|e| Problem::internal(e.to_string()))?,
        dag: DagDto {
            dag_id: spec.dag_id.clone(),
            fileloc: spec.fileloc.clone(),
            dag_version: spec.dag_version.clone(),
            version_number: scope.plan.version_number,
            owner: spec.owner.clone(),
            params: defaults,
        },
        run: RunDto {
            run_id: run.run_id.clone(),
            run_type: run.run_type,
            logical_date: run.logical_date,
            data_interval_start: run.data_interval_start,
            data_interval_end: run.data_interval_end,
            run_after: run.run_after,
            conf: run.conf.clone(),
        },
        inputs,
        call_args: task.call_args.clone(),
        mapped_kwargs,
        params,
        heartbeat_interval_seconds: api.heartbeat_interval.as_secs_f64(),
        timeout_seconds: timeout.map(|t| t.as_secs_f64()),
        http_call,
        http_call_error,
    })
}

/// The call of an http_api task, its connection read here so the agent never needs the
/// datastore; `Ok(Err(why))` when the task's request cannot be resolved.
async fn http_call(
    api: &AgentApi,
    task: &TaskSpec,
    timeout: Option<Duration>,
) -> Result<Result<HttpCall, String>, Problem> {
    let needed = task
        .http_request
        .as_ref()
        .and_then(|r| r.needed_connection());
    let conn = match needed {
        Some(id) => api
            .engine
            .datastore()
            .get_connection(id)
            .await
            .map_err(datastore_problem)?,
        None => None,
    };
    Ok(resolve_call(task, conn.as_ref(), timeout))
}
