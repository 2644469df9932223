//! The `leoflow.yaml` layers applied to a compiled DAG (ADR 0023): DAG selection by
//! `dag_id`, the DAG-level fields (description, owner, tags, staging), L1 `defaults` →
//! `default_args` (and default resource requests), and L2 `tasks.<id>` overrides written
//! onto the tasks. Also maps a validation error back to the YAML key that caused it.

use std::collections::BTreeSet;

use leoflow_core::validate::ValidationError;
use leoflow_ports::dag::{DagSpec, DefaultArgs, Execution, ResourceList, Resources, TaskKind};
use leoflow_shim::CompiledDag;

use crate::project::{KeyPath, Problem, Project};

/// At most this many ids are listed in a message.
const LISTED_IDS: usize = 30;

/// Picks the project's DAG among those the source defines (`dags` must not be empty):
/// the one named by `dag_id`, else the only one.
pub fn select(mut dags: Vec<CompiledDag>, project: &Project) -> Result<CompiledDag, Problem> {
    let source = project.dag_source();
    let ids: Vec<&str> = dags.iter().map(|d| d.spec.dag_id.as_str()).collect();
    match &project.config.dag_id {
        Some(wanted) => match dags.iter().position(|d| &d.spec.dag_id == wanted) {
            Some(i) => Ok(dags.swap_remove(i)),
            None => Err(project.problem(
                KeyPath::of(&["dag_id"]),
                format!(
                    "DAG {wanted:?} not found in {}; it defines {}{}",
                    source.display(),
                    list(&ids),
                    suggest(wanted, &ids)
                ),
            )),
        },
        None if dags.len() == 1 => Ok(dags.swap_remove(0)),
        None => Err(project.problem(
            KeyPath::default(),
            format!(
                "{} defines {} DAGs {}; set dag_id in leoflow.yaml to choose one",
                source.display(),
                dags.len(),
                list(&ids)
            ),
        )),
    }
}

/// Applies the project's layers to `spec`. Returns every problem (unknown task ids); the
/// overrides that do apply are applied either way.
pub fn apply(spec: &mut DagSpec, project: &Project) -> Vec<Problem> {
    let config = &project.config;
    let mut problems = Vec::new();

    if let Some(description) = &config.description {
        spec.description = Some(description.clone());
    }
    if let Some(owner) = &config.owner {
        spec.owner = Some(owner.clone());
    }
    if !config.tags.is_empty() {
        spec.tags.clone_from(&config.tags);
    }
    if let Some(s) = &config.staging {
        spec.staging = Some(leoflow_ports::dag::Staging {
            enabled: s.enabled,
            size: s.size.clone(),
            storage_class: s.storage_class.clone(),
        });
    }

    // L1: DAG-wide defaults. The YAML wins over anything already in default_args.
    if let Some(d) = &config.defaults {
        let mut args = spec.default_args.take().unwrap_or_default();
        args.retries = d.retries.or(args.retries);
        args.retry_delay_seconds = d.retry_delay_seconds.or(args.retry_delay_seconds);
        args.retry_exponential_backoff = d
            .retry_exponential_backoff
            .or(args.retry_exponential_backoff);
        args.max_retry_delay_seconds = d.max_retry_delay_seconds.or(args.max_retry_delay_seconds);
        args.execution_timeout_seconds = d
            .execution_timeout_seconds
            .or(args.execution_timeout_seconds);
        spec.default_args = (args != DefaultArgs::default()).then_some(args);
    }

    // L2: per-task overrides.
    let ids: Vec<String> = spec.tasks.iter().map(|t| t.task_id.clone()).collect();
    for (id, o) in &config.tasks {
        let Some(task) = spec.tasks.iter_mut().find(|t| &t.task_id == id) else {
            let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            problems.push(project.problem(
                KeyPath::of(&["tasks", id]),
                format!(
                    "unknown task id {id:?}; the DAG defines {}{}",
                    list(&sorted),
                    suggest(id, &sorted)
                ),
            ));
            continue;
        };
        if o.retries.is_some() {
            task.retries = o.retries;
        }
        if o.retry_delay_seconds.is_some() {
            task.retry_delay_seconds = o.retry_delay_seconds;
        }
        if o.retry_exponential_backoff.is_some() {
            task.retry_exponential_backoff = o.retry_exponential_backoff;
        }
        if o.max_retry_delay_seconds.is_some() {
            task.max_retry_delay_seconds = o.max_retry_delay_seconds;
        }
        if o.execution_timeout_seconds.is_some() {
            task.execution_timeout_seconds = o.execution_timeout_seconds;
        }
        for (k, v) in &o.env {
            task.env.insert(k.clone(), v.clone());
        }
        if let Some(r) = &o.resources {
            task.resources = Some(Resources::from(r));
        }
        if let Some(e) = &o.execution {
            task.execution = Some(Execution {
                node_selector: e.node_selector.clone(),
                tolerations: e.tolerations.clone(),
                service_account: e.service_account.clone(),
                image_pull_policy: e.image_pull_policy,
            });
        }
    }

    // L1 resources: requests for every launched task that still has none.
    if let Some(r) = config.defaults.as_ref().and_then(|d| d.resources.as_ref()) {
        if r.cpu.is_some() || r.memory.is_some() {
            for task in &mut spec.tasks {
                if task.resources.is_none() && task.kind != TaskKind::Empty {
                    task.resources = Some(Resources {
                        requests: Some(ResourceList {
                            cpu: r.cpu.clone(),
                            memory: r.memory.clone(),
                        }),
                        limits: None,
                    });
                }
            }
        }
    }
    problems
}

/// The `leoflow.yaml` key a validation error comes from, when the YAML set that value.
pub fn origin(project: &Project, error: &ValidationError) -> Option<KeyPath> {
    let config = &project.config;
    let field: Vec<&str> = error.field.split('.').collect();
    let first = *field.first()?;
    match &error.task_id {
        Some(task) => {
            let o = config.tasks.get(task);
            let set = o.is_some_and(|o| match first {
                "retries" => o.retries.is_some(),
                "retry_delay_seconds" => o.retry_delay_seconds.is_some(),
                "retry_exponential_backoff" => o.retry_exponential_backoff.is_some(),
                "max_retry_delay_seconds" => o.max_retry_delay_seconds.is_some(),
                "execution_timeout_seconds" => o.execution_timeout_seconds.is_some(),
                "env" => !o.env.is_empty(),
                "resources" => o.resources.is_some(),
                "execution" => o.execution.is_some(),
                _ => false,
            });
            if set {
                let mut path = KeyPath::of(&["tasks", task]);
                for f in &field {
                    path = path.key(f);
                }
                return Some(path);
            }
            let defaults = config.defaults.as_ref()?;
            (first == "resources" && defaults.resources.is_some()).then(|| {
                let leaf = field.last().copied().unwrap_or("resources");
                KeyPath::of(&["defaults", "resources", leaf])
            })
        }
        None => match first {
            "default_args" if config.defaults.is_some() => {
                let mut path = KeyPath::of(&["defaults"]);
                for f in &field[1..] {
                    path = path.key(f);
                }
                Some(path)
            }
            "tags" if !config.tags.is_empty() => Some(KeyPath::of(&["tags"])),
            "staging" if config.staging.is_some() => Some(KeyPath::of(&["staging"])),
            _ => None,
        },
    }
}

/// `[a, b, c]`, cut after [`LISTED_IDS`] ids.
fn list(ids: &[&str]) -> String {
    let mut shown: Vec<String> = ids
        .iter()
        .take(LISTED_IDS)
        .map(|s| (*s).to_string())
        .collect();
    if ids.len() > LISTED_IDS {
        shown.push(format!("… and {} more", ids.len() - LISTED_IDS));
    }
    format!("[{}]", shown.join(", "))
}

/// `; did you mean "x"?` when one id is a likely typo of `wanted`.
fn suggest(wanted: &str, ids: &[&str]) -> String {
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    let best = unique
        .into_iter()
        .map(|id| (edit_distance(wanted, id), id))
        .filter(|(d, id)| *d <= 2.max(id.len() / 4) && *d < id.len())
        .min();
    best.map_or_else(String::new, |(_, id)| format!("; did you mean {id:?}?"))
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use leoflow_ports::dag::{PullPolicy, TaskSpec};

    use super::*;
    use crate::project::Config;

    fn project(yaml: &str) -> Project {
        let config: Config = serde_yaml_ng::from_str(yaml).unwrap();
        Project {
            dir: PathBuf::from("proj"),
            text: yaml.to_string(),
            config,
        }
    }

    fn spec(tasks: &[(&str, TaskKind)]) -> DagSpec {
        DagSpec {
            schema_version: "1.0".into(),
            dag_id: "etl".into(),
            dag_version: "dev".into(),
            image: String::new(),
            description: Some("from python".into()),
            owner: None,
            tags: vec!["py".into()],
            schedule: None,
            schedule_timezone: None,
            start_date: None,
            end_date: None,
            catchup: false,
            max_active_runs: None,
            max_active_tasks: None,
            dagrun_timeout_seconds: None,
            default_args: None,
            params: std::collections::BTreeMap::default(),
            doc_md: None,
            fileloc: Some("dag.py".into()),
            staging: None,
            tasks: tasks
                .iter()
                .map(|(id, kind)| {
                    let mut t = TaskSpec::new(*id, *kind);
                    t.entrypoint = Some(format!("dag.py:{id}"));
                    t.retries = Some(1);
                    t.env.insert("KEEP".into(), "1".into());
                    t
                })
                .collect(),
            source: None,
        }
    }

    fn compiled(ids: &[&str]) -> Vec<CompiledDag> {
        ids.iter()
            .map(|id| {
                let mut s = spec(&[("a", TaskKind::Python)]);
                s.dag_id = (*id).to_string();
                CompiledDag {
                    spec: s,
                    file: PathBuf::from("dag.py"),
                }
            })
            .collect()
    }

    #[test]
    fn dag_id_selects_among_several_dags() {
        let p = project("dag_id: b\n");
        assert_eq!(select(compiled(&["a", "b"]), &p).unwrap().spec.dag_id, "b");
        let p = project("owner: x\n");
        assert_eq!(select(compiled(&["only"]), &p).unwrap().spec.dag_id, "only");
    }

    #[test]
    fn a_missing_or_ambiguous_dag_is_explained() {
        let p = project("owner: x\ndag_id: etll\n");
        let err = select(compiled(&["etl", "other"]), &p).unwrap_err();
        assert_eq!(err.line, Some(2));
        let text = err.to_string();
        assert!(
            text.starts_with("dag_id: DAG \"etll\" not found in dag.py; it defines [etl, other]"),
            "{text}"
        );
        assert!(text.contains("did you mean \"etl\"?"), "{text}");
        let p = project("owner: x\n");
        let err = select(compiled(&["a", "b"]), &p).unwrap_err();
        assert!(err.to_string().contains("defines 2 DAGs [a, b]"), "{err}");
        assert!(err.to_string().contains("set dag_id"), "{err}");
    }

    #[test]
    fn dag_level_fields_and_defaults_are_applied() {
        let p = project(
            "description: from yaml\nowner: data\ntags: [x, y]\nstaging: {enabled: true, size: 1Gi}\n\
             defaults: {retries: 3, retry_delay_seconds: 10, execution_timeout_seconds: 60}\n",
        );
        let mut s = spec(&[("a", TaskKind::Python)]);
        assert_eq!(apply(&mut s, &p), []);
        assert_eq!(s.description.as_deref(), Some("from yaml"));
        assert_eq!(s.owner.as_deref(), Some("data"));
        assert_eq!(s.tags, ["x", "y"]);
        assert_eq!(s.staging.as_ref().unwrap().size.as_deref(), Some("1Gi"));
        let d = s.default_args.unwrap();
        assert_eq!(
            (
                d.retries,
                d.retry_delay_seconds,
                d.execution_timeout_seconds
            ),
            (Some(3), Some(10.0), Some(60.0))
        );
        // The task's own value still wins over default_args at run time.
        assert_eq!(s.tasks[0].retries, Some(1));
    }

    #[test]
    fn nothing_in_the_yaml_changes_nothing() {
        let p = project("dag_id: etl\n");
        let mut s = spec(&[("a", TaskKind::Python)]);
        let before = s.clone();
        assert_eq!(apply(&mut s, &p), []);
        assert_eq!(s, before);
    }

    #[test]
    fn task_overrides_set_replace_and_merge() {
        let p = project(
            r"tasks:
  a:
    retries: 4
    retry_delay_seconds: 5
    execution_timeout_seconds: 30
    env: {MODE: full}
    resources: {limits: {memory: 1Gi}}
    execution: {service_account: etl, image_pull_policy: Always}
",
        );
        let mut dag = spec(&[("a", TaskKind::Python), ("b", TaskKind::Bash)]);
        dag.tasks[0].resources = Some(Resources {
            requests: Some(ResourceList {
                cpu: Some("1".into()),
                memory: None,
            }),
            limits: None,
        });
        assert_eq!(apply(&mut dag, &p), []);
        let task = &dag.tasks[0];
        assert_eq!(task.retries, Some(4));
        assert_eq!(task.retry_delay_seconds, Some(5.0));
        assert_eq!(task.execution_timeout_seconds, Some(30.0));
        assert_eq!(task.env["KEEP"], "1");
        assert_eq!(task.env["MODE"], "full");
        let resources = task.resources.as_ref().unwrap();
        assert_eq!(
            resources.requests, None,
            "resources are replaced, not merged"
        );
        assert_eq!(
            resources.limits.as_ref().unwrap().memory.as_deref(),
            Some("1Gi")
        );
        let placement = task.execution.as_ref().unwrap();
        assert_eq!(placement.service_account.as_deref(), Some("etl"));
        assert_eq!(placement.image_pull_policy, Some(PullPolicy::Always));
        assert_eq!(dag.tasks[1].retries, Some(1), "other tasks untouched");
    }

    #[test]
    fn default_resources_fill_launched_tasks_without_their_own() {
        let p = project(
            "defaults:\n  resources: {cpu: 250m}\ntasks:\n  b:\n    resources: {requests: {cpu: '2'}}\n",
        );
        let mut s = spec(&[
            ("a", TaskKind::Python),
            ("b", TaskKind::Bash),
            ("e", TaskKind::Empty),
        ]);
        assert_eq!(apply(&mut s, &p), []);
        let cpu = |i: usize| {
            s.tasks[i]
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.cpu.clone())
        };
        assert_eq!(cpu(0).as_deref(), Some("250m"));
        assert_eq!(cpu(1).as_deref(), Some("2"));
        assert_eq!(s.tasks[2].resources, None);
    }

    #[test]
    fn unknown_task_ids_list_the_dags_ids() {
        let p = project("tasks:\n  a: {retries: 2}\n  transfrom: {retries: 1}\n");
        let mut s = spec(&[
            ("load", TaskKind::Python),
            ("transform", TaskKind::Python),
            ("a", TaskKind::Python),
        ]);
        let problems = apply(&mut s, &p);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(3));
        assert_eq!(
            problems[0].to_string(),
            "tasks.transfrom: unknown task id \"transfrom\"; the DAG defines [a, load, transform]; did you mean \"transform\"?"
        );
        assert_eq!(
            s.task("a").unwrap().retries,
            Some(2),
            "known ids still apply"
        );
    }

    #[test]
    fn validation_errors_map_back_to_the_yaml_that_set_the_value() {
        let p = project("defaults: {retries: 200}\ntasks:\n  a:\n    retries: 500\n");
        let err = |task: Option<&str>, field: &str| ValidationError {
            task_id: task.map(str::to_string),
            field: field.into(),
            message: "m".into(),
        };
        assert_eq!(
            origin(&p, &err(Some("a"), "retries")).map(|k| k.to_string()),
            Some("tasks.a.retries".into())
        );
        assert_eq!(
            origin(&p, &err(None, "default_args.retries")).map(|k| k.to_string()),
            Some("defaults.retries".into())
        );
        assert_eq!(origin(&p, &err(Some("a"), "depends_on")), None);
        assert_eq!(origin(&p, &err(Some("b"), "retries")), None);
    }

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(edit_distance("transfrom", "transform"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggest("zzz", &["load"]), "");
        let many: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(list(&refs).ends_with("… and 10 more]"));
    }
}
