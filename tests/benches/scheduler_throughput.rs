//! Scheduler throughput with the no-op fake executor on the memory adapters: how many task
//! instances per second the engine moves from `none` to `success` when the executor costs
//! nothing. Run with `cargo bench -p leoflow-tests --bench scheduler_throughput`
//! (`BENCH_REPS=N` repetitions, default 3). Prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)] // Benchmark code: a panic is the failure report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leoflow_core::engine::TriggerRequest;
use leoflow_core::{Engine, EngineConfig};
use leoflow_memory::{MemoryLogs, MemoryNotifier, MemoryStore, MemoryXCom};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::run::RunKey;
use leoflow_ports::state::RunState;
use leoflow_ports::testkit::fake_executor::FakeExecutor;
use serde_json::{json, Value};

fn python(id: &str, deps: &[String]) -> Value {
    json!({"task_id": id, "type": "python", "entrypoint": format!("dag.py:{id}"), "depends_on": deps})
}

fn spec(dag_id: &str, tasks: Vec<Value>) -> DagSpec {
    let v = json!({"schema_version": "1.0", "dag_id": dag_id, "dag_version": "bench", "image": "", "tasks": tasks});
    DagSpec::from_json(v.to_string().as_bytes()).expect("benchmark DAGs are valid")
}

/// root → `width` parallel tasks → join.
fn fan_out(width: usize) -> DagSpec {
    let mut tasks = vec![python("root", &[])];
    let ids: Vec<String> = (0..width).map(|i| format!("t{i:05}")).collect();
    tasks.extend(ids.iter().map(|id| python(id, &["root".to_string()])));
    tasks.push(python("join", &ids));
    spec(&format!("fanout_{width}"), tasks)
}

fn chain(len: usize) -> DagSpec {
    let tasks = (0..len)
        .map(|i| {
            let deps = if i == 0 {
                vec![]
            } else {
                vec![format!("c{:02}", i - 1)]
            };
            python(&format!("c{i:02}"), &deps)
        })
        .collect();
    spec(&format!("chain_{len}"), tasks)
}

fn engine() -> Engine {
    let clock = Arc::new(leoflow_core::clock::SystemClock);
    Engine::builder()
        .datastore(Arc::new(MemoryStore::new()))
        .executor(Arc::new(FakeExecutor::new()))
        .xcom(Arc::new(MemoryXCom::new(
            clock.clone(),
            256 * 1024,
            Duration::from_secs(3600),
        )))
        .logs(Arc::new(MemoryLogs::new()))
        .notifier(Arc::new(MemoryNotifier::new()))
        .clock(clock)
        .config(EngineConfig::default())
        .build()
        .expect("all ports given")
}

/// Triggers `runs` runs of `dag` and returns (task instances finished, seconds).
async fn measure(dag: &DagSpec, runs: usize) -> (usize, f64) {
    let engine = engine();
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
    let secs = start.elapsed().as_secs_f64();
    running.shutdown().await;
    (dag.tasks.len() * runs, secs)
}

fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn main() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scenarios: Vec<(String, DagSpec, usize)> = vec![
        ("fan-out 1,000 (1 run)".into(), fan_out(1_000), 1),
        ("fan-out 10,000 (1 run)".into(), fan_out(10_000), 1),
        ("10-task chain × 100 runs".into(), chain(10), 100),
        ("10-task chain × 1,000 runs".into(), chain(10), 1_000),
    ];
    println!(
        "Scheduler throughput, memory adapters, no-op executor, {reps} repetitions, {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!();
    println!(
        "| scenario | task instances | seconds (min / median / max) | task instances/s (median) |"
    );
    println!("|---|---|---|---|");
    for (name, dag, runs) in &scenarios {
        let mut secs = Vec::new();
        let mut tis = 0;
        for _ in 0..reps {
            let (n, s) = rt.block_on(measure(dag, *runs));
            tis = n;
            secs.push(s);
        }
        let (lo, med, hi) = stats(secs);
        println!(
            "| {name} | {tis} | {lo:.3} / {med:.3} / {hi:.3} | {:.0} |",
            tis as f64 / med
        );
    }
}
