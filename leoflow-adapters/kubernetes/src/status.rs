//! What a pod's status means for its attempt, the way the kubelet reports it: still
//! waiting, running, stuck (unschedulable, image not pullable), or ended with an exit code
//! and, when Kubernetes ended it, a message saying why and what to change.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::pod::TASK_CONTAINER;

/// Why a pending pod makes no progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stuck {
    /// No node can take it (resources, node selector, taints).
    Unschedulable,
    /// Its image (or the agent image) cannot be pulled; the kubelet keeps retrying.
    ImagePull,
    /// It can never start (an invalid image name); failing at once.
    Never,
}

/// A pod's status, as far as its attempt is concerned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PodState {
    Waiting,
    Stuck {
        why: Stuck,
        message: String,
    },
    Running {
        node: Option<String>,
    },
    Ended {
        exit_code: Option<i32>,
        /// Set when Kubernetes (not the task) ended it, or it ended abnormally.
        message: Option<String>,
        failed: bool,
        /// The task container's termination message (with `FallbackToLogsOnError`, the
        /// tail of its log), which outlives the pod's log.
        termination: Option<String>,
    },
}

/// Classifies `pod`.
pub(crate) fn classify(pod: &Pod) -> PodState {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let Some(status) = &pod.status else {
        return PodState::Waiting;
    };
    let task = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == TASK_CONTAINER);
    let terminated = task
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let termination = terminated
        .and_then(|t| t.message.clone())
        .filter(|m| !m.trim().is_empty());
    match status.phase.as_deref() {
        Some("Succeeded") => {
            return PodState::Ended {
                exit_code: Some(terminated.map_or(0, |t| t.exit_code)),
                message: None,
                failed: false,
                termination,
            }
        }
        Some("Failed") => {
            let exit_code = terminated.map(|t| t.exit_code);
            let reason = terminated.and_then(|t| t.reason.as_deref());
            let message = match (status.reason.as_deref(), reason) {
                (Some("DeadlineExceeded"), _) => {
                    let secs = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.active_deadline_seconds)
                        .map_or_else(|| "its".to_string(), |s| format!("{s} s"));
                    Some(format!(
                        "pod {name} ran longer than its deadline ({secs}, activeDeadlineSeconds) \
                         and Kubernetes stopped it (DeadlineExceeded); raise the task's \
                         execution_timeout or find out why it hangs"
                    ))
                }
                (_, Some("OOMKilled")) => Some(format!(
                    "pod {name}: the task ran out of memory and was killed (OOMKilled) at its \
                     memory limit of {}; raise the task's resources.limits.memory",
                    memory_limit(pod)
                )),
                (Some(r), _) => Some(format!(
                    "pod {name} failed: {r}{}",
                    status
                        .message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                )),
                (None, Some(r)) if r != "Error" && r != "Completed" => {
                    Some(format!("pod {name}: the task container ended with {r}"))
                }
                _ => None,
            };
            return PodState::Ended {
                exit_code,
                message,
                failed: true,
                termination,
            };
        }
        _ => {}
    }
    let waiting = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find_map(|c| waiting_problem(name, c));
    if let Some((why, message)) = waiting {
        return PodState::Stuck { why, message };
    }
    if let Some(cond) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    }) {
        return PodState::Stuck {
            why: Stuck::Unschedulable,
            message: format!(
                "pod {name} cannot be scheduled on any node ({}); check the task's \
                 resources.requests, execution.node_selector and execution.tolerations",
                cond.message.as_deref().unwrap_or("no reason given")
            ),
        };
    }
    let running = status.phase.as_deref() == Some("Running")
        || task
            .and_then(|c| c.state.as_ref())
            .is_some_and(|s| s.running.is_some());
    if running {
        PodState::Running {
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        }
    } else {
        PodState::Waiting
    }
}

fn waiting_problem(pod: &str, c: &ContainerStatus) -> Option<(Stuck, String)> {
    let w = c.state.as_ref()?.waiting.as_ref()?;
    let reason = w.reason.as_deref()?;
    let detail = w
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let why = match reason {
        "ErrImagePull" | "ImagePullBackOff" => Stuck::ImagePull,
        "InvalidImageName" => Stuck::Never,
        _ => return None,
    };
    Some((
        why,
        format!(
            "pod {pod}: the image {} of container {} cannot be pulled ({reason}{detail}); \
             check the DAG's image (or the executor's agent image) and the registry's pull \
             credentials",
            c.image, c.name
        ),
    ))
}

fn memory_limit(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == TASK_CONTAINER))
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map_or_else(|| "the node's memory".to_string(), |q| q.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(pod: serde_json::Value, expected: &PodState) {
        let pod: Pod = serde_json::from_value(pod).unwrap_or_else(|e| panic!("bad pod: {e}"));
        assert_eq!(&classify(&pod), expected);
    }

    fn terminated(code: i32, reason: &str) -> serde_json::Value {
        json!([{"name": "task", "image": "img", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "reason": reason}}}])
    }

    #[test]
    fn pods_are_classified_like_the_kubelet_reports_them() {
        let meta = json!({"name": "p"});
        check(json!({"metadata": meta}), &PodState::Waiting);
        check(
            json!({"metadata": meta, "status": {"phase": "Pending"}}),
            &PodState::Waiting,
        );
        check(
            json!({"metadata": meta, "spec": {"containers": [], "nodeName": "n1"},
                   "status": {"phase": "Running"}}),
            &PodState::Running {
                node: Some("n1".into()),
            },
        );
        check(
            json!({"metadata": meta, "status": {"phase": "Succeeded",
                   "containerStatuses": terminated(0, "Completed")}}),
            &PodState::Ended {
                exit_code: Some(0),
                message: None,
                failed: false,
                termination: None,
            },
        );
        let mut with_message = terminated(2, "Error");
        with_message[0]["state"]["terminated"]["message"] = json!("start failed: 401\n");
        check(
            json!({"metadata": meta, "status": {"phase": "Failed",
                   "containerStatuses": with_message}}),
            &PodState::Ended {
                exit_code: Some(2),
                message: None,
                failed: true,
                termination: Some("start failed: 401\n".into()),
            },
        );
        check(
            json!({"metadata": meta, "status": {"phase": "Failed",
                   "containerStatuses": terminated(1, "Error")}}),
            &PodState::Ended {
                exit_code: Some(1),
                message: None,
                failed: true,
                termination: None,
            },
        );
        let PodState::Ended { message: Some(m), exit_code: Some(137), failed: true, .. } = classify(
            &serde_json::from_value(json!({"metadata": meta,
                "spec": {"containers": [{"name": "task", "resources": {"limits": {"memory": "64Mi"}}}]},
                "status": {"phase": "Failed", "containerStatuses": terminated(137, "OOMKilled")}}))
            .unwrap_or_default(),
        ) else {
            panic!("OOMKilled is a failure with a message")
        };
        assert!(m.contains("OOMKilled") && m.contains("64Mi"), "{m}");
        let PodState::Ended {
            message: Some(m), ..
        } = classify(
            &serde_json::from_value(json!({"metadata": meta,
                "spec": {"containers": [], "activeDeadlineSeconds": 7},
                "status": {"phase": "Failed", "reason": "DeadlineExceeded"}}))
            .unwrap_or_default(),
        )
        else {
            panic!("DeadlineExceeded is a failure with a message")
        };
        assert!(m.contains("DeadlineExceeded") && m.contains("7 s"), "{m}");
        let PodState::Stuck { why: Stuck::ImagePull, message } = classify(
            &serde_json::from_value(json!({"metadata": meta, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "task", "image": "nope:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}))
            .unwrap_or_default(),
        ) else {
            panic!("ImagePullBackOff is stuck")
        };
        assert!(message.contains("nope:1"), "{message}");
        let PodState::Stuck { why: Stuck::Unschedulable, .. } = classify(
            &serde_json::from_value(json!({"metadata": meta, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available"}]}}))
            .unwrap_or_default(),
        ) else {
            panic!("Unschedulable is stuck")
        };
    }
}
