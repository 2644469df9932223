//! The shape of an attempt's pod and Secret, as pure functions of the attempt and the
//! config: the deterministic name, labels and annotations, the agent's init container and
//! environment, resources, placement and security context.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, Pod, PodSecurityContext,
    PodSpec, ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use leoflow_ports::dag::{PullPolicy, ResourceList};
use leoflow_ports::executor::Attempt;
use leoflow_ports::run::{AttemptId, TaskKey};
use sha2::{Digest, Sha256};

use crate::config::KubernetesConfig;

/// The label every pod and Secret of Leoflow carries, as a label selector.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=leoflow";
/// The main container's name: the one whose exit code and log are the attempt's.
pub(crate) const TASK_CONTAINER: &str = "task";
/// The Secret key holding the agent token.
const TOKEN_KEY: &str = "token";
const AGENT_DIR: &str = "/leoflow/bin";
const WORK_DIR: &str = "/leoflow/work";

const ANN_DAG: &str = "leoflow.io/dag-id";
const ANN_RUN: &str = "leoflow.io/run-id";
const ANN_TASK: &str = "leoflow.io/task-id";
const ANN_MAP: &str = "leoflow.io/map-index";
const ANN_TRY: &str = "leoflow.io/try-number";

/// The attempt's pod name: `leoflow-<dag>-<task>-<try>-<hash>`, a valid DNS-1123 label of
/// at most 63 characters. The hash covers the exact ids (run and map index included), so
/// the name is the same on every launch of the attempt and differs between attempts.
pub fn pod_name(attempt: &AttemptId) -> String {
    let t = &attempt.task;
    let digest = Sha256::digest(
        format!(
            "{}\n{}\n{}\n{}\n{}",
            t.dag_id, t.run_id, t.task_id, t.map_index, attempt.try_number
        )
        .as_bytes(),
    );
    let suffix = format!("-{}-{}", attempt.try_number, &hex::encode(digest)[..8]);
    // "leoflow-" + dag + "-" + task + suffix <= 63
    let budget = 63 - "leoflow-".len() - 1 - suffix.len();
    let dag = dns_part(&t.dag_id);
    let task = dns_part(&t.task_id);
    let dag_len = dag
        .len()
        .min(budget.saturating_sub(task.len()).max(budget / 2));
    let dag = trim_dashes(&dag[..dag_len]);
    let task = trim_dashes(&task[..task.len().min(budget - dag.len())]);
    format!("leoflow-{dag}-{task}{suffix}")
}

/// `s` lowercased, with every run of characters outside `[a-z0-9]` turned into one `-`,
/// trimmed of dashes; `x` when nothing is left.
fn dns_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = trim_dashes(&out);
    if out.is_empty() {
        "x".into()
    } else {
        out.to_string()
    }
}

fn trim_dashes(s: &str) -> &str {
    s.trim_matches('-')
}

/// A valid label value carrying as much of `s` as fits (the exact ids are annotations).
fn label_value(s: &str) -> String {
    let kept: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    kept.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn labels(attempt: &AttemptId) -> BTreeMap<String, String> {
    let t = &attempt.task;
    BTreeMap::from([
        ("app.kubernetes.io/managed-by".into(), "leoflow".into()),
        ("leoflow.io/dag-id".into(), label_value(&t.dag_id)),
        ("leoflow.io/task-id".into(), label_value(&t.task_id)),
        ("leoflow.io/run-id".into(), label_value(&t.run_id)),
        (
            "leoflow.io/try-number".into(),
            attempt.try_number.to_string(),
        ),
        ("leoflow.io/map-index".into(), t.map_index.to_string()),
    ])
}

fn annotations(attempt: &AttemptId) -> BTreeMap<String, String> {
    let t = &attempt.task;
    BTreeMap::from([
        (ANN_DAG.into(), t.dag_id.clone()),
        (ANN_RUN.into(), t.run_id.clone()),
        (ANN_TASK.into(), t.task_id.clone()),
        (ANN_MAP.into(), t.map_index.to_string()),
        (ANN_TRY.into(), attempt.try_number.to_string()),
    ])
}

/// The attempt a pod runs, from its annotations; `None` for a pod Leoflow did not make.
pub(crate) fn attempt_of(pod: &Pod) -> Option<AttemptId> {
    let a = pod.metadata.annotations.as_ref()?;
    let get = |k: &str| a.get(k).cloned();
    Some(AttemptId {
        task: TaskKey {
            dag_id: get(ANN_DAG)?,
            run_id: get(ANN_RUN)?,
            task_id: get(ANN_TASK)?,
            map_index: get(ANN_MAP)?.parse().ok()?,
        },
        try_number: get(ANN_TRY)?.parse().ok()?,
    })
}

/// Why a pod cannot be built for an attempt (the task's spec is wrong for Kubernetes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task}: {message}")]
pub(crate) struct ShapeError {
    task: String,
    message: String,
}

/// The attempt's pod, named `name`, whose agent reaches the control plane at `agent_url`
/// with the token of the Secret of the same name.
pub(crate) fn build_pod(
    config: &KubernetesConfig,
    attempt: &Attempt,
    name: &str,
    agent_url: &str,
) -> Result<Pod, ShapeError> {
    let task = attempt.task();
    let shape_error = |message: String| ShapeError {
        task: attempt.id.task.to_string(),
        message,
    };
    let execution = task.execution.clone().unwrap_or_default();
    let image = if attempt.dag.image.is_empty() {
        config.default_image.clone()
    } else {
        attempt.dag.image.clone()
    };
    let pull_policy = execution
        .image_pull_policy
        .unwrap_or(config.image_pull_policy);
    let mut tolerations = Vec::new();
    for (i, t) in execution
        .tolerations
        .iter()
        .chain(&config.tolerations)
        .enumerate()
    {
        tolerations.push(
            serde_json::from_value::<Toleration>(t.clone()).map_err(|e| {
                shape_error(format!(
                    "execution.tolerations[{i}] is not a Kubernetes toleration ({e}); use \
                     {{\"key\": …, \"operator\": \"Equal\"|\"Exists\", \"value\": …, \"effect\": …}}"
                ))
            })?,
        );
    }
    let mut node_selector = config.node_selector.clone();
    node_selector.extend(execution.node_selector);
    let deadline = attempt
        .timeout
        .map(|t| (t + config.deadline_grace).as_secs_f64().ceil() as i64);

    let mut plain: BTreeMap<String, String> = BTreeMap::new();
    plain.insert("HOME".into(), WORK_DIR.into());
    plain.insert("TMPDIR".into(), WORK_DIR.into());
    plain.extend(config.extra_env.clone());
    plain.extend(task.env.clone());
    // The agent's own settings come last so a task's `env` cannot redirect it.
    plain.insert("LEOFLOW_AGENT_URL".into(), agent_url.into());
    plain.insert("LEOFLOW_PYTHON".into(), config.python.clone());
    plain.insert("LEOFLOW_PROJECT_DIR".into(), config.project_dir.clone());
    plain.insert("LEOFLOW_WORK_ROOT".into(), WORK_DIR.into());
    plain.remove("LEOFLOW_AGENT_TOKEN");
    plain.remove("LEOFLOW_WARM_SOCKET");
    match &config.shim_path {
        Some(p) => plain.insert("LEOFLOW_SHIM_PATH".into(), p.clone()),
        None => plain.remove("LEOFLOW_SHIM_PATH"),
    };
    let mut env: Vec<EnvVar> = plain
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        })
        .collect();
    env.push(EnvVar {
        name: "LEOFLOW_AGENT_TOKEN".into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: TOKEN_KEY.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    });

    let requests = resource_list(
        task.resources.as_ref().and_then(|r| r.requests.as_ref()),
        config.default_resources.requests.as_ref(),
    );
    let limits = resource_list(
        task.resources.as_ref().and_then(|r| r.limits.as_ref()),
        config.default_resources.limits.as_ref(),
    );
    let security = container_security(config);
    let agent_mount = |read_only: bool| VolumeMount {
        name: "leoflow-agent".into(),
        mount_path: AGENT_DIR.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    let work_mount = VolumeMount {
        name: "leoflow-work".into(),
        mount_path: WORK_DIR.into(),
        ..VolumeMount::default()
    };
    let empty_dir = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(config.namespace.clone()),
            labels: Some(labels(&attempt.id)),
            annotations: Some(annotations(&attempt.id)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            active_deadline_seconds: deadline,
            service_account_name: execution
                .service_account
                .or_else(|| config.service_account.clone()),
            // Tasks talk to the control plane through the agent, never to the cluster.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            node_selector: (!node_selector.is_empty()).then_some(node_selector),
            tolerations: (!tolerations.is_empty()).then_some(tolerations),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: config.security.run_as_user,
                run_as_group: config.security.run_as_group,
                fs_group: config.security.run_as_group,
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..PodSecurityContext::default()
            }),
            init_containers: Some(vec![Container {
                name: "leoflow-agent".into(),
                image: Some(config.agent_image.clone()),
                image_pull_policy: Some(pull_policy_str(config.image_pull_policy).into()),
                command: Some(vec![
                    "cp".into(),
                    config.agent_path_in_image.clone(),
                    format!("{AGENT_DIR}/leoflow-agent"),
                ]),
                volume_mounts: Some(vec![agent_mount(false)]),
                security_context: Some(security.clone()),
                ..Container::default()
            }]),
            containers: vec![Container {
                name: TASK_CONTAINER.into(),
                image: Some(image),
                image_pull_policy: Some(pull_policy_str(pull_policy).into()),
                command: Some(vec![format!("{AGENT_DIR}/leoflow-agent")]),
                env: Some(env),
                resources: (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
                    requests,
                    limits,
                    ..ResourceRequirements::default()
                }),
                security_context: Some(security),
                volume_mounts: Some(vec![agent_mount(true), work_mount]),
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                ..Container::default()
            }],
            volumes: Some(vec![empty_dir("leoflow-agent"), empty_dir("leoflow-work")]),
            ..PodSpec::default()
        }),
        status: None,
    })
}

fn container_security(config: &KubernetesConfig) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(config.security.read_only_root_filesystem),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

fn pull_policy_str(p: PullPolicy) -> &'static str {
    match p {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    }
}

/// The task's cpu/memory, each falling back to the configured default. Quantities were
/// validated when the DAG was registered; the API server checks them again.
fn resource_list(
    task: Option<&ResourceList>,
    default: Option<&ResourceList>,
) -> Option<BTreeMap<String, Quantity>> {
    let pick = |f: fn(&ResourceList) -> &Option<String>| {
        task.and_then(|l| f(l).clone())
            .or_else(|| default.and_then(|l| f(l).clone()))
    };
    let mut out = BTreeMap::new();
    if let Some(cpu) = pick(|l| &l.cpu) {
        out.insert("cpu".to_string(), Quantity(cpu));
    }
    if let Some(memory) = pick(|l| &l.memory) {
        out.insert("memory".to_string(), Quantity(memory));
    }
    (!out.is_empty()).then_some(out)
}

/// The attempt's Secret: the agent token, owned by the pod so Kubernetes deletes it with
/// the pod.
pub(crate) fn build_secret(
    config: &KubernetesConfig,
    attempt: &AttemptId,
    name: &str,
    pod_uid: &str,
    token: &str,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(config.namespace.clone()),
            labels: Some(labels(attempt)),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: name.into(),
                uid: pod_uid.into(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_string(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use leoflow_ports::dag::{DagSpec, Resources};
    use leoflow_ports::run::{RunKey, RunType};
    use serde_json::json;

    use super::*;
    use crate::config::ClusterAccess;

    fn attempt_with(task: &serde_json::Value) -> Attempt {
        let spec = json!({"schema_version": "1.0", "dag_id": "d", "dag_version": "v1",
            "image": "", "tasks": [task]});
        let dag = DagSpec::from_json(spec.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("bad test DAG: {e}"));
        Attempt {
            id: AttemptId {
                task: TaskKey::new(&RunKey::new("d", "r"), "t", -1),
                try_number: 1,
            },
            dag: Arc::new(dag),
            version_number: 1,
            run_type: RunType::Manual,
            timeout: Some(Duration::from_millis(1500)),
        }
    }

    fn config() -> KubernetesConfig {
        let mut c = KubernetesConfig::new(ClusterAccess::Infer, "agent:1", "task:1");
        c.default_resources = Resources {
            requests: Some(ResourceList {
                cpu: Some("100m".into()),
                memory: Some("128Mi".into()),
            }),
            limits: None,
        };
        c.security.read_only_root_filesystem = true;
        c.extra_env.insert("FROM_CONFIG".into(), "1".into());
        c
    }

    #[test]
    fn the_pod_merges_task_and_defaults_and_keeps_the_agent_settings_its_own() {
        let a = attempt_with(
            &json!({"task_id": "t", "type": "bash", "entrypoint": "true",
            "env": {"LEOFLOW_AGENT_TOKEN": "stolen", "LEOFLOW_PROJECT_DIR": "/x", "A": "b"},
            "resources": {"requests": {"memory": "1Gi"}}}),
        );
        let pod = build_pod(&config(), &a, "p", "http://cp:8088").unwrap_or_else(|e| panic!("{e}"));
        let spec = pod.spec.unwrap_or_default();
        assert_eq!(spec.active_deadline_seconds, Some(32), "ceil(1.5 s + 30 s)");
        let task = &spec.containers[0];
        let env: BTreeMap<&str, (Option<&str>, bool)> = task
            .env
            .iter()
            .flatten()
            .map(|e| {
                (
                    e.name.as_str(),
                    (e.value.as_deref(), e.value_from.is_some()),
                )
            })
            .collect();
        assert_eq!(env["A"], (Some("b"), false));
        assert_eq!(env["FROM_CONFIG"], (Some("1"), false));
        assert_eq!(
            env["LEOFLOW_PROJECT_DIR"],
            (Some("/opt/leoflow/project"), false)
        );
        assert_eq!(env["LEOFLOW_AGENT_URL"], (Some("http://cp:8088"), false));
        assert_eq!(env["LEOFLOW_AGENT_TOKEN"], (None, true));
        assert_eq!(env["LEOFLOW_WORK_ROOT"], (Some("/leoflow/work"), false));
        let resources = task.resources.clone().unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        assert_eq!(requests["memory"].0, "1Gi", "the task's own value wins");
        assert_eq!(requests["cpu"].0, "100m", "the default fills in");
        assert_eq!(resources.limits, None);
        let sc = task.security_context.clone().unwrap_or_default();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(task.image.as_deref(), Some("task:1"));
    }

    #[test]
    fn a_malformed_toleration_is_rejected_with_its_place_and_shape() {
        let a = attempt_with(
            &json!({"task_id": "t", "type": "bash", "entrypoint": "true",
            "execution": {"tolerations": [{"key": "k", "operator": 7}]}}),
        );
        let err = build_pod(&config(), &a, "p", "http://cp")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("d/r/t")
                && err.contains("execution.tolerations[0]")
                && err.contains("operator"),
            "{err}"
        );
    }

    fn attempt(dag: &str, run: &str, task: &str, map_index: i32, try_number: u32) -> AttemptId {
        AttemptId {
            task: TaskKey {
                dag_id: dag.into(),
                run_id: run.into(),
                task_id: task.into(),
                map_index,
            },
            try_number,
        }
    }

    fn is_dns_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn pod_names_are_deterministic_valid_and_distinct_per_attempt() {
        let long = "a_very_long_dag_identifier_that_goes_on_and_on_and_on_forever_and_ever";
        let cases = [
            attempt("etl", "manual__2024-01-01T00:00:00+00:00", "extract", -1, 1),
            attempt("ETL.Daily", "r", "Load_Data", 3, 12),
            attempt(long, "r", long, -1, 1),
            attempt("___", "r", "---", -1, 1),
            attempt("d", "r", long, -1, 999_999),
        ];
        for a in &cases {
            let n = pod_name(a);
            assert!(is_dns_label(&n), "{n:?} for {a}");
            assert_eq!(n, pod_name(a));
            assert!(n.starts_with("leoflow-"), "{n}");
        }
        assert_eq!(
            pod_name(&cases[0]),
            format!(
                "leoflow-etl-extract-1-{}",
                &pod_name(&cases[0])[pod_name(&cases[0]).len() - 8..]
            )
        );
        assert_eq!(&pod_name(&cases[1])[..29], "leoflow-etl-daily-load-data-1");
        let other_try = attempt("etl", "manual__2024-01-01T00:00:00+00:00", "extract", -1, 2);
        let other_run = attempt("etl", "manual__2024-01-02T00:00:00+00:00", "extract", -1, 1);
        let other_map = attempt("etl", "manual__2024-01-01T00:00:00+00:00", "extract", 0, 1);
        for o in [other_try, other_run, other_map] {
            assert_ne!(pod_name(&cases[0]), pod_name(&o));
        }
    }

    #[test]
    fn label_values_are_valid_and_annotations_give_the_attempt_back() {
        for (input, expected) in [
            (
                "manual__2024-01-01T00:00:00+00:00",
                "manual__2024-01-01T00-00-00-00-00",
            ),
            ("__x__", "x"),
            ("a.b-c", "a.b-c"),
        ] {
            assert_eq!(label_value(input), expected);
        }
        assert_eq!(label_value(&"y".repeat(100)).len(), 63);
        let a = attempt("d", "manual__2024+00:00", "t", 4, 2);
        let pod = Pod {
            metadata: ObjectMeta {
                annotations: Some(annotations(&a)),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        assert_eq!(attempt_of(&pod), Some(a));
        assert_eq!(attempt_of(&Pod::default()), None);
    }
}
