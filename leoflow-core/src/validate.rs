//! DAG validation: everything `dag.json` must satisfy beyond its shape. Every problem is
//! reported, each naming the task and the field, so an author fixes them all in one pass.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use leoflow_ports::dag::{DagSpec, ExecutionMode, MapSource, TaskKind, TaskSpec};

use crate::graph::{names, TaskGraph};
use crate::schedule::Schedule;

/// Server-side limits validation enforces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The longest `execution_timeout_seconds` an inline http_api task may declare
    /// (`LEOFLOW_INLINE_HTTP_MAX_DURATION`).
    pub inline_http_max_seconds: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            inline_http_max_seconds: 300.0,
        }
    }
}

/// One problem with a DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The task concerned, or `None` for DAG-level fields.
    pub task_id: Option<String>,
    /// The field (a JSON path for shape errors).
    pub field: String,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.task_id {
            Some(t) => write!(f, "task {t:?}, field `{}`: {}", self.field, self.message),
            None if self.field.is_empty() => f.write_str(&self.message),
            None => write!(f, "field `{}`: {}", self.field, self.message),
        }
    }
}

/// Every problem with one DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
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

/// Parses and validates `dag.json` bytes.
pub fn parse_and_validate(bytes: &[u8], limits: &Limits) -> Result<DagSpec, ValidationErrors> {
    let spec = DagSpec::from_json(bytes).map_err(|errs| {
        ValidationErrors(
            errs.0
                .into_iter()
                .map(|e| ValidationError {
                    task_id: None,
                    field: e.path,
                    message: e.message,
                })
                .collect(),
        )
    })?;
    validate(&spec, limits)?;
    Ok(spec)
}

/// Checks a parsed spec. `Ok` means the scheduler can run it.
pub fn validate(spec: &DagSpec, limits: &Limits) -> Result<(), ValidationErrors> {
    let mut v = Validator { errors: Vec::new() };
    v.dag(spec);
    let ids = v.task_ids(spec);
    for task in &spec.tasks {
        v.task(task, &ids, limits);
    }
    if v.errors.iter().all(|e| e.field != "depends_on") {
        if let Err(cycle) = TaskGraph::new(spec).topological_order() {
            let path = names(spec, &cycle).join(" -> ");
            v.task_error(
                &spec.tasks[cycle[0]].task_id,
                "depends_on",
                format!("dependency cycle {path}; remove one of these edges"),
            );
        }
    }
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(v.errors))
    }
}

struct Validator {
    errors: Vec<ValidationError>,
}

impl Validator {
    fn dag_error(&mut self, field: &str, message: String) {
        self.errors.push(ValidationError {
            task_id: None,
            field: field.into(),
            message,
        });
    }

    fn task_error(&mut self, task_id: &str, field: &str, message: String) {
        self.errors.push(ValidationError {
            task_id: Some(task_id.to_string()),
            field: field.into(),
            message,
        });
    }

    fn dag(&mut self, spec: &DagSpec) {
        if !is_valid_id(&spec.dag_id) {
            self.dag_error("dag_id", id_rule(&spec.dag_id));
        }
        if spec.tasks.is_empty() {
            self.dag_error("tasks", "a DAG needs at least one task".into());
        }
        if let Err(e) = Schedule::parse(spec.schedule.as_deref()) {
            self.dag_error("schedule", e.to_string());
        }
        if let (Some(s), Some(e)) = (spec.start_date, spec.end_date) {
            if e < s {
                self.dag_error("end_date", format!("end_date {e} is before start_date {s}"));
            }
        }
        let mut tags = BTreeSet::new();
        for tag in &spec.tags {
            if !tags.insert(tag) {
                self.dag_error("tags", format!("tag {tag:?} is listed twice"));
            }
        }
        for (field, value) in [
            ("max_active_runs", spec.max_active_runs),
            ("max_active_tasks", spec.max_active_tasks),
        ] {
            if value == Some(0) {
                self.dag_error(field, "must be at least 1".into());
            }
        }
        self.positive(None, "dagrun_timeout_seconds", spec.dagrun_timeout_seconds);
        if let Some(d) = &spec.default_args {
            self.retries(None, "default_args.retries", d.retries);
            self.non_negative(
                None,
                "default_args.retry_delay_seconds",
                d.retry_delay_seconds,
            );
            self.non_negative(
                None,
                "default_args.max_retry_delay_seconds",
                d.max_retry_delay_seconds,
            );
            self.positive(
                None,
                "default_args.execution_timeout_seconds",
                d.execution_timeout_seconds,
            );
        }
    }

    /// Reports bad and duplicate ids; returns the set of ids present.
    fn task_ids<'a>(&mut self, spec: &'a DagSpec) -> HashMap<&'a str, usize> {
        let mut ids = HashMap::new();
        for (i, t) in spec.tasks.iter().enumerate() {
            if !is_valid_id(&t.task_id) {
                self.task_error(&t.task_id, "task_id", id_rule(&t.task_id));
            }
            if ids.insert(t.task_id.as_str(), i).is_some() {
                self.task_error(
                    &t.task_id,
                    "task_id",
                    "duplicate task id: another task already uses it; task ids must be unique within a DAG".into(),
                );
            }
        }
        ids
    }

    fn task(&mut self, t: &TaskSpec, ids: &HashMap<&str, usize>, limits: &Limits) {
        let id = t.task_id.as_str();
        let mut seen = BTreeSet::new();
        for up in &t.depends_on {
            if up == id {
                self.task_error(id, "depends_on", "a task cannot depend on itself".into());
            } else if !ids.contains_key(up.as_str()) {
                self.task_error(id, "depends_on", format!("unknown upstream task {up:?}"));
            } else if !seen.insert(up) {
                self.task_error(id, "depends_on", format!("upstream {up:?} is listed twice"));
            }
        }
        for (param, r) in t.xcom_upstreams() {
            let field = if t.xcom_input.contains_key(param) {
                "xcom_input"
            } else {
                "map"
            };
            if !ids.contains_key(r.task_id.as_str()) {
                self.task_error(
                    id,
                    field,
                    format!(
                        "parameter {param:?} reads task {:?}, which does not exist",
                        r.task_id
                    ),
                );
            } else if !t.depends_on.contains(&r.task_id) {
                self.task_error(
                    id,
                    field,
                    format!("parameter {param:?} reads task {:?}, which is not upstream; add it to depends_on", r.task_id),
                );
            }
        }
        if let Some(map) = &t.map {
            match (&map.expand, &map.expand_kwargs) {
                (Some(e), None) if e.is_empty() => {
                    self.task_error(
                        id,
                        "map.expand",
                        "expand needs at least one parameter".into(),
                    );
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => self.task_error(
                    id,
                    "map",
                    "set exactly one of `expand` and `expand_kwargs`".into(),
                ),
            }
            if let Some(MapSource::Literal(values)) = &map.expand_kwargs {
                if values.iter().any(|v| !v.is_object()) {
                    self.task_error(
                        id,
                        "map.expand_kwargs",
                        "every element of a literal expand_kwargs list must be an object".into(),
                    );
                }
            }
        }
        self.kind(t, limits);
        self.retries(Some(id), "retries", t.retries);
        self.non_negative(Some(id), "retry_delay_seconds", t.retry_delay_seconds);
        self.non_negative(
            Some(id),
            "max_retry_delay_seconds",
            t.max_retry_delay_seconds,
        );
        self.positive(
            Some(id),
            "execution_timeout_seconds",
            t.execution_timeout_seconds,
        );
        if let Some(r) = &t.resources {
            for (which, list) in [("requests", &r.requests), ("limits", &r.limits)] {
                let Some(list) = list else { continue };
                for (name, q) in [("cpu", &list.cpu), ("memory", &list.memory)] {
                    if let Some(q) = q {
                        if !is_quantity(q) {
                            self.task_error(
                                id,
                                &format!("resources.{which}.{name}"),
                                format!("{q:?} is not a Kubernetes quantity (examples: 500m, 2, 256Mi, 1Gi)"),
                            );
                        }
                    }
                }
            }
        }
    }

    fn kind(&mut self, t: &TaskSpec, limits: &Limits) {
        let id = t.task_id.as_str();
        let has_entrypoint = t
            .entrypoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty());
        match t.kind {
            TaskKind::Python | TaskKind::Bash => {
                if !has_entrypoint {
                    self.task_error(
                        id,
                        "entrypoint",
                        format!("a {} task needs an entrypoint", t.kind.as_str()),
                    );
                }
                if t.execution_mode == Some(ExecutionMode::Inline) {
                    self.task_error(id, "execution_mode", "only http_api tasks can run inline; remove execution_mode or set it to pod".into());
                }
            }
            TaskKind::HttpApi => {
                if t.http_request.is_none() {
                    self.task_error(
                        id,
                        "http_request",
                        "an http_api task needs an http_request".into(),
                    );
                }
                let timeout = t.execution_timeout_seconds.unwrap_or(0.0);
                if t.effective_mode() == ExecutionMode::Inline
                    && timeout > limits.inline_http_max_seconds
                {
                    self.task_error(
                        id,
                        "execution_timeout_seconds",
                        format!(
                            "declares execution_timeout_seconds={timeout} but inline http_api tasks are capped at {} seconds on this server; set execution_mode: pod to use a worker pod, which has no such cap",
                            limits.inline_http_max_seconds
                        ),
                    );
                }
            }
            TaskKind::Empty => {}
        }
    }

    fn retries(&mut self, task: Option<&str>, field: &str, value: Option<u32>) {
        if value.is_some_and(|r| r > 100) {
            self.report(task, field, "at most 100 retries are allowed".into());
        }
    }

    fn non_negative(&mut self, task: Option<&str>, field: &str, value: Option<f64>) {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            self.report(task, field, "must be a number of seconds ≥ 0".into());
        }
    }

    fn positive(&mut self, task: Option<&str>, field: &str, value: Option<f64>) {
        if value.is_some_and(|v| !v.is_finite() || v <= 0.0) {
            self.report(task, field, "must be a number of seconds > 0".into());
        }
    }

    fn report(&mut self, task: Option<&str>, field: &str, message: String) {
        match task {
            Some(t) => self.task_error(t, field, message),
            None => self.dag_error(field, message),
        }
    }
}

/// Airflow's id rule: letters, digits, `_`, `.`, `-`; 1–250 characters; no leading `.`/`-`.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    id.len() <= 250
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn id_rule(id: &str) -> String {
    format!("{id:?} is not a valid id: use 1–250 letters, digits, '_', '.' or '-', starting with a letter, digit or '_'")
}

/// A Kubernetes resource quantity such as `500m`, `2`, `1.5`, `256Mi`, `1e3`.
fn is_quantity(q: &str) -> bool {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let number_ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    );
    let exponent_ok = q.split_once(['e', 'E']).is_some_and(|(m, e)| {
        !m.is_empty() && m.parse::<f64>().is_ok() && e.parse::<i32>().is_ok()
    });
    (number_ok && suffix_ok) || exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::dag;
    use leoflow_ports::dag::{
        HttpMethod, HttpRequest, ResourceList, Resources, XComInput, XComRef,
    };

    fn errors(spec: &DagSpec) -> Vec<ValidationError> {
        validate(spec, &Limits::default())
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    fn check(spec: &DagSpec, expected: &[(&str, &str, &str)]) {
        let got = errors(spec);
        let got: Vec<(String, String, String)> = got
            .iter()
            .map(|e| {
                (
                    e.task_id.clone().unwrap_or_default(),
                    e.field.clone(),
                    e.message.clone(),
                )
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for ((task, field, msg), (gt, gf, gm)) in expected.iter().zip(&got) {
            assert_eq!((*task, *field), (gt.as_str(), gf.as_str()), "{got:#?}");
            assert!(gm.contains(msg), "message {gm:?} lacks {msg:?}");
        }
    }

    #[test]
    fn a_sound_dag_passes() {
        check(&dag(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b"])]), &[]);
    }

    #[test]
    fn each_problem_is_reported_once_with_task_and_field() {
        let mut spec = dag(&[
            ("a", &[]),
            ("b", &["a", "ghost"]),
            ("a", &[]),
            ("bad id", &[]),
        ]);
        spec.tasks[1].retries = Some(500);
        check(
            &spec,
            &[
                ("a", "task_id", "duplicate task id"),
                ("bad id", "task_id", "not a valid id"),
                ("b", "depends_on", "unknown upstream task \"ghost\""),
                ("b", "retries", "at most 100"),
            ],
        );
    }

    #[test]
    fn cycles_name_their_path() {
        let spec = dag(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"])]);
        let errs = errors(&spec);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].message.contains("a -> b -> c -> a")
                || errs[0].message.contains("dependency cycle"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].field, "depends_on");
    }

    #[test]
    fn xcom_inputs_must_read_upstream_tasks() {
        let mut spec = dag(&[("a", &[]), ("b", &[]), ("c", &["a"])]);
        spec.tasks[2].xcom_input.insert(
            "x".into(),
            XComInput::List(vec![XComRef::return_value("a"), XComRef::return_value("b")]),
        );
        spec.tasks[2]
            .xcom_input
            .insert("y".into(), XComInput::One(XComRef::return_value("nope")));
        check(
            &spec,
            &[
                ("c", "xcom_input", "reads task \"b\", which is not upstream"),
                ("c", "xcom_input", "\"nope\", which does not exist"),
            ],
        );
    }

    #[test]
    fn inline_http_over_the_cap_must_declare_pod_mode() {
        let mut spec = dag(&[("call", &[])]);
        let t = &mut spec.tasks[0];
        t.kind = TaskKind::HttpApi;
        t.entrypoint = None;
        t.execution_timeout_seconds = Some(900.0);
        t.http_request = Some(HttpRequest {
            method: HttpMethod::Get,
            url: "http://127.0.0.1/".into(),
            headers: std::collections::BTreeMap::default(),
            body: None,
            timeout_seconds: None,
            success_status_codes: None,
            http_conn_id: None,
        });
        check(
            &spec,
            &[(
                "call",
                "execution_timeout_seconds",
                "set execution_mode: pod",
            )],
        );
        spec.tasks[0].execution_mode = Some(ExecutionMode::Pod);
        check(&spec, &[]);
    }

    #[test]
    fn schedules_and_resources_are_checked() {
        let mut spec = dag(&[("a", &[])]);
        spec.schedule = Some("every tuesday".into());
        spec.tasks[0].resources = Some(Resources {
            requests: Some(ResourceList {
                cpu: Some("half".into()),
                memory: Some("256Mi".into()),
            }),
            limits: Some(ResourceList {
                cpu: Some("500m".into()),
                memory: Some("1.5Gi".into()),
            }),
        });
        check(
            &spec,
            &[
                ("", "schedule", "invalid schedule \"every tuesday\""),
                ("a", "resources.requests.cpu", "not a Kubernetes quantity"),
            ],
        );
    }

    #[test]
    fn unknown_keys_surface_through_parse_and_validate() {
        let json = br#"{"schema_version":"1.0","dag_id":"d","dag_version":"v","image":"","tasks":[{"task_id":"a","type":"empty","colour":"red"}]}"#;
        let errs = parse_and_validate(json, &Limits::default()).unwrap_err().0;
        assert_eq!(errs[0].field, "tasks[0].colour");
    }

    #[test]
    fn quantities() {
        for ok in ["1", "500m", "0.5", "2Gi", "256Mi", "1e3", "100k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "half", "1.2.3", "10Zi", "Gi", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
