//! How the Kubernetes executor reaches its cluster and shapes the pods it creates.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use leoflow_ports::dag::{PullPolicy, Resources};
use serde_json::Value;

/// Where the cluster's API server is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAccess {
    /// `KUBECONFIG` (or `~/.kube/config`), else the in-cluster service account.
    Infer,
    /// This kubeconfig file, at its current context.
    Kubeconfig(PathBuf),
}

/// The pod and container security context. The defaults run as a non-root user without
/// privilege escalation and drop every capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// The user the containers run as; `None` keeps the image's user (which must then be
    /// non-root, since `runAsNonRoot` is set).
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    /// Make the root filesystem read-only; the agent and the task then write only to the
    /// pod's work emptyDir (`LEOFLOW_WORK_ROOT`, `HOME`, `TMPDIR`).
    pub read_only_root_filesystem: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            read_only_root_filesystem: false,
        }
    }
}

/// What the executor needs to create pods.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesConfig {
    pub cluster: ClusterAccess,
    /// The namespace every attempt's pod and Secret live in.
    pub namespace: String,
    /// The image holding the `leoflow-agent` binary; an init container copies it into an
    /// emptyDir so the task's own image needs nothing of Leoflow.
    pub agent_image: String,
    /// The agent binary's path inside `agent_image`.
    pub agent_path_in_image: String,
    /// The image of DAGs whose spec names none.
    pub default_image: String,
    /// When the task's `execution.image_pull_policy` says nothing.
    pub image_pull_policy: PullPolicy,
    /// When the task's `execution.service_account` says nothing.
    pub service_account: Option<String>,
    /// Requests and limits for tasks that set none (each of cpu/memory separately).
    pub default_resources: Resources,
    /// Merged under the task's own `execution.node_selector`.
    pub node_selector: BTreeMap<String, String>,
    /// Added to the task's own `execution.tolerations` (Kubernetes toleration objects).
    pub tolerations: Vec<Value>,
    pub security: SecurityConfig,
    /// The Python interpreter in the task image (`LEOFLOW_PYTHON`).
    pub python: String,
    /// The DAG project's root inside the task image (`LEOFLOW_PROJECT_DIR`).
    pub project_dir: String,
    /// Where the `leoflow_shim` package is in the task image, when not installed.
    pub shim_path: Option<String>,
    /// More variables for every agent and task. Never put secrets here.
    pub extra_env: BTreeMap<String, String>,
    /// Leave failed pods (and their Secrets) for inspection instead of deleting them.
    pub keep_on_failure: bool,
    /// A pod that cannot be scheduled this long fails its attempt.
    pub unschedulable_timeout: Duration,
    /// A pod whose image cannot be pulled this long fails its attempt.
    pub image_pull_timeout: Duration,
    /// Added to the task's timeout for `activeDeadlineSeconds`, so the agent enforces the
    /// timeout itself (and reports it) before Kubernetes kills the pod.
    pub deadline_grace: Duration,
    /// The termination grace period of a cancelled attempt's pod.
    pub cancel_grace: Duration,
}

impl KubernetesConfig {
    /// Defaults: namespace `leoflow`, the agent at `/leoflow-agent` in `agent_image`,
    /// `IfNotPresent`, no resources, a non-root security context, `python3`, the project at
    /// `/opt/leoflow/project`, failed pods deleted, 5 min to schedule, 2 min to pull, a
    /// 30 s deadline grace and a 30 s cancel grace.
    pub fn new(
        cluster: ClusterAccess,
        agent_image: impl Into<String>,
        default_image: impl Into<String>,
    ) -> KubernetesConfig {
        KubernetesConfig {
            cluster,
            namespace: "leoflow".into(),
            agent_image: agent_image.into(),
            agent_path_in_image: "/leoflow-agent".into(),
            default_image: default_image.into(),
            image_pull_policy: PullPolicy::IfNotPresent,
            service_account: None,
            default_resources: Resources::default(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            security: SecurityConfig::default(),
            python: "python3".into(),
            project_dir: "/opt/leoflow/project".into(),
            shim_path: None,
            extra_env: BTreeMap::new(),
            keep_on_failure: false,
            unschedulable_timeout: Duration::from_secs(300),
            image_pull_timeout: Duration::from_secs(120),
            deadline_grace: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(30),
        }
    }
}
