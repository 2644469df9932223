//! Prometheus metrics: a small registry of counters and histograms rendered in the text
//! exposition format, with the names of `reference/runtime.md` §6 where the server has the
//! data, and gauges read from the engine and the datastore when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leoflow_core::Engine;
use leoflow_ports::executor::{Attempt, Capabilities, Error, EventStream, Executor};
use leoflow_ports::run::AttemptId;
use leoflow_ports::state::{RunState, TaskState};

/// Seconds; Prometheus's default buckets.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Families {
    counters: BTreeMap<&'static str, BTreeMap<Labels, u64>>,
    histograms: BTreeMap<&'static str, BTreeMap<Labels, Histogram>>,
}

/// The server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    families: Arc<Mutex<Families>>,
    replica_id: String,
}

const HELP: &[(&str, &str, &str)] = &[
    (
        "leoflow_scheduler_leader",
        "gauge",
        "1 while this replica holds the scheduler lease",
    ),
    (
        "leoflow_active_dag_runs",
        "gauge",
        "DAG runs queued or running, by DAG and state",
    ),
    (
        "leoflow_queued_tasks",
        "gauge",
        "task instances queued (launched, not started), by DAG",
    ),
    (
        "leoflow_running_tasks",
        "gauge",
        "task instances running, by DAG",
    ),
    (
        "leoflow_pods_created_total",
        "counter",
        "pod launches by the Kubernetes executor, by DAG and result",
    ),
    (
        "leoflow_dispatch_latency_seconds",
        "histogram",
        "time an executor launch takes (pod create, or an inline call's start)",
    ),
    (
        "leoflow_dispatch_inner_errors_total",
        "counter",
        "launches the executor refused or failed",
    ),
    (
        "leoflow_http_requests_total",
        "counter",
        "HTTP requests by method, route and status",
    ),
    (
        "leoflow_http_request_duration_seconds",
        "histogram",
        "HTTP request latency by method and route",
    ),
];

impl Metrics {
    pub fn new(replica_id: String) -> Metrics {
        Metrics {
            families: Arc::new(Mutex::new(Families::default())),
            replica_id,
        }
    }

    fn families(&self) -> std::sync::MutexGuard<'_, Families> {
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn inc(&self, name: &'static str, labels: Labels) {
        *self
            .families()
            .counters
            .entry(name)
            .or_default()
            .entry(labels)
            .or_default() += 1;
    }

    pub fn observe(&self, name: &'static str, labels: Labels, value: Duration) {
        let secs = value.as_secs_f64();
        let mut f = self.families();
        let h = f
            .histograms
            .entry(name)
            .or_default()
            .entry(labels)
            .or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The text exposition, with the gauges read from `engine` now.
    pub async fn render(&self, engine: &Engine) -> String {
        let mut gauges: BTreeMap<&'static str, Vec<(Labels, f64)>> = BTreeMap::new();
        gauges.entry("leoflow_scheduler_leader").or_default().push((
            vec![("replica_id", self.replica_id.clone())],
            f64::from(u8::from(engine.is_leader())),
        ));
        if let Ok(runs) = engine.datastore().active_runs().await {
            let mut by: BTreeMap<(String, &'static str), f64> = BTreeMap::new();
            for r in runs {
                let state = if r.state == RunState::Queued {
                    "queued"
                } else {
                    "running"
                };
                *by.entry((r.dag_id, state)).or_default() += 1.0;
            }
            let g = gauges.entry("leoflow_active_dag_runs").or_default();
            for ((dag, state), n) in by {
                g.push((vec![("dag_id", dag), ("state", state.to_string())], n));
            }
        }
        if let Ok(tis) = engine.datastore().in_flight().await {
            let mut queued: BTreeMap<String, f64> = BTreeMap::new();
            let mut running: BTreeMap<String, f64> = BTreeMap::new();
            for ti in tis {
                let map = if ti.state == TaskState::Queued {
                    &mut queued
                } else {
                    &mut running
                };
                *map.entry(ti.key.dag_id.clone()).or_default() += 1.0;
            }
            for (name, map) in [
                ("leoflow_queued_tasks", queued),
                ("leoflow_running_tasks", running),
            ] {
                let g = gauges.entry(name).or_default();
                for (dag, n) in map {
                    g.push((vec![("dag_id", dag)], n));
                }
            }
        }
        let f = self.families();
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            if let Some(samples) = gauges.get(name) {
                for (labels, v) in samples {
                    let _ = writeln!(out, "{name}{} {v}", render_labels(labels, None));
                }
            }
            if let Some(series) = f.counters.get(name) {
                for (labels, v) in series {
                    let _ = writeln!(out, "{name}{} {v}", render_labels(labels, None));
                }
            }
            if let Some(series) = f.histograms.get(name) {
                for (labels, h) in series {
                    for (i, b) in BUCKETS.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            render_labels(labels, Some(&b.to_string())),
                            h.counts[i]
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        render_labels(labels, Some("+Inf")),
                        h.count
                    );
                    let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), h.sum);
                    let _ = writeln!(
                        out,
                        "{name}_count{} {}",
                        render_labels(labels, None),
                        h.count
                    );
                }
            }
        }
        out
    }
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn handler(State((metrics, engine)): State<(Metrics, Engine)>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(&engine).await,
    )
        .into_response()
}

/// Middleware counting requests by method, route template and status.
pub async fn http(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics.inc(
        "leoflow_http_requests_total",
        vec![
            ("method", method.clone()),
            ("path", path.clone()),
            ("status", status),
        ],
    );
    metrics.observe(
        "leoflow_http_request_duration_seconds",
        vec![("method", method), ("path", path)],
        started.elapsed(),
    );
    response
}

/// What a [`Metered`] executor records about each launch.
#[derive(Clone, Copy)]
pub enum Meter {
    /// Every launch the engine dispatches: latency and failures.
    Dispatch,
    /// Pods created by the Kubernetes executor.
    Pods,
}

/// An executor that records its launches, and otherwise is `inner`.
pub struct Metered {
    inner: Arc<dyn Executor>,
    metrics: Metrics,
    meter: Meter,
}

impl Metered {
    pub fn new(inner: Arc<dyn Executor>, metrics: Metrics, meter: Meter) -> Metered {
        Metered {
            inner,
            metrics,
            meter,
        }
    }
}

#[async_trait]
impl Executor for Metered {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn launch(&self, attempt: Attempt) -> Result<(), Error> {
        let dag_id = attempt.id.task.dag_id.clone();
        let started = Instant::now();
        let result = self.inner.launch(attempt).await;
        match self.meter {
            Meter::Dispatch => {
                self.metrics.observe(
                    "leoflow_dispatch_latency_seconds",
                    Vec::new(),
                    started.elapsed(),
                );
                if result.is_err() {
                    self.metrics
                        .inc("leoflow_dispatch_inner_errors_total", Vec::new());
                }
            }
            Meter::Pods => {
                let outcome = if result.is_ok() { "success" } else { "error" };
                self.metrics.inc(
                    "leoflow_pods_created_total",
                    vec![("dag_id", dag_id), ("result", outcome.to_string())],
                );
            }
        }
        result
    }
    async fn cancel(&self, attempt: &AttemptId) -> Result<(), Error> {
        self.inner.cancel(attempt).await
    }
    fn subscribe(&self) -> EventStream {
        self.inner.subscribe()
    }
    async fn live(&self) -> Result<Vec<AttemptId>, Error> {
        self.inner.live().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::new("r\"1".into());
        m.observe(
            "leoflow_dispatch_latency_seconds",
            Vec::new(),
            Duration::from_millis(30),
        );
        m.inc(
            "leoflow_http_requests_total",
            vec![("path", "/a\"b".into())],
        );
        let f = m.families();
        let h = &f.histograms["leoflow_dispatch_latency_seconds"][&Vec::new()];
        assert_eq!(&h.counts[..4], &[0, 0, 0, 1]);
        assert_eq!(h.counts[10], 1);
        drop(f);
        assert_eq!(
            render_labels(&vec![("path", "/a\"b".into())], Some("+Inf")),
            "{path=\"/a\\\"b\",le=\"+Inf\"}"
        );
    }
}
