//! Kubernetes executor launch cost against the in-process fake API server: launch
//! throughput (pods created per second, each launch being a pod create and a Secret
//! create through the real kube client over HTTP) with a bounded pool of concurrent
//! launches, and the dispatch latency of one launch, from the call to the API server's
//! acceptance (`launch` returning) and to the `Started` event arriving through the watch.
//! Pods run no process here (the fake kubelet marks them running), so this measures
//! Leoflow and the API round trips, not container start.
//!
//! Run with `cargo bench -p leoflow-tests --bench kubernetes_launch`
//! (`BENCH_PODS=N` pods per throughput run, default 500). Prints a Markdown table.

#![allow(clippy::unwrap_used)] // Benchmark code: a panic is the failure report.

#[path = "../tests/fake_kube/mod.rs"]
mod fake_kube;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use leoflow_http::token::AgentTokens;
use leoflow_kubernetes::{ClusterAccess, KubernetesConfig, KubernetesExecutor};
use leoflow_memory::MemoryLogs;
use leoflow_ports::dag::DagSpec;
use leoflow_ports::executor::{Attempt, Event, Executor};
use leoflow_ports::run::{AttemptId, RunKey, RunType, TaskKey};
use serde_json::json;

use fake_kube::{FakeKube, Fault};

const IMAGE: &str = "bench/idle:1";

async fn executor(kube: &FakeKube) -> KubernetesExecutor {
    kube.inject(IMAGE, Fault::Idle);
    let tokens =
        AgentTokens::new(b"a bench secret that is long enough", "http://127.0.0.1:9").unwrap();
    let config = KubernetesConfig::new(
        ClusterAccess::Kubeconfig(kube.kubeconfig()),
        "leoflow/agent:bench",
        IMAGE,
    );
    KubernetesExecutor::connect(config, Arc::new(tokens), Arc::new(MemoryLogs::new()))
        .await
        .unwrap()
}

fn attempts(dag_id: &str, n: usize) -> Vec<Attempt> {
    let spec = json!({"schema_version": "1.0", "dag_id": dag_id, "dag_version": "bench",
        "image": "", "tasks": [{"task_id": "t", "type": "bash", "entrypoint": "true"}]});
    let dag = Arc::new(DagSpec::from_json(spec.to_string().as_bytes()).unwrap());
    (0..n)
        .map(|i| Attempt {
            id: AttemptId {
                task: TaskKey::new(&RunKey::new(dag_id, format!("run_{i:05}")), "t", -1),
                try_number: 1,
            },
            dag: dag.clone(),
            version_number: 1,
            run_type: RunType::Manual,
            timeout: None,
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Pods created per second, and API requests per launch (the watch's own list included).
async fn throughput(n: usize, pool: usize) -> (f64, f64) {
    let kube = FakeKube::start("/nonexistent/leoflow-agent".into()).await;
    let exec = executor(&kube).await;
    let began = Instant::now();
    futures::stream::iter(attempts(&format!("tp{pool}"), n))
        .for_each_concurrent(pool, |a| {
            let exec = exec.clone();
            async move { exec.launch(a).await.unwrap() }
        })
        .await;
    let took = began.elapsed();
    assert_eq!(kube.created_pods().len(), n);
    (
        n as f64 / took.as_secs_f64(),
        kube.requests() as f64 / n as f64,
    )
}

async fn latency(n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let kube = FakeKube::start("/nonexistent/leoflow-agent".into()).await;
    let exec = executor(&kube).await;
    let mut events = exec.subscribe();
    let (mut accepted, mut started) = (Vec::new(), Vec::new());
    for a in attempts("latency", n) {
        let id = a.id.clone();
        let began = Instant::now();
        exec.launch(a).await.unwrap();
        accepted.push(began.elapsed());
        loop {
            match events.next().await.unwrap() {
                Event::Started { attempt, .. } if attempt == id => break,
                _ => {}
            }
        }
        started.push(began.elapsed());
    }
    accepted.sort();
    started.sort();
    (accepted, started)
}

fn main() {
    let n: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| launches in flight | pods | pods created/s | API requests per launch |");
        println!("|---|---|---|---|");
        for pool in [1, 8, 32] {
            let (rate, calls) = throughput(n, pool).await;
            println!("| {pool} | {n} | {rate:.0} | {calls:.2} |");
        }
        let (accepted, started) = latency(200).await;
        println!();
        println!("| dispatch latency (200 serial launches) | p50 ms | p99 ms |");
        println!("|---|---|---|");
        println!(
            "| launch accepted (pod + Secret created) | {} | {} |",
            ms(percentile(&accepted, 0.5)),
            ms(percentile(&accepted, 0.99))
        );
        println!(
            "| `Started` received through the watch | {} | {} |",
            ms(percentile(&started, 0.5)),
            ms(percentile(&started, 0.99))
        );
    });
}
