//! The compiled DAG artifact, `dag.json` schema 1.0 (`docs/dag-json.md`): the records the
//! control plane reads, and a parser that reports every unknown key with its JSON path.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::TriggerRule;

/// The only schema version this build reads and writes.
pub const SCHEMA_VERSION: &str = "1.0";

/// A whole compiled DAG (`dag.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagSpec {
    pub schema_version: String,
    pub dag_id: String,
    pub dag_version: String,
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Cron, preset or `@every <duration>`; `None` means manual runs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub catchup: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_runs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_tasks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dagrun_timeout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_args: Option<DefaultArgs>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Param>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_md: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fileloc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging: Option<Staging>,
    pub tasks: Vec<TaskSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl DagSpec {
    /// Parses `dag.json` bytes. Structural problems stop at the first one (serde cannot go
    /// on past a wrong type); unknown keys are all collected. Semantic checks (cycles,
    /// unknown upstreams, …) are `leoflow_core::validate`'s job.
    pub fn from_json(bytes: &[u8]) -> Result<DagSpec, ParseErrors> {
        let mut unknown = Vec::new();
        let mut json = serde_json::Deserializer::from_slice(bytes);
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(json_path(&path));
        let tracked = serde_ignored::Deserializer::new(&mut json, &mut record);
        let parsed: Result<DagSpec, _> = serde_path_to_error::deserialize(tracked);
        let mut errors: Vec<ParseError> = unknown
            .into_iter()
            .map(|path| ParseError {
                message: format!(
                    "unknown field `{}`; remove it or fix its spelling",
                    last_key(&path)
                ),
                path,
            })
            .collect();
        match parsed {
            Err(e) => {
                let path = e.path().to_string();
                errors.push(ParseError {
                    path: if path == "." { String::new() } else { path },
                    message: e.into_inner().to_string(),
                });
                Err(ParseErrors(errors))
            }
            Ok(spec) => {
                if let Err(e) = json.end() {
                    errors.push(ParseError {
                        path: String::new(),
                        message: e.to_string(),
                    });
                }
                if spec.schema_version != SCHEMA_VERSION {
                    errors.push(ParseError {
                        path: "schema_version".into(),
                        message: format!(
                            "schema_version {:?} is not supported; this Leoflow reads \"{SCHEMA_VERSION}\"",
                            spec.schema_version
                        ),
                    });
                }
                if errors.is_empty() {
                    Ok(spec)
                } else {
                    Err(ParseErrors(errors))
                }
            }
        }
    }

    /// The task with this id, if the DAG has one.
    pub fn task(&self, task_id: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.task_id == task_id)
    }

    /// The DAG-level fallbacks, or all-default ones.
    pub fn defaults(&self) -> DefaultArgs {
        self.default_args.clone().unwrap_or_default()
    }
}

/// DAG-level fallbacks for task settings (`default_args`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DefaultArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_exponential_backoff: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timeout_seconds: Option<f64>,
}

/// A DAG parameter as Airflow's trigger form reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    #[serde(default)]
    pub value: Value,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "empty_object")]
    pub schema: Value,
}

/// The optional per-run shared volume (pod executor).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Staging {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

/// One task of a DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task_id: String,
    #[serde(rename = "type")]
    pub kind: TaskKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_setup: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_teardown: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "TriggerRule::is_default")]
    pub trigger_rule: TriggerRule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_exponential_backoff: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timeout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<ExecutionMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_request: Option<HttpRequest>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xcom_input: BTreeMap<String, XComInput>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub call_args: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xcom_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub multiple_outputs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_downstream_trigger_rules: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<SensorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<MapSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_md: Option<String>,
}

impl TaskSpec {
    /// A minimal task of the given kind, for builders and tests.
    pub fn new(task_id: impl Into<String>, kind: TaskKind) -> TaskSpec {
        TaskSpec {
            task_id: task_id.into(),
            kind,
            operator: None,
            task_group: None,
            is_setup: false,
            is_teardown: false,
            depends_on: Vec::new(),
            trigger_rule: TriggerRule::AllSuccess,
            retries: None,
            retry_delay_seconds: None,
            retry_exponential_backoff: None,
            max_retry_delay_seconds: None,
            execution_timeout_seconds: None,
            execution_mode: None,
            entrypoint: None,
            http_request: None,
            env: BTreeMap::new(),
            secrets: Vec::new(),
            resources: None,
            execution: None,
            xcom_input: BTreeMap::new(),
            call_args: BTreeMap::new(),
            xcom_schema: None,
            multiple_outputs: false,
            branch: None,
            ignore_downstream_trigger_rules: None,
            sensor: None,
            map: None,
            doc_md: None,
        }
    }

    /// Where this task runs: explicit mode, else inline for http_api and pod otherwise.
    pub fn effective_mode(&self) -> ExecutionMode {
        self.execution_mode.unwrap_or(match self.kind {
            TaskKind::HttpApi => ExecutionMode::Inline,
            _ => ExecutionMode::Pod,
        })
    }

    /// The operator name Airflow would show for this task.
    pub fn operator_name(&self) -> &str {
        self.operator.as_deref().unwrap_or(match self.kind {
            TaskKind::Python => "PythonOperator",
            TaskKind::Bash => "BashOperator",
            TaskKind::HttpApi => "HttpOperator",
            TaskKind::Empty => "EmptyOperator",
        })
    }

    /// Every upstream task whose XCom this task reads (inputs and map sources).
    pub fn xcom_upstreams(&self) -> impl Iterator<Item = (&str, &XComRef)> {
        let inputs = self
            .xcom_input
            .iter()
            .flat_map(|(param, input)| input.refs().map(move |r| (param.as_str(), r)));
        let map = self
            .map
            .iter()
            .flat_map(MapSpec::sources)
            .filter_map(|(param, source)| match source {
                MapSource::Xcom(r) => Some((param, r)),
                MapSource::Literal(_) => None,
            });
        inputs.chain(map)
    }
}

/// What runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Python,
    Bash,
    HttpApi,
    /// Succeeds in the scheduler; nothing is launched.
    Empty,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Python => "python",
            TaskKind::Bash => "bash",
            TaskKind::HttpApi => "http_api",
            TaskKind::Empty => "empty",
        }
    }
}

/// Inline (inside the control plane, http_api only) or in its own pod/process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    Inline,
    Pod,
}

/// How a task's outcome selects its downstream tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchKind {
    /// Returns the task id(s) to follow; other direct downstream tasks are skipped.
    Branch,
    /// A falsy return value skips downstream tasks.
    ShortCircuit,
    /// Skips direct downstream tasks unless the run is manual or the latest interval.
    LatestOnly,
}

/// The request of an http_api task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_status_codes: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_conn_id: Option<String>,
}

/// HTTP methods an http_api task may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// Kubernetes resource requests and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
}

/// CPU and memory quantities in Kubernetes notation (`500m`, `1Gi`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Pod placement hints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
}

/// Kubernetes image pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// Sensor behaviour: the runtime pokes until the condition holds or the timeout passes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SensorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poke_interval_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_fail: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_backoff: Option<bool>,
}

/// The XCom key a task's return value is stored under.
pub const RETURN_VALUE: &str = "return_value";

/// A reference to one XCom of an upstream task. Written as the bare task id when the key
/// is `return_value`, else as `{"task_id", "key"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct XComRef {
    pub task_id: String,
    pub key: String,
}

impl XComRef {
    /// The `return_value` of `task_id`.
    pub fn return_value(task_id: impl Into<String>) -> XComRef {
        XComRef {
            task_id: task_id.into(),
            key: RETURN_VALUE.into(),
        }
    }

    fn from_value(value: &Value) -> Result<XComRef, String> {
        match value {
            Value::String(id) => Ok(XComRef::return_value(id.clone())),
            Value::Object(map) => {
                let Some(Value::String(task_id)) = map.get("task_id") else {
                    return Err("an XCom reference object needs a string `task_id`".into());
                };
                let key = match map.get("key") {
                    None | Some(Value::Null) => RETURN_VALUE.to_string(),
                    Some(Value::String(k)) => k.clone(),
                    Some(_) => return Err("an XCom reference `key` must be a string".into()),
                };
                if let Some(extra) = map.keys().find(|k| *k != "task_id" && *k != "key") {
                    return Err(format!(
                        "unknown field `{extra}` in an XCom reference; only `task_id` and `key` are allowed"
                    ));
                }
                Ok(XComRef {
                    task_id: task_id.clone(),
                    key,
                })
            }
            _ => Err("an XCom reference is a task id string or {\"task_id\", \"key\"}".into()),
        }
    }

    fn to_value(&self) -> Value {
        if self.key == RETURN_VALUE {
            Value::String(self.task_id.clone())
        } else {
            serde_json::json!({"task_id": self.task_id, "key": self.key})
        }
    }
}

impl Serialize for XComRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for XComRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        XComRef::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// How one parameter is bound to upstream results.
#[derive(Debug, Clone, PartialEq)]
pub enum XComInput {
    One(XComRef),
    /// List fan-in: the parameter receives a list of the values, in order.
    List(Vec<XComRef>),
    /// Dict fan-in: `{"dict": {"name": ref, …}}`.
    Dict(BTreeMap<String, XComRef>),
}

impl XComInput {
    /// Every reference this input reads.
    pub fn refs(&self) -> Box<dyn Iterator<Item = &XComRef> + '_> {
        match self {
            XComInput::One(r) => Box::new(std::iter::once(r)),
            XComInput::List(rs) => Box::new(rs.iter()),
            XComInput::Dict(rs) => Box::new(rs.values()),
        }
    }
}

impl Serialize for XComInput {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let value = match self {
            XComInput::One(r) => r.to_value(),
            XComInput::List(rs) => Value::Array(rs.iter().map(XComRef::to_value).collect()),
            XComInput::Dict(rs) => {
                let inner: serde_json::Map<String, Value> =
                    rs.iter().map(|(k, r)| (k.clone(), r.to_value())).collect();
                serde_json::json!({ "dict": inner })
            }
        };
        value.serialize(s)
    }
}

impl<'de> Deserialize<'de> for XComInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let parse = |value: &Value| -> Result<XComInput, String> {
            match value {
                Value::Array(items) => items
                    .iter()
                    .map(XComRef::from_value)
                    .collect::<Result<_, _>>()
                    .map(XComInput::List),
                Value::Object(map) if map.contains_key("dict") => {
                    if map.len() != 1 {
                        return Err("a dict fan-in is exactly {\"dict\": {name: reference}}".into());
                    }
                    let Some(Value::Object(entries)) = map.get("dict") else {
                        return Err("`dict` must map names to XCom references".into());
                    };
                    entries
                        .iter()
                        .map(|(k, v)| XComRef::from_value(v).map(|r| (k.clone(), r)))
                        .collect::<Result<_, _>>()
                        .map(XComInput::Dict)
                }
                other => XComRef::from_value(other).map(XComInput::One),
            }
        };
        parse(&value).map_err(serde::de::Error::custom)
    }
}

/// Dynamic task mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapSpec {
    /// `.expand(param=…)`: one instance per element; several parameters give the cartesian
    /// product, taken in parameter-name order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<BTreeMap<String, MapSource>>,
    /// `.expand_kwargs(list_of_dicts)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand_kwargs: Option<MapSource>,
}

impl MapSpec {
    /// Every source with the parameter it feeds (`""` for `expand_kwargs`).
    pub fn sources(&self) -> impl Iterator<Item = (&str, &MapSource)> {
        let expand = self.expand.iter().flatten().map(|(k, v)| (k.as_str(), v));
        expand.chain(self.expand_kwargs.iter().map(|s| ("", s)))
    }
}

/// Where mapped values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum MapSource {
    /// `{"literal": [...]}`, known at compile time.
    Literal(Vec<Value>),
    /// An upstream XCom holding a list (or a dict, mapped over its items).
    Xcom(XComRef),
}

impl Serialize for MapSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MapSource::Literal(items) => serde_json::json!({ "literal": items }).serialize(s),
            MapSource::Xcom(r) => r.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MapSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        if let Value::Object(map) = &value {
            if let Some(literal) = map.get("literal") {
                return match (literal, map.len()) {
                    (Value::Array(items), 1) => Ok(MapSource::Literal(items.clone())),
                    _ => Err(serde::de::Error::custom(
                        "a literal map source is exactly {\"literal\": [values]}",
                    )),
                };
            }
        }
        XComRef::from_value(&value)
            .map(MapSource::Xcom)
            .map_err(serde::de::Error::custom)
    }
}

/// One problem found while reading `dag.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// JSON path such as `tasks[3].retries`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "dag.json: {}", self.message)
        } else {
            write!(f, "dag.json {}: {}", self.path, self.message)
        }
    }
}

/// Every problem found while reading one `dag.json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseErrors(pub Vec<ParseError>);

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

fn json_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", json_path(parent)),
        Path::Map { parent, key } => {
            let parent = json_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => json_path(parent),
    }
}

fn last_key(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<DagSpec, ParseErrors> {
        DagSpec::from_json(json.as_bytes())
    }

    const MINIMAL: &str = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"",
        "tasks":[{"task_id":"a","type":"python","entrypoint":"dag.py:a"}]}"#;

    #[test]
    fn minimal_document_parses_with_defaults() {
        let spec = parse(MINIMAL).unwrap();
        assert_eq!(spec.dag_id, "d");
        let task = &spec.tasks[0];
        assert_eq!(task.trigger_rule, TriggerRule::AllSuccess);
        assert_eq!(task.effective_mode(), ExecutionMode::Pod);
        assert_eq!(task.operator_name(), "PythonOperator");
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_path() {
        let json = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"","stagin":{},
            "tasks":[{"task_id":"a","type":"bash","entrypoint":"true","retires":2},
                     {"task_id":"b","type":"bash","entrypoint":"true","resources":{"requests":{"gpu":"1"}}}]}"#;
        let errors = parse(json).unwrap_err().0;
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "stagin",
                "tasks[0].retires",
                "tasks[1].resources.requests.gpu"
            ]
        );
        assert!(
            errors[1].message.contains("unknown field `retires`"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn wrong_types_name_the_path() {
        let json = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"",
            "tasks":[{"task_id":"a","type":"bash","retries":"two"}]}"#;
        let errors = parse(json).unwrap_err().0;
        assert_eq!(errors[0].path, "tasks[0].retries");
    }

    #[test]
    fn unknown_task_type_and_trigger_rule_are_rejected() {
        let json = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"",
            "tasks":[{"task_id":"a","type":"docker"}]}"#;
        assert_eq!(parse(json).unwrap_err().0[0].path, "tasks[0].type");
        let json = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"",
            "tasks":[{"task_id":"a","type":"bash","trigger_rule":"sometimes"}]}"#;
        assert_eq!(parse(json).unwrap_err().0[0].path, "tasks[0].trigger_rule");
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let json = MINIMAL.replace("\"1.0\"", "\"2.0\"");
        let errors = parse(&json).unwrap_err().0;
        assert_eq!(errors[0].path, "schema_version");
    }

    #[test]
    fn xcom_inputs_take_every_documented_form() {
        let json = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"",
            "tasks":[{"task_id":"c","type":"python","entrypoint":"dag.py:c","depends_on":["a","b"],
              "xcom_input":{"one":"a","keyed":{"task_id":"a","key":"k"},"many":["a","b"],
                            "named":{"dict":{"x":"a","y":{"task_id":"b","key":"z"}}}}}]}"#;
        let spec = parse(json).unwrap();
        let inputs = &spec.tasks[0].xcom_input;
        assert_eq!(inputs["one"], XComInput::One(XComRef::return_value("a")));
        assert_eq!(
            inputs["keyed"],
            XComInput::One(XComRef {
                task_id: "a".into(),
                key: "k".into()
            })
        );
        assert!(matches!(&inputs["many"], XComInput::List(v) if v.len() == 2));
        assert!(matches!(&inputs["named"], XComInput::Dict(m) if m["y"].key == "z"));
        let back = serde_json::to_value(&spec).unwrap();
        let again: DagSpec = serde_json::from_value(back).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn map_sources_parse_literals_and_references() {
        let json = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"",
            "tasks":[{"task_id":"m","type":"python","entrypoint":"dag.py:m","depends_on":["src"],
              "map":{"expand":{"x":{"literal":[1,2,3]},"y":"src"}}}]}"#;
        let spec = parse(json).unwrap();
        let map = spec.tasks[0].map.as_ref().unwrap();
        let expand = map.expand.as_ref().unwrap();
        assert_eq!(
            expand["x"],
            MapSource::Literal(vec![1.into(), 2.into(), 3.into()])
        );
        assert_eq!(expand["y"], MapSource::Xcom(XComRef::return_value("src")));
        let ups: Vec<_> = spec.tasks[0]
            .xcom_upstreams()
            .map(|(_, r)| r.task_id.clone())
            .collect();
        assert_eq!(ups, ["src"]);
    }

    #[test]
    fn bad_xcom_reference_is_explained() {
        let json = r#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"",
            "tasks":[{"task_id":"c","type":"python","xcom_input":{"p":{"task":"a"}}}]}"#;
        let errors = parse(json).unwrap_err().0;
        assert_eq!(errors[0].path, "tasks[0].xcom_input.p");
        assert!(
            errors[0].message.contains("task_id"),
            "{}",
            errors[0].message
        );
    }
}
