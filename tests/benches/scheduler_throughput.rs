//! Scheduler throughput with the no-op fake executor: how many task instances per second
//! the engine moves from `none` to `success` when running a task costs nothing, on the
//! memory adapters and on a real Postgres (a throwaway cluster from the system binaries),
//! plus the latency from a task finishing to its downstream task being queued.
//!
//! Run with `cargo bench -p leoflow-tests --bench scheduler_throughput`
//! (`BENCH_REPS=N` repetitions, default 3; `BENCH_BACKENDS=memory,postgres`). Prints
//! Markdown tables.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)] // Benchmark code: a panic is the failure report.

mod bench_dags;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leoflow_core::engine::TriggerRequest;
use leoflow_core::{Engine, EngineConfig};
use leoflow_memory::{MemoryLogs, MemoryNotifier, MemoryStore, MemoryXCom};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::datastore::Datastore;
use leoflow_ports::run::RunKey;
use leoflow_ports::state::RunState;
use leoflow_ports::testkit::fake_executor::FakeExecutor;

use bench_dags::{chain, python, spec};

/// root → `width` parallel tasks → join.
fn fan_out(width: usize) -> DagSpec {
    let mut tasks = vec![python("root", &[])];
    let ids: Vec<String> = (0..width).map(|i| format!("t{i:05}")).collect();
    tasks.extend(ids.iter().map(|id| python(id, &["root".to_string()])));
    tasks.push(python("join", &ids));
    spec(&format!("fanout_{width}"), tasks)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Memory,
    Postgres,
}

async fn engine(backend: Backend) -> Engine {
    let clock = Arc::new(leoflow_core::clock::SystemClock);
    let builder = Engine::builder()
        .executor(Arc::new(FakeExecutor::new()))
        .clock(clock.clone());
    let builder = match backend {
        Backend::Memory => builder
            .datastore(Arc::new(MemoryStore::new()))
            .xcom(Arc::new(MemoryXCom::new(
                clock,
                256 * 1024,
                Duration::from_secs(3600),
            )))
            .logs(Arc::new(MemoryLogs::new()))
            .notifier(Arc::new(MemoryNotifier::new())),
        Backend::Postgres => {
            let pg = leoflow_postgres::testing::fresh_adapters().await;
            builder
                .datastore(Arc::new(pg.store))
                .xcom(Arc::new(pg.xcom))
                .logs(Arc::new(pg.logs))
                .notifier(Arc::new(pg.notifier))
        }
    };
    // The scheduler's own throughput: no cap on active tasks (the default 16 would make a
    // fan-out measure the no-op executor's turnaround instead).
    builder
        .config(EngineConfig {
            default_max_active_tasks: None,
            ..EngineConfig::default()
        })
        .build()
        .expect("all ports given")
}

struct Measure {
    task_instances: usize,
    seconds: f64,
    /// "upstream finished → downstream queued", one sample per dependent task.
    handoff_ms: Vec<f64>,
}

/// Triggers `runs` runs of `dag`, waits for all, and reads the hand-off latencies.
async fn measure(backend: Backend, dag: &DagSpec, runs: usize) -> Measure {
    let engine = engine(backend).await;
    let running = engine.start();
    engine.register(dag.clone()).await.expect("registers");
    let start = Instant::now();
    let mut keys: Vec<RunKey> = Vec::with_capacity(runs);
    for i in 0..runs {
        let req = TriggerRequest {
            run_id: Some(format!("r{i}")),
            ..Default::default()
        };
        keys.push(
            engine
                .trigger(&dag.dag_id, req)
                .await
                .expect("triggers")
                .key(),
        );
    }
    for k in &keys {
        let run = engine.wait_for_run(k).await.expect("finishes");
        assert_eq!(run.state, RunState::Success);
    }
    let seconds = start.elapsed().as_secs_f64();
    running.shutdown().await;
    let handoff_ms = handoffs(engine.datastore(), dag, &keys).await;
    Measure {
        task_instances: dag.tasks.len() * runs,
        seconds,
        handoff_ms,
    }
}

async fn handoffs(store: &Arc<dyn Datastore>, dag: &DagSpec, keys: &[RunKey]) -> Vec<f64> {
    let mut out = Vec::new();
    for k in keys.iter().take(100) {
        let tis = store.task_instances(k).await.unwrap();
        let by_id: HashMap<&str, _> = tis.iter().map(|t| (t.key.task_id.as_str(), t)).collect();
        for t in &dag.tasks {
            let Some(down) = by_id.get(t.task_id.as_str()).and_then(|d| d.queued_at) else {
                continue;
            };
            let ends = t
                .depends_on
                .iter()
                .filter_map(|u| by_id.get(u.as_str()).and_then(|u| u.ended_at));
            if let Some(last) = ends.max() {
                out.push((down - last).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
    }
    out
}

fn spread(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let wanted = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "memory,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut backends = Vec::new();
    if wanted.contains("memory") {
        backends.push(Backend::Memory);
    }
    if wanted.contains("postgres") {
        match leoflow_postgres::testing::TestCluster::start() {
            Ok(probe) => {
                drop(probe);
                backends.push(Backend::Postgres);
            }
            Err(e) => eprintln!("skipping Postgres: cannot start a throwaway cluster ({e})"),
        }
    }
    let scenarios: Vec<(&str, DagSpec, usize)> = vec![
        ("fan-out 1,000 (1 run)", fan_out(1_000), 1),
        ("fan-out 10,000 (1 run)", fan_out(10_000), 1),
        ("10-task chain × 100 runs", chain(10), 100),
        ("10-task chain × 1,000 runs", chain(10), 1_000),
    ];
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "Scheduler throughput, no-op executor, serial dispatch, {reps} repetitions, {cores} cores"
    );
    println!();
    println!("| backend | scenario | task instances | seconds (min / median / max) | task instances/s (median) | finished → downstream queued p50 / p99 ms |");
    println!("|---|---|---|---|---|---|");
    for &backend in &backends {
        for (name, dag, runs) in &scenarios {
            let mut secs = Vec::new();
            let mut lat = Vec::new();
            let mut tis = 0;
            for _ in 0..reps {
                let m = rt.block_on(measure(backend, dag, *runs));
                tis = m.task_instances;
                secs.push(m.seconds);
                lat.extend(m.handoff_ms);
            }
            lat.sort_by(f64::total_cmp);
            let (lo, med, hi) = spread(secs);
            println!(
                "| {backend:?} | {name} | {tis} | {lo:.3} / {med:.3} / {hi:.3} | {:.0} | {:.2} / {:.2} |",
                tis as f64 / med,
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            );
        }
    }
}
