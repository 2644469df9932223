//! `leoflow.yaml`, the project file: its strict model (unknown and duplicate keys are
//! errors), the schema rules of `leoflow.yaml` 1.0, and the line of any key path so every
//! problem is reported as `leoflow.yaml:<line>: <key path>: <message>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use leoflow_ports::dag::{PullPolicy, ResourceList, Resources};

/// The project file's name inside a project directory.
pub const FILE_NAME: &str = "leoflow.yaml";

/// The DAG source used when `dag_source` is not set.
pub const DEFAULT_DAG_SOURCE: &str = "dag.py";

/// The only `schema_version` this build reads.
pub const SCHEMA_VERSION: &str = "1.0";

/// Python versions a task image may use.
pub const PYTHON_VERSIONS: &[&str] = &["3.10", "3.11", "3.12", "3.13"];

/// The most retries a task may have (dag.json's limit).
pub const MAX_RETRIES: u32 = 100;

/// A loaded, schema-checked project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory as the user gave it.
    pub dir: PathBuf,
    /// The text of `leoflow.yaml`, to locate keys in.
    pub text: String,
    pub config: Config,
}

/// `leoflow.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub schema_version: Option<String>,
    /// Selects the DAG when the source defines several; must match it otherwise.
    pub dag_id: Option<String>,
    /// Replaces the DAG's description.
    pub description: Option<String>,
    /// The DAG's owner.
    pub owner: Option<String>,
    /// When non-empty, replaces the DAG's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The task image's Python (`"3.10"` … `"3.13"`).
    pub python_version: Option<String>,
    pub base_image: Option<String>,
    /// pip requirement specifiers the tasks need.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// apt packages the task image needs.
    #[serde(default)]
    pub system_packages: Vec<String>,
    /// The DAG file, relative to the project directory (default `dag.py`).
    pub dag_source: Option<String>,
    pub include_paths: Option<Vec<String>>,
    pub exclude_paths: Option<Vec<String>>,
    pub build: Option<Build>,
    pub registry: Option<Registry>,
    /// L1: DAG-wide defaults, written to dag.json `default_args`.
    pub defaults: Option<Defaults>,
    /// The per-run shared volume (pod executor).
    pub staging: Option<Staging>,
    /// L2: per-task overrides, written onto the tasks.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskOverride>,
}

/// `build:` — how the task image is built.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub dockerfile: Option<String>,
    pub context: Option<String>,
    pub platforms: Option<Vec<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `registry:` — where the task image is pushed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub url: Option<String>,
    pub auth_method: Option<AuthMethod>,
    pub image_name: Option<String>,
    pub tag_strategy: Option<TagStrategy>,
}

/// How the registry is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    DockerConfig,
    Env,
    Iam,
}

/// How image tags are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagStrategy {
    Version,
    GitSha,
    GitTag,
    Custom,
}

/// `defaults:` (L1).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub retries: Option<u32>,
    pub retry_delay_seconds: Option<f64>,
    pub retry_exponential_backoff: Option<bool>,
    pub max_retry_delay_seconds: Option<f64>,
    pub execution_timeout_seconds: Option<f64>,
    /// Resource requests for every task that sets none of its own.
    pub resources: Option<DefaultResources>,
}

/// `defaults.resources`: requests applied to tasks without resources.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultResources {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

/// `staging:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staging {
    #[serde(default)]
    pub enabled: bool,
    pub size: Option<String>,
    pub storage_class: Option<String>,
}

/// `tasks.<task_id>:` (L2).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOverride {
    pub retries: Option<u32>,
    pub retry_delay_seconds: Option<f64>,
    pub retry_exponential_backoff: Option<bool>,
    pub max_retry_delay_seconds: Option<f64>,
    pub execution_timeout_seconds: Option<f64>,
    /// Merged key by key over the task's env.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Replaces the task's resources.
    pub resources: Option<TaskResources>,
    /// Replaces the task's pod placement.
    pub execution: Option<TaskExecution>,
}

/// `tasks.<id>.resources`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskResources {
    pub requests: Option<Quantities>,
    pub limits: Option<Quantities>,
}

/// CPU and memory quantities.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantities {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

/// `tasks.<id>.execution`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskExecution {
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<serde_json::Value>,
    pub service_account: Option<String>,
    pub image_pull_policy: Option<PullPolicy>,
}

impl From<&Quantities> for ResourceList {
    fn from(q: &Quantities) -> Self {
        ResourceList {
            cpu: q.cpu.clone(),
            memory: q.memory.clone(),
        }
    }
}

impl From<&TaskResources> for Resources {
    fn from(r: &TaskResources) -> Self {
        Resources {
            requests: r.requests.as_ref().map(ResourceList::from),
            limits: r.limits.as_ref().map(ResourceList::from),
        }
    }
}

/// One step of a key path in `leoflow.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A key path such as `tasks.extract.retries` or `tags[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    /// A path of plain keys.
    pub fn of(keys: &[&str]) -> KeyPath {
        KeyPath(
            keys.iter()
                .map(|k| Segment::Key((*k).to_string()))
                .collect(),
        )
    }

    /// This path with one more key.
    pub fn key(&self, key: &str) -> KeyPath {
        let mut next = self.0.clone();
        next.push(Segment::Key(key.to_string()));
        KeyPath(next)
    }

    /// This path with one more index.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut next = self.0.clone();
        next.push(Segment::Index(index));
        KeyPath(next)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if k.is_empty() || k.contains(['.', ' ', '[', ']', '"']) {
                        write!(f, "{k:?}")?;
                    } else {
                        f.write_str(k)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One problem in `leoflow.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key concerned; empty for the document itself.
    pub path: KeyPath,
    pub line: Option<u32>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.0.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} problem(s) in leoflow.yaml", .0.len())]
    Invalid(Vec<Problem>),
}

impl Project {
    /// Does `dir` hold a `leoflow.yaml`?
    pub fn is_project(dir: &Path) -> bool {
        dir.join(FILE_NAME).is_file()
    }

    /// `leoflow.yaml` as shown to the user.
    pub fn file(&self) -> PathBuf {
        crate::diagnostic::shown(&self.dir, Path::new(FILE_NAME))
    }

    /// Reads and parses `<dir>/leoflow.yaml`: syntax, duplicate keys, unknown keys and
    /// types. The remaining schema rules are [`Project::problems`].
    pub fn load(dir: &Path) -> Result<Project, Error> {
        let path = dir.join(FILE_NAME);
        let text = fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let config = parse(&text).map_err(|p| Error::Invalid(vec![p]))?;
        Ok(Project {
            dir: dir.to_path_buf(),
            text,
            config,
        })
    }

    /// The DAG source file, relative to the project directory.
    pub fn dag_source(&self) -> PathBuf {
        PathBuf::from(
            self.config
                .dag_source
                .as_deref()
                .unwrap_or(DEFAULT_DAG_SOURCE),
        )
    }

    /// A problem at `path`, with its line.
    pub fn problem(&self, path: KeyPath, message: impl Into<String>) -> Problem {
        Problem {
            line: locate(&self.text, &path.0, 0),
            path,
            message: message.into(),
        }
    }

    /// The schema rules serde cannot express; every problem is returned.
    pub fn problems(&self) -> Vec<Problem> {
        let c = &self.config;
        let mut problems = Vec::new();
        let mut report =
            |path: KeyPath, message: String| problems.push(self.problem(path, message));
        if let Some(v) = &c.schema_version {
            if v != SCHEMA_VERSION {
                report(
                    KeyPath::of(&["schema_version"]),
                    format!("schema_version {v:?} is not supported; this Leoflow reads \"{SCHEMA_VERSION}\""),
                );
            }
        }
        if let Some(id) = &c.dag_id {
            if !is_valid_dag_id(id) {
                report(
                    KeyPath::of(&["dag_id"]),
                    format!("{id:?} is not a valid dag_id: use 1–200 letters, digits, '_' or '-', starting with a letter, digit or '_'"),
                );
            }
        }
        if let Some(v) = &c.python_version {
            if !PYTHON_VERSIONS.contains(&v.as_str()) {
                report(
                    KeyPath::of(&["python_version"]),
                    format!(
                        "python_version {v:?} is not supported; use one of {} (quoted, e.g. \"3.11\")",
                        PYTHON_VERSIONS.join(", ")
                    ),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (i, tag) in c.tags.iter().enumerate() {
            let path = KeyPath::of(&["tags"]).index(i);
            if tag.trim().is_empty() {
                report(path, "a tag cannot be empty".into());
            } else if !seen.insert(tag) {
                report(path, format!("tag {tag:?} is listed twice"));
            }
        }
        if let Some(source) = &c.dag_source {
            let p = Path::new(source);
            if source.is_empty() || p.is_absolute() {
                report(
                    KeyPath::of(&["dag_source"]),
                    "dag_source must be a path relative to leoflow.yaml, such as dag.py".into(),
                );
            } else if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("py")) {
                report(
                    KeyPath::of(&["dag_source"]),
                    format!("dag_source {source:?} must be a Python file (.py)"),
                );
            }
        }
        if let Some(d) = &c.defaults {
            let base = KeyPath::of(&["defaults"]);
            timings(
                &mut report,
                &base,
                d.retries,
                d.retry_delay_seconds,
                d.max_retry_delay_seconds,
                d.execution_timeout_seconds,
            );
            if let Some(r) = &d.resources {
                let base = base.key("resources");
                quantity(&mut report, &base.key("cpu"), r.cpu.as_deref());
                quantity(&mut report, &base.key("memory"), r.memory.as_deref());
            }
        }
        if let Some(s) = &c.staging {
            quantity(
                &mut report,
                &KeyPath::of(&["staging", "size"]),
                s.size.as_deref(),
            );
        }
        for (id, o) in &c.tasks {
            let base = KeyPath::of(&["tasks", id]);
            timings(
                &mut report,
                &base,
                o.retries,
                o.retry_delay_seconds,
                o.max_retry_delay_seconds,
                o.execution_timeout_seconds,
            );
            for name in o.env.keys() {
                if !is_env_name(name) {
                    report(
                        base.key("env").key(name),
                        format!("{name:?} is not a valid environment variable name (letters, digits and '_', not starting with a digit)"),
                    );
                }
            }
            if let Some(r) = &o.resources {
                for (which, list) in [("requests", &r.requests), ("limits", &r.limits)] {
                    if let Some(list) = list {
                        let at = base.key("resources").key(which);
                        quantity(&mut report, &at.key("cpu"), list.cpu.as_deref());
                        quantity(&mut report, &at.key("memory"), list.memory.as_deref());
                    }
                }
            }
            if let Some(e) = &o.execution {
                for (i, t) in e.tolerations.iter().enumerate() {
                    if !t.is_object() {
                        report(
                            base.key("execution").key("tolerations").index(i),
                            "a toleration is a mapping such as {key: gpu, operator: Exists, effect: NoSchedule}".into(),
                        );
                    }
                }
            }
        }
        problems
    }
}

fn timings(
    report: &mut impl FnMut(KeyPath, String),
    base: &KeyPath,
    retries: Option<u32>,
    retry_delay: Option<f64>,
    max_retry_delay: Option<f64>,
    timeout: Option<f64>,
) {
    if retries.is_some_and(|r| r > MAX_RETRIES) {
        report(
            base.key("retries"),
            format!("at most {MAX_RETRIES} retries are allowed"),
        );
    }
    for (name, value) in [
        ("retry_delay_seconds", retry_delay),
        ("max_retry_delay_seconds", max_retry_delay),
    ] {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            report(base.key(name), "must be a number of seconds ≥ 0".into());
        }
    }
    if timeout.is_some_and(|v| !v.is_finite() || v <= 0.0) {
        report(
            base.key("execution_timeout_seconds"),
            "must be a number of seconds > 0".into(),
        );
    }
}

fn quantity(report: &mut impl FnMut(KeyPath, String), path: &KeyPath, value: Option<&str>) {
    if let Some(q) = value {
        if !is_quantity(q) {
            report(
                path.clone(),
                format!("{q:?} is not a Kubernetes quantity (examples: 500m, 2, 256Mi, 1Gi)"),
            );
        }
    }
}

/// The leoflow.yaml dag_id rule: 1–200 of `[A-Za-z0-9_-]`, not starting with `-`.
pub fn is_valid_dag_id(id: &str) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    id.len() <= 200
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Kubernetes resource quantity such as `500m`, `2`, `1.5`, `256Mi`, `1e3`.
fn is_quantity(q: &str) -> bool {
    let number = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[number.len()..];
    let plain = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit())
        && matches!(
            suffix,
            "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
        );
    let exponent = q.split_once(['e', 'E']).is_some_and(|(m, e)| {
        !m.is_empty() && m.parse::<f64>().is_ok() && e.parse::<i32>().is_ok()
    });
    plain || exponent
}

/// Parses the text into a [`Config`]: YAML syntax and duplicate keys first (anywhere in
/// the document), then the typed model (unknown keys, wrong types).
fn parse(text: &str) -> Result<Config, Problem> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    if let Err(e) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        return Err(syntax_problem(text, &e));
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, Config>(de).map_err(|e| {
        let path = KeyPath(
            e.path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                    _ => None,
                })
                .collect(),
        );
        let inner = e.inner();
        let line = locate(text, &path.0, 0).or_else(|| inner.location().map(|l| l.line() as u32));
        let mut message = strip_location(&inner.to_string());
        let dotted = e.path().to_string();
        let parent = dotted.rsplit_once('.').map(|(p, _)| p.to_string());
        for prefix in std::iter::once(dotted).chain(parent) {
            if let Some(rest) = message.strip_prefix(&format!("{prefix}: ")) {
                message = rest.to_string();
                break;
            }
        }
        message = message
            .replace("expected u32", "expected a whole number ≥ 0")
            .replace("expected f64", "expected a number");
        if message.starts_with("unknown field") {
            message.push_str("; remove it or fix its spelling");
        }
        Problem {
            path,
            line,
            message,
        }
    })
}

/// A YAML syntax or duplicate-key error, at the line of the offending key when known.
fn syntax_problem(text: &str, e: &serde_yaml_ng::Error) -> Problem {
    let full = strip_location(&e.to_string());
    let line = e.location().map(|l| l.line() as u32);
    if let Some((prefix, key)) = full.split_once("duplicate entry with key ") {
        let key = key.trim().trim_matches('"').to_string();
        let map: Vec<Segment> = prefix
            .trim_end_matches(": ")
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| Segment::Key(s.to_string()))
            .collect();
        let mut path = map.clone();
        path.push(Segment::Key(key.clone()));
        return Problem {
            line: locate(text, &path, 1).or(line),
            path: KeyPath(path),
            message: format!(
                "duplicate key {key:?}: each key may appear only once (a task id may be overridden once)"
            ),
        };
    }
    Problem {
        path: KeyPath::default(),
        line,
        message: format!("invalid YAML: {full}"),
    }
}

/// Drops serde_yaml's trailing `at line N column M` (the line is reported separately).
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => {
            let rest = &message[i + " at line ".len()..];
            let end = rest
                .find(", ")
                .map_or(message.len(), |j| i + " at line ".len() + j);
            let mut out = message[..i].to_string();
            out.push_str(&message[end..]);
            out
        }
        None => message.to_string(),
    }
}

/// One meaningful line of the YAML text.
struct Line<'a> {
    number: u32,
    indent: usize,
    body: &'a str,
}

/// The 1-based line of `path` in block-style YAML text; `occurrence` picks among repeated
/// keys for the last segment (0 = first). Falls back to the deepest ancestor found.
pub fn locate(text: &str, path: &[Segment], occurrence: usize) -> Option<u32> {
    let lines: Vec<Line> = text
        .lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let body = raw.trim_start();
            (!body.is_empty() && !body.starts_with('#') && body != "---" && !body.starts_with('%'))
                .then(|| Line {
                    number: i as u32 + 1,
                    indent: raw.len() - body.len(),
                    body,
                })
        })
        .collect();
    let mut start = 0;
    let mut parent: Option<usize> = None;
    let mut found = None;
    for (depth, segment) in path.iter().enumerate() {
        let end = lines[start..]
            .iter()
            .position(|l| parent.is_some_and(|p| l.indent <= p))
            .map_or(lines.len(), |i| start + i);
        let block = &lines[start..end];
        let Some(child) = block.first().map(|l| l.indent) else {
            break;
        };
        let nth = if depth + 1 == path.len() {
            occurrence
        } else {
            0
        };
        let hit = match segment {
            Segment::Key(key) => block
                .iter()
                .enumerate()
                .filter(|(_, l)| l.indent == child && key_of(l.body).as_deref() == Some(key))
                .nth(nth),
            Segment::Index(n) => block
                .iter()
                .enumerate()
                .filter(|(_, l)| l.indent == child && (l.body == "-" || l.body.starts_with("- ")))
                .nth(*n),
        };
        let Some((i, line)) = hit else { break };
        found = Some(line.number);
        parent = Some(line.indent);
        start += i + 1;
    }
    found
}

/// The key a `key: value` line starts with.
fn key_of(body: &str) -> Option<String> {
    if let Some(quote) = body.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let rest = &body[1..];
        let close = rest.find(quote)?;
        return rest[close + 1..]
            .trim_start()
            .starts_with(':')
            .then(|| rest[..close].to_string());
    }
    let colon = body
        .match_indices(':')
        .map(|(i, _)| i)
        .find(|&i| body[i + 1..].is_empty() || body[i + 1..].starts_with([' ', '\t']))?;
    Some(body[..colon].trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Project, Vec<Problem>> {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(FILE_NAME), text).unwrap();
        match Project::load(tmp.path()) {
            Ok(p) if p.problems().is_empty() => Ok(p),
            Ok(p) => Err(p.problems()),
            Err(Error::Invalid(problems)) => Err(problems),
            Err(e) => panic!("{e}"),
        }
    }

    /// `text` must fail with exactly these `(line, "path: message" substring)` problems.
    fn check_problems(text: &str, expected: &[(u32, &str)]) {
        let problems = load(text).unwrap_err();
        let got: Vec<(Option<u32>, String)> =
            problems.iter().map(|p| (p.line, p.to_string())).collect();
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for ((line, text), (want_line, want)) in got.iter().zip(expected) {
            assert_eq!(*line, Some(*want_line), "{text}");
            assert!(text.contains(want), "{text:?} lacks {want:?}");
        }
    }

    const FULL: &str = r#"schema_version: "1.0"
dag_id: etl
description: Nightly ETL
owner: data
tags: [etl, nightly]
python_version: "3.11"
dependencies: ["requests>=2"]
dag_source: dag.py
build:
  dockerfile: Dockerfile
  platforms: [linux/amd64]
registry:
  url: ghcr.io/acme
  auth_method: env
  tag_strategy: git_sha
defaults:
  retries: 2
  retry_delay_seconds: 30
  execution_timeout_seconds: 600
  resources: {cpu: 250m, memory: 256Mi}
staging:
  enabled: true
  size: 2Gi
tasks:
  extract:
    retries: 5
    env:
      MODE: full
      LIMIT: 10
    resources:
      requests: {cpu: "1", memory: 1Gi}
    execution:
      node_selector: {pool: etl}
      image_pull_policy: IfNotPresent
  "group.load":
    execution_timeout_seconds: 30
"#;

    #[test]
    fn a_full_file_loads() {
        let p = load(FULL).unwrap();
        let c = &p.config;
        assert_eq!(c.dag_id.as_deref(), Some("etl"));
        assert_eq!(c.tags, ["etl", "nightly"]);
        assert_eq!(
            c.registry.as_ref().unwrap().auth_method,
            Some(AuthMethod::Env)
        );
        assert_eq!(c.defaults.as_ref().unwrap().retry_delay_seconds, Some(30.0));
        let extract = &c.tasks["extract"];
        assert_eq!(extract.retries, Some(5));
        assert_eq!(extract.env["LIMIT"], "10");
        assert_eq!(
            extract.execution.as_ref().unwrap().image_pull_policy,
            Some(PullPolicy::IfNotPresent)
        );
        assert_eq!(c.tasks["group.load"].execution_timeout_seconds, Some(30.0));
        assert_eq!(p.dag_source(), PathBuf::from("dag.py"));
    }

    #[test]
    fn an_empty_file_is_an_empty_project() {
        assert_eq!(load("").unwrap().config, Config::default());
        assert_eq!(load("# nothing\n").unwrap().config, Config::default());
    }

    #[test]
    fn unknown_keys_are_errors_with_path_and_line() {
        check_problems(
            "dag_id: etl\nstagin:\n  enabled: true\n",
            &[(2, "unknown field `stagin`")],
        );
        check_problems(
            "dag_id: etl\ntasks:\n  extract:\n    retires: 2\n",
            &[(4, "tasks.extract.retires: unknown field `retires`")],
        );
        check_problems(
            "dag_id: etl\ntasks:\n  extract:\n    resources:\n      requests: {gpu: 1}\n",
            &[(5, "tasks.extract.resources.requests")],
        );
    }

    #[test]
    fn duplicate_keys_are_errors_at_the_second_occurrence() {
        check_problems(
            "dag_id: a\nowner: x\ndag_id: b\n",
            &[(3, "dag_id: duplicate key \"dag_id\"")],
        );
        check_problems(
            "tasks:\n  x:\n    retries: 1\n  y: {}\n  x:\n    retries: 2\n",
            &[(5, "tasks.x: duplicate key \"x\"")],
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        check_problems(
            "dag_id: etl\ntasks:\n  extract:\n    retries: -1\n",
            &[(
                4,
                "tasks.extract.retries: invalid type: integer `-1`, expected a whole number ≥ 0",
            )],
        );
        check_problems("tags: etl\n", &[(1, "tags: invalid type")]);
        check_problems(
            "registry:\n  auth_method: password\n",
            &[(2, "registry.auth_method: unknown variant `password`")],
        );
    }

    #[test]
    fn schema_rules_are_all_reported() {
        check_problems(
            r#"schema_version: "2.0"
dag_id: "-bad.id"
python_version: "2.7"
tags: [a, b, a]
dag_source: dag.txt
defaults:
  retries: 101
  retry_delay_seconds: -1
staging:
  size: lots
tasks:
  t:
    execution_timeout_seconds: 0
    env:
      1BAD: x
    resources:
      limits: {memory: "1 GB"}
    execution:
      tolerations: [gpu]
"#,
            &[
                (1, "schema_version: schema_version \"2.0\" is not supported"),
                (2, "dag_id: \"-bad.id\" is not a valid dag_id"),
                (3, "python_version: python_version \"2.7\" is not supported"),
                (4, "tags[2]: tag \"a\" is listed twice"),
                (
                    5,
                    "dag_source: dag_source \"dag.txt\" must be a Python file",
                ),
                (7, "defaults.retries: at most 100 retries"),
                (
                    8,
                    "defaults.retry_delay_seconds: must be a number of seconds ≥ 0",
                ),
                (10, "staging.size: \"lots\" is not a Kubernetes quantity"),
                (
                    13,
                    "tasks.t.execution_timeout_seconds: must be a number of seconds > 0",
                ),
                (
                    15,
                    "tasks.t.env.1BAD: \"1BAD\" is not a valid environment variable name",
                ),
                (17, "tasks.t.resources.limits.memory"),
                (
                    19,
                    "tasks.t.execution.tolerations[0]: a toleration is a mapping",
                ),
            ],
        );
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        check_problems("dag_id: [etl\nowner: x\n", &[(2, "invalid YAML")]);
    }

    #[test]
    fn key_paths_quote_dotted_keys() {
        assert_eq!(
            KeyPath::of(&["tasks", "group.load", "retries"]).to_string(),
            "tasks.\"group.load\".retries"
        );
        assert_eq!(KeyPath::of(&["tags"]).index(2).to_string(), "tags[2]");
    }

    #[test]
    fn locate_finds_nested_keys_and_falls_back_to_ancestors() {
        let key = |k: &str| Segment::Key(k.into());
        assert_eq!(
            locate(
                FULL,
                &[key("tasks"), key("extract"), key("env"), key("LIMIT")],
                0
            ),
            Some(29)
        );
        assert_eq!(
            locate(FULL, &[key("tasks"), key("group.load")], 0),
            Some(35)
        );
        assert_eq!(locate(FULL, &[key("tags"), Segment::Index(1)], 0), Some(5));
        assert_eq!(locate(FULL, &[key("tasks"), key("nope")], 0), Some(24));
        assert_eq!(locate(FULL, &[key("nope")], 0), None);
        assert_eq!(key_of("\"a.b\": 1").as_deref(), Some("a.b"));
        assert_eq!(key_of("url: http://x").as_deref(), Some("url"));
        assert_eq!(key_of("- item"), None);
    }

    #[test]
    fn quantities() {
        for ok in ["500m", "2", "1.5", "256Mi", "1Gi", "1e3"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "1 GB", "lots", "1.2.3", "Mi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
