//! `KubernetesExecutor`: the `Executor` port over pods. `launch` creates the attempt's pod
//! (409 means it was launched already) and its token Secret, and returns as soon as the
//! API server accepted them. One watch on the pods labelled `managed-by=leoflow` drives
//! everything else: `Started` when a pod runs, `Exited` with a clear message when it ends
//! or is stuck past its deadline, `Lost` when it vanishes. A failed pod's own log is copied
//! into the attempt's log first, so a failure is never blank.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use async_trait::async_trait;
use chrono::Utc;
use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, Config};
use leoflow_ports::dag::TaskKind;
use leoflow_ports::executor::{
    Attempt, AttemptCredentials, Capabilities, Error, Event, EventStream, Executor,
};
use leoflow_ports::log::{LogLine, LogStore, LogStream};
use leoflow_ports::run::AttemptId;

use crate::config::{ClusterAccess, KubernetesConfig};
use crate::pod::{
    attempt_of, build_pod, build_secret, pod_name, MANAGED_BY_SELECTOR, TASK_CONTAINER,
};
use crate::status::{classify, PodState, Stuck};

/// How many lines of a failed pod's own log are copied into the attempt's log.
const POD_LOG_TAIL: i64 = 200;

/// The cluster could not be reached or configured.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to Kubernetes ({source_of_config}): {message}; check KUBECONFIG or the kubeconfig path, its current context, and that the API server is reachable")]
pub struct ConnectError {
    source_of_config: String,
    message: String,
}

/// Runs attempts as pods. Cheap to clone; clones share their state and their watch.
#[derive(Clone)]
pub struct KubernetesExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    config: KubernetesConfig,
    pods: Api<Pod>,
    secrets: Api<Secret>,
    credentials: Arc<dyn AttemptCredentials>,
    logs: Arc<dyn LogStore>,
    state: Mutex<State>,
    watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = self
            .watch
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            w.abort();
        }
    }
}

#[derive(Default)]
struct State {
    /// Every attempt launched by this executor: launching one again does nothing.
    launched: HashSet<AttemptId>,
    /// Pods whose attempt has not had its terminal event yet, by pod name.
    tracked: HashMap<String, Tracked>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
    /// Pods listed since the watch last (re)started, to find those deleted meanwhile.
    relisted: HashSet<String>,
}

/// How a pod ended, as its attempt reports it.
struct Ending {
    exit_code: Option<i32>,
    message: Option<String>,
    failed: bool,
    termination: Option<String>,
}

struct Tracked {
    attempt: AttemptId,
    /// The pod is known to exist (its create returned, or the watch saw it); until then a
    /// lookup that finds nothing proves nothing.
    created: bool,
    started: bool,
    cancelled: bool,
    /// A timer is waiting to fail the attempt if its pod stays stuck.
    stuck_timer: bool,
    /// The latest version of the pod seen.
    last: Option<Pod>,
}

impl Tracked {
    fn new(attempt: AttemptId) -> Tracked {
        Tracked {
            attempt,
            created: false,
            started: false,
            cancelled: false,
            stuck_timer: false,
            last: None,
        }
    }
}

impl KubernetesExecutor {
    /// Connects to the cluster `config.cluster` names and starts watching the namespace's
    /// Leoflow pods. Agents get credentials from `credentials`; failed pods' own logs and
    /// the executor's diagnostics go to `logs`. Must be called inside a tokio runtime.
    pub async fn connect(
        config: KubernetesConfig,
        credentials: Arc<dyn AttemptCredentials>,
        logs: Arc<dyn LogStore>,
    ) -> Result<KubernetesExecutor, ConnectError> {
        let (source_of_config, kube_config) = match &config.cluster {
            ClusterAccess::Infer => (
                "KUBECONFIG or in-cluster".to_string(),
                Config::infer().await.map_err(|e| e.to_string()),
            ),
            ClusterAccess::Kubeconfig(path) => {
                let source = format!("kubeconfig {}", path.display());
                let loaded = match Kubeconfig::read_from(path) {
                    Ok(k) => Config::from_custom_kubeconfig(k, &KubeConfigOptions::default())
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                (source, loaded)
            }
        };
        let kube_config = kube_config.map_err(|message| ConnectError {
            source_of_config: source_of_config.clone(),
            message,
        })?;
        let client = Client::try_from(kube_config).map_err(|e| ConnectError {
            source_of_config,
            message: e.to_string(),
        })?;
        Ok(KubernetesExecutor::with_client(
            client,
            config,
            credentials,
            logs,
        ))
    }

    fn with_client(
        client: Client,
        config: KubernetesConfig,
        credentials: Arc<dyn AttemptCredentials>,
        logs: Arc<dyn LogStore>,
    ) -> KubernetesExecutor {
        let inner = Arc::new(Inner {
            pods: Api::namespaced(client.clone(), &config.namespace),
            secrets: Api::namespaced(client, &config.namespace),
            config,
            credentials,
            logs,
            state: Mutex::new(State::default()),
            watch: Mutex::new(None),
        });
        let handle = tokio::spawn(watch(Arc::downgrade(&inner), inner.pods.clone()));
        *inner.watch.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        KubernetesExecutor { inner }
    }
}

/// Follows the pods of the namespace until the executor is dropped. The watcher re-lists
/// after a disconnect or a 410 Gone, with backoff while the API server is unreachable.
async fn watch(inner: Weak<Inner>, pods: Api<Pod>) {
    let config = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let mut stream = watcher(pods, config).default_backoff().boxed();
    while let Some(item) = stream.next().await {
        let Some(inner) = inner.upgrade() else { return };
        match item {
            Ok(watcher::Event::Apply(pod)) => inner.on_pod(pod),
            Ok(watcher::Event::InitApply(pod)) => {
                if let Some(name) = &pod.metadata.name {
                    inner.state().relisted.insert(name.clone());
                }
                inner.on_pod(pod);
            }
            Ok(watcher::Event::Delete(pod)) => inner.on_deleted(&pod),
            Ok(watcher::Event::Init) => inner.state().relisted.clear(),
            Ok(watcher::Event::InitDone) => inner.after_relist(),
            Err(e) => tracing::warn!(error = %e, "kubernetes pod watch interrupted; resuming"),
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few map operations; a poisoned lock holds
        // consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, event: &Event) {
        self.state()
            .subscribers
            .retain(|tx| tx.unbounded_send(event.clone()).is_ok());
    }

    /// A new version of a pod: report what changed for its attempt.
    fn on_pod(self: &Arc<Self>, pod: Pod) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        let state = classify(&pod);
        let mut st = self.state();
        let Some(t) = st.tracked.get_mut(&name) else {
            return;
        };
        t.created = true;
        t.last = Some(pod);
        match state {
            PodState::Waiting => {}
            PodState::Running { node } => {
                if !t.started {
                    t.started = true;
                    let event = Event::Started {
                        attempt: t.attempt.clone(),
                        executor_ref: Some(name),
                        hostname: node,
                    };
                    drop(st);
                    self.emit(&event);
                }
            }
            PodState::Stuck { why, message } => {
                let limit = match why {
                    Stuck::Unschedulable => Some(self.config.unschedulable_timeout),
                    Stuck::ImagePull => Some(self.config.image_pull_timeout),
                    Stuck::Never => None,
                };
                match limit {
                    None => {
                        let t = st.tracked.remove(&name);
                        drop(st);
                        if let Some(t) = t {
                            self.fail_stuck(name, t.attempt, message);
                        }
                    }
                    Some(limit) if !t.stuck_timer => {
                        t.stuck_timer = true;
                        drop(st);
                        let inner = Arc::downgrade(self);
                        tokio::spawn(async move {
                            tokio::time::sleep(limit).await;
                            if let Some(inner) = inner.upgrade() {
                                inner.stuck_deadline(&name);
                            }
                        });
                    }
                    Some(_) => {}
                }
            }
            PodState::Ended {
                exit_code,
                message,
                failed,
                termination,
            } => {
                let t = st.tracked.remove(&name);
                drop(st);
                if let Some(t) = t {
                    let ending = Ending {
                        exit_code,
                        message,
                        failed,
                        termination,
                    };
                    self.finish(name, t.attempt, ending, true);
                }
            }
        }
    }

    /// A stuck pod's grace is over: if it is still stuck, its attempt fails.
    fn stuck_deadline(self: &Arc<Self>, name: &str) {
        let mut st = self.state();
        let still = st
            .tracked
            .get(name)
            .and_then(|t| t.last.as_ref())
            .map(classify);
        let Some(PodState::Stuck { message, why }) = still else {
            if let Some(t) = st.tracked.get_mut(name) {
                t.stuck_timer = false;
            }
            return;
        };
        let limit = match why {
            Stuck::Unschedulable => self.config.unschedulable_timeout,
            _ => self.config.image_pull_timeout,
        };
        let Some(t) = st.tracked.remove(name) else {
            return;
        };
        drop(st);
        self.fail_stuck(
            name.to_string(),
            t.attempt,
            format!("{message} (gave up after {limit:?})"),
        );
    }

    /// Ends an attempt whose pod can never run: deletes the pod, says why.
    fn fail_stuck(self: &Arc<Self>, name: String, attempt: AttemptId, message: String) {
        let inner = self.clone();
        tokio::spawn(async move {
            inner.system_line(&attempt, message.clone()).await;
            inner.delete_pod(&name, 0).await;
            inner.emit(&Event::Exited {
                attempt,
                exit_code: None,
                message: Some(message),
            });
        });
    }

    /// Reports an ended pod: what its container left when it failed, a system line
    /// saying why, `Exited`, then deletes the pod unless failed pods are kept (or it is
    /// gone already).
    fn finish(self: &Arc<Self>, name: String, attempt: AttemptId, ending: Ending, exists: bool) {
        let inner = self.clone();
        tokio::spawn(async move {
            if ending.failed {
                inner
                    .copy_pod_log(&name, &attempt, exists, ending.termination.as_deref())
                    .await;
            }
            if let Some(m) = &ending.message {
                inner.system_line(&attempt, m.clone()).await;
            }
            inner.emit(&Event::Exited {
                attempt,
                exit_code: ending.exit_code,
                message: ending.message,
            });
            if exists && !(ending.failed && inner.config.keep_on_failure) {
                inner.delete_pod(&name, 0).await;
            }
        });
    }

    /// A pod was deleted: if its attempt had not ended, report how it went.
    fn on_deleted(self: &Arc<Self>, pod: &Pod) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        let Some(t) = self.state().tracked.remove(&name) else {
            return;
        };
        match classify(pod) {
            PodState::Ended {
                exit_code,
                message,
                failed,
                termination,
            } => {
                let ending = Ending {
                    exit_code,
                    message,
                    failed,
                    termination,
                };
                self.finish(name, t.attempt, ending, false);
            }
            _ if t.cancelled => self.emit(&Event::Exited {
                attempt: t.attempt,
                exit_code: None,
                message: Some(format!("pod {name} was deleted: the attempt was cancelled")),
            }),
            _ => self.emit(&Event::Lost {
                attempt: t.attempt,
                reason: format!(
                    "pod {name} was deleted before it finished (by someone else than Leoflow, \
                     or its node went away)"
                ),
            }),
        }
    }

    /// After a re-list: tracked pods that were not listed may have been deleted while the
    /// watch was down; each is looked up once and reported.
    fn after_relist(self: &Arc<Self>) {
        let missing: Vec<String> = {
            let st = self.state();
            st.tracked
                .iter()
                .filter(|(n, t)| t.created && !st.relisted.contains(*n))
                .map(|(n, _)| n.clone())
                .collect()
        };
        for name in missing {
            let inner = self.clone();
            tokio::spawn(async move {
                match inner.pods.get_opt(&name).await {
                    Ok(Some(pod)) => inner.on_pod(pod),
                    Ok(None) => {
                        let pod = inner
                            .state()
                            .tracked
                            .get(&name)
                            .and_then(|t| t.last.clone());
                        let mut pod = pod.unwrap_or_default();
                        pod.metadata.name = Some(name);
                        inner.on_deleted(&pod);
                    }
                    Err(e) => {
                        tracing::warn!(pod = %name, error = %e, "cannot look a pod up after a re-list");
                    }
                }
            });
        }
    }

    /// Copies the tail of a failed pod's log into the attempt's log (while the pod
    /// exists), else its termination message, so a failure is never blank.
    async fn copy_pod_log(
        &self,
        name: &str,
        attempt: &AttemptId,
        exists: bool,
        termination: Option<&str>,
    ) {
        let params = LogParams {
            container: Some(TASK_CONTAINER.into()),
            tail_lines: Some(POD_LOG_TAIL),
            ..LogParams::default()
        };
        let log = if exists {
            self.pods
                .logs(name, &params)
                .await
                .map_err(|e| e.to_string())
        } else {
            Err(format!("pod {name} is deleted"))
        };
        let (header, text) = match (&log, termination) {
            (Ok(text), _) if !text.trim().is_empty() => (
                format!("pod {name} log (last {POD_LOG_TAIL} lines):"),
                text.as_str(),
            ),
            (_, Some(t)) => (format!("pod {name} termination message:"), t),
            (Ok(_), None) => return,
            (Err(e), None) => {
                self.system_line(attempt, format!("could not read pod {name}'s log: {e}"))
                    .await;
                return;
            }
        };
        let at = Utc::now();
        let mut lines = vec![LogLine {
            at,
            stream: LogStream::System,
            message: header,
        }];
        // `child_pgid=` is the agent telling a local executor its task's process group; in
        // a pod it means nothing.
        lines.extend(
            text.lines()
                .filter(|l| !l.starts_with("child_pgid="))
                .map(|l| LogLine {
                    at,
                    stream: LogStream::System,
                    message: l.to_string(),
                }),
        );
        if let Err(e) = self.logs.append(attempt, &lines).await {
            tracing::warn!(%attempt, error = %e, "could not store a pod's log");
        }
    }

    async fn delete_pod(&self, name: &str, grace_seconds: u32) {
        let params = DeleteParams {
            grace_period_seconds: Some(grace_seconds),
            ..DeleteParams::default()
        };
        match self.pods.delete(name, &params).await {
            Ok(_) | Err(kube::Error::Api(kube::core::ErrorResponse { code: 404, .. })) => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "could not delete a pod"),
        }
    }

    async fn system_line(&self, attempt: &AttemptId, message: String) {
        let line = LogLine {
            at: Utc::now(),
            stream: LogStream::System,
            message,
        };
        if let Err(e) = self.logs.append(attempt, &[line]).await {
            tracing::warn!(%attempt, error = %e, "could not log an executor line");
        }
    }

    /// Creates the attempt's pod, or finds it when it exists already; returns its uid.
    async fn create_pod(&self, attempt: &Attempt, name: &str) -> Result<String, Error> {
        let pod =
            build_pod(&self.config, attempt, name, &self.credentials.agent_url()).map_err(|e| {
                Error::Rejected {
                    message: e.to_string(),
                }
            })?;
        let created = match self.pods.create(&PostParams::default(), &pod).await {
            Ok(p) => p,
            Err(kube::Error::Api(kube::core::ErrorResponse { code: 409, .. })) => self
                .pods
                .get(name)
                .await
                .map_err(|e| api_error(&self.config.namespace, name, "read pod", &e))?,
            Err(e) => return Err(api_error(&self.config.namespace, name, "create pod", &e)),
        };
        Ok(created.metadata.uid.unwrap_or_default())
    }

    async fn create_secret(&self, attempt: &Attempt, name: &str, uid: &str) -> Result<(), Error> {
        let secret = build_secret(
            &self.config,
            &attempt.id,
            name,
            uid,
            &self.credentials.token_for(attempt),
        );
        match self.secrets.create(&PostParams::default(), &secret).await {
            Ok(_) | Err(kube::Error::Api(kube::core::ErrorResponse { code: 409, .. })) => Ok(()),
            Err(e) => Err(api_error(&self.config.namespace, name, "create secret", &e)),
        }
    }
}

/// An API server error as an executor error: client errors (the spec is wrong, access is
/// denied) are not retryable, the rest is.
fn api_error(namespace: &str, name: &str, what: &str, e: &kube::Error) -> Error {
    match e {
        kube::Error::Api(r) if r.code == 400 || r.code == 422 => Error::Rejected {
            message: format!(
                "Kubernetes refused to {what} {namespace}/{name}: {}; fix the task's spec \
                 (resources, execution settings, env)",
                r.message
            ),
        },
        kube::Error::Api(r) if r.code == 401 || r.code == 403 || r.code == 404 => {
            Error::Unavailable {
                message: format!(
                    "cannot {what} {namespace}/{name}: {} ({}); check that namespace {namespace} \
                     exists and that Leoflow's service account may manage pods and secrets there",
                    r.message, r.code
                ),
                retryable: false,
            }
        }
        e => Error::Unavailable {
            message: format!("cannot {what} {namespace}/{name}: {e}"),
            retryable: true,
        },
    }
}

#[async_trait]
impl Executor for KubernetesExecutor {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            kinds: vec![TaskKind::Python, TaskKind::Bash, TaskKind::HttpApi],
            isolated: true,
            reattaches: true,
        }
    }

    async fn launch(&self, attempt: Attempt) -> Result<(), Error> {
        let kind = attempt.task().kind;
        if !matches!(kind, TaskKind::Python | TaskKind::Bash | TaskKind::HttpApi) {
            return Err(Error::Rejected {
                message: format!(
                    "the kubernetes executor runs python, bash and http_api (pod mode) tasks, not {}",
                    kind.as_str()
                ),
            });
        }
        let inner = &self.inner;
        let name = pod_name(&attempt.id);
        {
            let mut st = inner.state();
            if !st.launched.insert(attempt.id.clone()) {
                return Ok(());
            }
            // An adopted pod keeps what the watch already told about it.
            st.tracked
                .entry(name.clone())
                .or_insert_with(|| Tracked::new(attempt.id.clone()));
        }
        let created = match inner.create_pod(&attempt, &name).await {
            Ok(uid) => inner.create_secret(&attempt, &name, &uid).await,
            Err(e) => Err(e),
        };
        if let Err(e) = created {
            {
                let mut st = inner.state();
                st.launched.remove(&attempt.id);
                st.tracked.remove(&name);
            }
            inner.delete_pod(&name, 0).await;
            return Err(e);
        }
        let cancelled = inner.state().tracked.get_mut(&name).is_some_and(|t| {
            t.created = true;
            t.cancelled
        });
        // A cancel that arrived while the pod was being created found nothing to delete.
        if cancelled {
            inner
                .delete_pod(&name, inner.config.cancel_grace.as_secs() as u32)
                .await;
        }
        Ok(())
    }

    async fn cancel(&self, attempt: &AttemptId) -> Result<(), Error> {
        let name = pod_name(attempt);
        // Untracked attempts are deleted too: after a restart that did not re-list, the pod
        // may still run. The name is the attempt's, so nothing else can be hit; 404 is fine.
        if let Some(t) = self.inner.state().tracked.get_mut(&name) {
            t.cancelled = true;
        }
        self.inner
            .delete_pod(&name, self.inner.config.cancel_grace.as_secs() as u32)
            .await;
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded();
        self.inner.state().subscribers.push(tx);
        rx.boxed()
    }

    /// The attempts whose pods are pending or running (not being deleted); they are
    /// tracked from now on, so a restarted control plane gets their terminal events.
    async fn live(&self) -> Result<Vec<AttemptId>, Error> {
        let list = self
            .inner
            .pods
            .list(&ListParams::default().labels(MANAGED_BY_SELECTOR))
            .await
            .map_err(|e| Error::Unavailable {
                message: format!(
                    "cannot list the pods of namespace {}: {e}",
                    self.inner.config.namespace
                ),
                retryable: true,
            })?;
        let mut ids = Vec::new();
        let mut adopted = Vec::new();
        {
            let mut st = self.inner.state();
            for pod in list.items {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if matches!(phase, Some("Succeeded" | "Failed"))
                    || pod.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                let (Some(name), Some(attempt)) = (pod.metadata.name.clone(), attempt_of(&pod))
                else {
                    continue;
                };
                // Not marked launched: launching it again (recovery does, for attempts
                // still queued) completes a launch cut short between the pod and its Secret.
                if let std::collections::hash_map::Entry::Vacant(e) = st.tracked.entry(name) {
                    e.insert(Tracked::new(attempt.clone()));
                    adopted.push(pod);
                }
                ids.push(attempt);
            }
        }
        // The watch may have seen these pods before they were tracked.
        for pod in adopted {
            self.inner.on_pod(pod);
        }
        ids.sort();
        Ok(ids)
    }
}
