//! A fake Kubernetes API server for tests: an in-process axum server on 127.0.0.1 speaking
//! the real REST wire protocol for what the Kubernetes executor uses (pods and secrets:
//! create, get, list, watch with resource versions and 410 Gone, delete with a grace
//! period; pod log and status), and a fake kubelet that runs each pod's containers as local
//! processes with the pod's environment, reporting phases and exit codes like the real one.
//!
//! Paths under a pod's emptyDir mounts map to a local directory per pod and volume, and the
//! agent's path in the agent image maps to the real `leoflow-agent` binary, so the init
//! container's `cp` installs the real agent and the task container runs it. Faults are
//! injected per image: an image that cannot be pulled, a pod no node can take, an OOM kill.

#![allow(dead_code, clippy::unwrap_used)] // Shared by several test crates; test code panics to report.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{SecondsFormat, Utc};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, watch};

/// The agent binary's path inside the agent image, as the tests configure the executor.
pub const AGENT_IN_IMAGE: &str = "/leoflow-agent";

/// What the fake kubelet does to pods of an image instead of running them normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The image cannot be pulled: the task container waits in `ImagePullBackOff`.
    ImagePull,
    /// No node fits: `PodScheduled=False`, reason `Unschedulable`.
    Unschedulable,
    /// The container is killed with exit code 137, reason `OOMKilled`, shortly after start.
    OomKill,
    /// The pod runs without a process until it is deleted (for benchmarks).
    Idle,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Kind {
    Pod,
    Secret,
}

impl Kind {
    fn parse(resource: &str) -> Option<Kind> {
        match resource {
            "pods" => Some(Kind::Pod),
            "secrets" => Some(Kind::Secret),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Secret => "Secret",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Secret => "secrets",
        }
    }
}

type Key = (Kind, String, String);

struct Watcher {
    kind: Kind,
    namespace: String,
    selector: String,
    tx: mpsc::UnboundedSender<Bytes>,
}

#[derive(Default)]
struct Cluster {
    rv: u64,
    uids: u64,
    objects: BTreeMap<Key, Value>,
    /// Every change, for watches that resume from a resource version.
    history: VecDeque<(u64, Kind, String, &'static str, Value)>,
    /// Watches from a resource version below this get 410 Gone.
    compacted: u64,
    watchers: Vec<Watcher>,
    logs: HashMap<String, String>,
    /// A running pod's stop signal: the grace period its deletion gave it.
    stops: HashMap<String, watch::Sender<Option<Duration>>>,
    faults: HashMap<String, Fault>,
    /// Every pod and secret as created.
    created: Vec<Value>,
    requests: u64,
    lists: u64,
}

struct World {
    cluster: Mutex<Cluster>,
    agent: PathBuf,
    root: PathBuf,
}

/// A running fake API server.
pub struct FakeKube {
    pub url: String,
    world: Arc<World>,
    server: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.server.abort();
        let stops: Vec<_> = self.world.lock().stops.drain().collect();
        for (_, stop) in stops {
            let _ = stop.send(Some(Duration::ZERO));
        }
    }
}

impl FakeKube {
    /// Starts the server on a free 127.0.0.1 port; pods run `agent` where they run the
    /// agent. Must be called inside a tokio runtime.
    pub async fn start(agent: PathBuf) -> FakeKube {
        let dir = tempfile::tempdir().unwrap();
        let world = Arc::new(World {
            cluster: Mutex::new(Cluster::default()),
            agent,
            root: dir.path().join("pods"),
        });
        let app = Router::new()
            .route(
                "/api/v1/namespaces/{ns}/{resource}",
                get(list_or_watch).post(create),
            )
            .route(
                "/api/v1/namespaces/{ns}/{resource}/{name}",
                get(read).delete(delete),
            )
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/status",
                get(pod_status),
            )
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeKube {
            url,
            world,
            server,
            dir,
        }
    }

    /// A kubeconfig file whose current context is this server, namespace `leoflow`.
    pub fn kubeconfig(&self) -> PathBuf {
        let path = self.dir.path().join("kubeconfig");
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "leoflow"}}],
        });
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    /// Pods of `image` get `fault` instead of running normally.
    pub fn inject(&self, image: &str, fault: Fault) {
        self.world.lock().faults.insert(image.into(), fault);
    }

    /// The pods that exist now.
    pub fn pods(&self) -> Vec<Value> {
        self.objects(Kind::Pod)
    }

    /// The secrets that exist now.
    pub fn secrets(&self) -> Vec<Value> {
        self.objects(Kind::Secret)
    }

    fn objects(&self, kind: Kind) -> Vec<Value> {
        let c = self.world.lock();
        c.objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every pod ever created, as created, in creation order.
    pub fn created_pods(&self) -> Vec<Value> {
        self.created(Kind::Pod)
    }

    /// Every secret ever created, as created.
    pub fn created_secrets(&self) -> Vec<Value> {
        self.created(Kind::Secret)
    }

    fn created(&self, kind: Kind) -> Vec<Value> {
        self.world
            .lock()
            .created
            .iter()
            .filter(|v| v["kind"] == kind.name())
            .cloned()
            .collect()
    }

    /// List calls served so far (a watcher lists again after a 410 Gone).
    pub fn lists(&self) -> u64 {
        self.world.lock().lists
    }

    /// HTTP requests served so far.
    pub fn requests(&self) -> u64 {
        self.world.lock().requests
    }

    /// Ends every open watch, as an API server restart or a load balancer timeout does.
    pub fn drop_watches(&self) {
        self.world.lock().watchers.clear();
    }

    /// Forgets the change history: a watch resuming from any version seen so far gets
    /// 410 Gone and must list again.
    pub fn compact(&self) {
        let mut c = self.world.lock();
        c.compacted = c.rv + 1;
        c.history.clear();
    }

    /// Deletes a pod at once, as an administrator or a node failure would.
    pub fn delete_pod_now(&self, namespace: &str, name: &str) {
        remove_pod(&self.world, namespace, name, Duration::ZERO);
    }
}

impl World {
    fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap()
    }
}

impl Cluster {
    /// Records a change and sends it to the matching watches.
    fn commit(&mut self, kind: Kind, namespace: &str, event: &'static str, mut obj: Value) {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        let key = (kind, namespace.to_string(), name);
        if event == "DELETED" {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key, obj.clone());
        }
        self.history
            .push_back((self.rv, kind, namespace.to_string(), event, obj.clone()));
        if self.history.len() > 10_000 {
            self.history.pop_front();
            self.compacted = self.history.front().map_or(self.rv, |h| h.0);
        }
        let line = event_line(event, &obj);
        self.watchers.retain(|w| {
            w.kind != kind
                || w.namespace != namespace
                || !matches(&w.selector, &obj)
                || w.tx.send(line.clone()).is_ok()
        });
    }

    fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Changes a pod through `f` and commits it as MODIFIED (if it still exists).
    fn update_pod(&mut self, namespace: &str, name: &str, f: impl FnOnce(&mut Value)) {
        if let Some(mut pod) = self.get(Kind::Pod, namespace, name) {
            f(&mut pod);
            self.commit(Kind::Pod, namespace, "MODIFIED", pod);
        }
    }
}

fn event_line(event: &str, obj: &Value) -> Bytes {
    let mut line = json!({"type": event, "object": obj}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// Equality-based label selectors (`a=b,c=d`) and existence (`a`).
fn matches(selector: &str, obj: &Value) -> bool {
    let labels = &obj["metadata"]["labels"];
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels[k.trim_end_matches('=')].as_str() == Some(v),
            None => !labels[term].is_null(),
        })
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn status(code: u16, reason: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    (StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
}

fn not_found(kind: Kind, name: &str) -> Response {
    status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.plural()),
    )
}

async fn list_or_watch(
    State(world): State<Arc<World>>,
    UrlPath((ns, resource)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(kind) = Kind::parse(&resource) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find {resource}"),
        );
    };
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    let mut c = world.lock();
    c.requests += 1;
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let from = q.get("resourceVersion").cloned().unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        if from.is_empty() || from == "0" {
            for ((k, n, _), obj) in &c.objects {
                if *k == kind && *n == ns && matches(&selector, obj) {
                    let _ = tx.send(event_line("ADDED", obj));
                }
            }
        } else {
            let from: u64 = from.parse().unwrap_or(0);
            if from < c.compacted {
                let gone = json!({"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {from} ({})", c.compacted),
                    "reason": "Expired", "code": 410}});
                let _ = tx.send(Bytes::from(format!("{gone}\n")));
                drop(tx);
                return watch_response(rx, Duration::from_secs(1));
            }
            for (rv, k, n, event, obj) in &c.history {
                if *rv > from && *k == kind && *n == ns && matches(&selector, obj) {
                    let _ = tx.send(event_line(event, obj));
                }
            }
        }
        c.watchers.push(Watcher {
            kind,
            namespace: ns,
            selector,
            tx,
        });
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(300);
        return watch_response(rx, Duration::from_secs(timeout));
    }
    c.lists += 1;
    let items: Vec<Value> = c
        .objects
        .iter()
        .filter(|((k, n, _), obj)| *k == kind && *n == ns && matches(&selector, obj))
        .map(|(_, v)| v.clone())
        .collect();
    Json(json!({
        "apiVersion": "v1", "kind": format!("{}List", kind.name()),
        "metadata": {"resourceVersion": c.rv.to_string()}, "items": items,
    }))
    .into_response()
}

fn watch_response(rx: mpsc::UnboundedReceiver<Bytes>, timeout: Duration) -> Response {
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = futures::stream::unfold(rx, move |mut rx| async move {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(b)) => Some((Ok::<_, Infallible>(b), rx)),
            _ => None,
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn create(
    State(world): State<Arc<World>>,
    UrlPath((ns, resource)): UrlPath<(String, String)>,
    Json(mut obj): Json<Value>,
) -> Response {
    let Some(kind) = Kind::parse(&resource) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find {resource}"),
        );
    };
    let Some(name) = obj["metadata"]["name"].as_str().map(str::to_string) else {
        return status(422, "Invalid", "metadata.name: Required value");
    };
    let mut c = world.lock();
    c.requests += 1;
    if c.get(kind, &ns, &name).is_some() {
        return status(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", kind.plural()),
        );
    }
    if kind == Kind::Pod {
        if let Some(message) = invalid_pod(&obj) {
            return status(
                422,
                "Invalid",
                format!("Pod \"{name}\" is invalid: {message}"),
            );
        }
    }
    c.uids += 1;
    obj["apiVersion"] = json!("v1");
    obj["kind"] = json!(kind.name());
    obj["metadata"]["namespace"] = json!(ns);
    obj["metadata"]["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", c.uids));
    obj["metadata"]["creationTimestamp"] = json!(now());
    if kind == Kind::Secret {
        if let Some(string_data) = obj.as_object_mut().unwrap().remove("stringData") {
            for (k, v) in string_data.as_object().unwrap() {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(v.as_str().unwrap_or_default());
                obj["data"][k] = json!(encoded);
            }
        }
    } else {
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
    c.created.push(obj.clone());
    c.commit(kind, &ns, "ADDED", obj);
    let created = c.get(kind, &ns, &name).unwrap();
    drop(c);
    if kind == Kind::Pod {
        tokio::spawn(kubelet(world, ns, name));
    }
    (StatusCode::CREATED, Json(created)).into_response()
}

/// The API server's own checks that the executor relies on.
fn invalid_pod(pod: &Value) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some(format!("metadata.name: Invalid value: {name:?}"));
    }
    for c in pod["spec"]["containers"].as_array()? {
        for which in ["requests", "limits"] {
            for (res, q) in c["resources"][which].as_object().into_iter().flatten() {
                let q = q.as_str().unwrap_or_default();
                let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                if digits.is_empty() || digits.parse::<f64>().is_err() {
                    return Some(format!(
                        "spec.containers[0].resources.{which}[{res}]: Invalid value: {q:?}"
                    ));
                }
            }
        }
    }
    None
}

async fn read(
    State(world): State<Arc<World>>,
    UrlPath((ns, resource, name)): UrlPath<(String, String, String)>,
) -> Response {
    let Some(kind) = Kind::parse(&resource) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find {resource}"),
        );
    };
    let mut c = world.lock();
    c.requests += 1;
    match c.get(kind, &ns, &name) {
        Some(obj) => Json(obj).into_response(),
        None => not_found(kind, &name),
    }
}

async fn pod_status(
    State(world): State<Arc<World>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> Response {
    read(State(world), UrlPath((ns, "pods".into(), name))).await
}

async fn pod_log(
    State(world): State<Arc<World>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut c = world.lock();
    c.requests += 1;
    if c.get(Kind::Pod, &ns, &name).is_none() {
        return not_found(Kind::Pod, &name);
    }
    let log = c.logs.get(&name).cloned().unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = q
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(lines.len())
        .min(lines.len());
    let mut text = lines[lines.len() - tail..].join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.into_response()
}

async fn delete(
    State(world): State<Arc<World>>,
    UrlPath((ns, resource, name)): UrlPath<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(kind) = Kind::parse(&resource) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find {resource}"),
        );
    };
    let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let grace = options["gracePeriodSeconds"]
        .as_u64()
        .or_else(|| q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()))
        .unwrap_or(30);
    let obj = {
        let mut c = world.lock();
        c.requests += 1;
        let Some(obj) = c.get(kind, &ns, &name) else {
            return not_found(kind, &name);
        };
        if kind == Kind::Secret {
            c.commit(kind, &ns, "DELETED", obj.clone());
            return Json(obj).into_response();
        }
        obj
    };
    let after = remove_pod(&world, &ns, &name, Duration::from_secs(grace));
    Json(after.unwrap_or(obj)).into_response()
}

/// Deletes a pod: a running one is told to stop within `grace` and disappears once its
/// process is gone; any other goes at once, with the secrets it owns.
fn remove_pod(world: &World, ns: &str, name: &str, grace: Duration) -> Option<Value> {
    let mut c = world.lock();
    let pod = c.get(Kind::Pod, ns, name)?;
    if pod["metadata"]["deletionTimestamp"].is_string() && !grace.is_zero() {
        return Some(pod);
    }
    if let Some(stop) = c.stops.get(name) {
        let _ = stop.send(Some(grace));
        c.update_pod(ns, name, |p| {
            p["metadata"]["deletionTimestamp"] = json!(now());
            p["metadata"]["deletionGracePeriodSeconds"] = json!(grace.as_secs());
        });
        return c.get(Kind::Pod, ns, name);
    }
    c.commit(Kind::Pod, ns, "DELETED", pod.clone());
    collect_owned(&mut c, ns, &pod);
    Some(pod)
}

/// The garbage collector: secrets owned by a deleted pod go with it.
fn collect_owned(c: &mut Cluster, ns: &str, pod: &Value) {
    let uid = pod["metadata"]["uid"].clone();
    let owned: Vec<Value> = c
        .objects
        .iter()
        .filter(|((k, n, _), s)| {
            *k == Kind::Secret
                && n == ns
                && s["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|r| r["uid"] == uid))
        })
        .map(|(_, s)| s.clone())
        .collect();
    for s in owned {
        c.commit(Kind::Secret, ns, "DELETED", s);
    }
}

fn waiting(container: &str, image: &str, reason: &str, message: &str) -> Value {
    json!([{"name": container, "image": image, "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}}])
}

/// The fake kubelet: schedules the pod, runs its init containers then its task container
/// as local processes, and reports like the real one.
async fn kubelet(world: Arc<World>, ns: String, name: String) {
    let Some(pod) = world.lock().get(Kind::Pod, &ns, &name) else {
        return;
    };
    let main = pod["spec"]["containers"][0].clone();
    let image = main["image"].as_str().unwrap_or_default().to_string();
    let fault = world.lock().faults.get(&image).copied();
    if fault == Some(Fault::Unschedulable) {
        world.lock().update_pod(&ns, &name, |p| {
            p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "lastTransitionTime": now(),
                "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}]);
        });
        return;
    }
    world.lock().update_pod(&ns, &name, |p| {
        p["spec"]["nodeName"] = json!("fake-node");
        p["status"]["conditions"] =
            json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}]);
    });
    if fault == Some(Fault::ImagePull) {
        for (reason, pause) in [("ErrImagePull", 50), ("ImagePullBackOff", 0)] {
            world.lock().update_pod(&ns, &name, |p| {
                p["status"]["containerStatuses"] = waiting(
                    "task",
                    &image,
                    reason,
                    &format!("Back-off pulling image \"{image}\""),
                );
            });
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        return;
    }
    let (stop_tx, mut stop_rx) = watch::channel(None);
    world.lock().stops.insert(name.clone(), stop_tx);
    if fault == Some(Fault::Idle) {
        world.lock().update_pod(&ns, &name, |p| {
            p["status"]["phase"] = json!("Running");
            p["status"]["startTime"] = json!(now());
        });
        let _ = stop_rx.changed().await;
        let mut c = world.lock();
        c.stops.remove(&name);
        if let Some(pod) = c.get(Kind::Pod, &ns, &name) {
            c.commit(Kind::Pod, &ns, "DELETED", pod.clone());
            collect_owned(&mut c, &ns, &pod);
        }
        return;
    }
    let ended = run_pod(&world, &ns, &name, &pod, fault, stop_rx).await;
    let mut c = world.lock();
    c.stops.remove(&name);
    let Some(current) = c.get(Kind::Pod, &ns, &name) else {
        return;
    };
    // `FallbackToLogsOnError`: a failed container's message is the tail of its log.
    let fallback_to_logs = main["terminationMessagePolicy"] == "FallbackToLogsOnError";
    let log = c.logs.get(&name).cloned().unwrap_or_default();
    let log_tail: String = log
        .lines()
        .rev()
        .take(80)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    c.update_pod(&ns, &name, |p| {
        let status = &mut p["status"];
        status["phase"] = json!(
            if ended.exit_code == Some(0) && ended.pod_reason.is_none() {
                "Succeeded"
            } else {
                "Failed"
            }
        );
        if let Some(r) = &ended.pod_reason {
            status["reason"] = json!(r);
            status["message"] = json!(ended.pod_message);
        }
        status["containerStatuses"] = json!([{"name": "task", "image": image, "imageID": "",
            "ready": false, "restartCount": 0, "state": {"terminated": {
                "exitCode": ended.exit_code.unwrap_or(137), "reason": ended.reason,
                "startedAt": ended.started, "finishedAt": now()}}}]);
        if ended.exit_code != Some(0) && fallback_to_logs {
            status["containerStatuses"][0]["state"]["terminated"]["message"] = json!(log_tail);
        }
    });
    if current["metadata"]["deletionTimestamp"].is_string() {
        let pod = c.get(Kind::Pod, &ns, &name).unwrap();
        c.commit(Kind::Pod, &ns, "DELETED", pod.clone());
        collect_owned(&mut c, &ns, &pod);
    }
}

struct Ended {
    exit_code: Option<i32>,
    reason: String,
    pod_reason: Option<String>,
    pod_message: String,
    started: String,
}

/// Maps container paths to local ones: emptyDir mounts to the pod's directories and the
/// agent's path in the agent image to the real binary.
struct Mounts {
    mounts: Vec<(String, PathBuf)>,
    agent: PathBuf,
}

impl Mounts {
    fn new(root: &Path, container: &Value, agent: &Path) -> Mounts {
        let mounts = container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let dir = root.join(m["name"].as_str().unwrap());
                std::fs::create_dir_all(&dir).unwrap();
                (m["mountPath"].as_str().unwrap().to_string(), dir)
            })
            .collect();
        Mounts {
            mounts,
            agent: agent.to_path_buf(),
        }
    }

    fn map(&self, s: &str) -> String {
        if s == AGENT_IN_IMAGE {
            return self.agent.display().to_string();
        }
        for (path, dir) in &self.mounts {
            if let Some(rest) = s.strip_prefix(path.as_str()) {
                if rest.is_empty() || rest.starts_with('/') {
                    return format!("{}{rest}", dir.display());
                }
            }
        }
        s.to_string()
    }
}

/// The command of `container`, with its env resolved (secret references included).
fn command(
    world: &World,
    ns: &str,
    dir: &Path,
    container: &Value,
) -> Result<tokio::process::Command, String> {
    let mounts = Mounts::new(dir, container, &world.agent);
    let argv: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(container["args"].as_array().into_iter().flatten())
        .map(|a| mounts.map(a.as_str().unwrap_or_default()))
        .collect();
    let mut cmd = tokio::process::Command::new(argv.first().ok_or("no command")?);
    cmd.args(&argv[1..]).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default();
        let value = if let Some(v) = e["value"].as_str() {
            mounts.map(v)
        } else {
            let r = &e["valueFrom"]["secretKeyRef"];
            let secret_name = r["name"].as_str().unwrap_or_default();
            let secret = world
                .lock()
                .get(Kind::Secret, ns, secret_name)
                .ok_or_else(|| format!("secret \"{secret_name}\" not found"))?;
            let encoded = secret["data"][r["key"].as_str().unwrap_or_default()]
                .as_str()
                .ok_or_else(|| format!("couldn't find key in Secret {ns}/{secret_name}"))?
                .to_string();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?
        };
        cmd.env(name, value);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    Ok(cmd)
}

async fn run_pod(
    world: &Arc<World>,
    ns: &str,
    name: &str,
    pod: &Value,
    fault: Option<Fault>,
    mut stop: watch::Receiver<Option<Duration>>,
) -> Ended {
    let dir = world.root.join(name);
    let main = &pod["spec"]["containers"][0];
    let fail = |reason: &str, message: String| Ended {
        exit_code: Some(128),
        reason: reason.into(),
        pod_reason: None,
        pod_message: message,
        started: now(),
    };
    for init in pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Ok(mut cmd) = command(world, ns, &dir, init) else {
            return fail("CreateContainerConfigError", "bad init container".into());
        };
        let out = cmd.output().await;
        if !out.is_ok_and(|o| o.status.success()) {
            return fail("Init:Error", "the init container failed".into());
        }
    }
    // The kubelet waits for the secrets the container's env refers to.
    let waited = Instant::now();
    let mut cmd = loop {
        match command(world, ns, &dir, main) {
            Ok(cmd) => break cmd,
            Err(message) => {
                if waited.elapsed() > Duration::from_secs(30) {
                    return fail("CreateContainerConfigError", message);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let Ok(mut child) = cmd.spawn() else {
        return fail("StartError", "the container command could not start".into());
    };
    let pgid = Pid::from_raw(child.id().unwrap() as i32);
    let task_group = Arc::new(Mutex::new(None::<Pid>));
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let world = world.clone();
        let name = name.to_string();
        let task_group = task_group.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(g) = line
                    .strip_prefix("child_pgid=")
                    .and_then(|g| g.parse().ok())
                {
                    *task_group.lock().unwrap() = Some(Pid::from_raw(g));
                }
                let mut c = world.lock();
                let log = c.logs.entry(name.clone()).or_default();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    // Everything the container started dies with it, as in a real pid namespace.
    let kill_all = move |sig: Signal| {
        if let Some(g) = *task_group.lock().unwrap() {
            let _ = killpg(g, sig);
        }
        let _ = killpg(pgid, sig);
    };
    let started = now();
    world.lock().update_pod(ns, name, |p| {
        p["status"]["phase"] = json!("Running");
        p["status"]["startTime"] = json!(started);
        p["status"]["containerStatuses"] = json!([{"name": "task", "image": main["image"],
            "imageID": "", "ready": true, "restartCount": 0, "started": true,
            "state": {"running": {"startedAt": started}}}]);
    });
    let deadline = pod["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(Duration::from_secs);
    let oom = async {
        if fault == Some(Fault::OomKill) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let past_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    let ended = |code: Option<i32>, reason: &str| Ended {
        exit_code: code,
        reason: reason.into(),
        pod_reason: None,
        pod_message: String::new(),
        started: started.clone(),
    };
    tokio::select! {
        status = child.wait() => {
            let code = status.ok().and_then(|s| s.code());
            kill_all(Signal::SIGKILL);
            ended(code, if code == Some(0) { "Completed" } else { "Error" })
        }
        () = oom => {
            kill_all(Signal::SIGKILL);
            let _ = child.wait().await;
            ended(Some(137), "OOMKilled")
        }
        () = past_deadline => {
            kill_all(Signal::SIGKILL);
            let _ = child.wait().await;
            Ended {
                pod_reason: Some("DeadlineExceeded".into()),
                pod_message: "Pod was active on the node longer than the specified deadline".into(),
                ..ended(Some(137), "Error")
            }
        }
        grace = async { let _ = stop.changed().await; *stop.borrow() } => {
            kill_all(Signal::SIGTERM);
            let grace = grace.unwrap_or_default();
            let code = if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
                status.ok().and_then(|s| s.code()).unwrap_or(143)
            } else {
                kill_all(Signal::SIGKILL);
                let _ = child.wait().await;
                137
            };
            kill_all(Signal::SIGKILL);
            ended(Some(code), "Error")
        }
    }
}
