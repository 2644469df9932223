//! Datastore throughput on Postgres for the scheduler's traffic with a no-op executor,
//! without the engine: a 10,000-task fan-out and 1,000 runs of a 10-task chain, each task
//! moved none → scheduled → queued (batched, fenced, as a scheduler dispatches) then
//! running → success (one at a time, as executor events arrive). Prints task instances per
//! second and the "task finished → downstream queued" latency. A benchmark, not a test:
//!
//! ```text
//! cargo run --release -p leoflow-postgres --features testing --example store_throughput
//! ```
//!
//! `WORKERS` (default 16) sets the concurrency, `POOL` the pool size (default 10), `PING=0`
//! turns the idle-connection ping off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leoflow_ports::datastore::{Datastore, Transition};
use leoflow_ports::lock::FencingToken;
use leoflow_ports::run::TaskInstance;
use leoflow_ports::state::TaskState;
use leoflow_ports::testkit::fixtures;
use leoflow_postgres::testing::fresh_adapters_with;

const FENCE: Option<FencingToken> = Some(FencingToken(1));

fn step(ti: &TaskInstance, state: TaskState, try_number: u32) -> Transition {
    Transition {
        expected_state: ti.state,
        expected_try: ti.try_number,
        new: fixtures::moved(ti, state, try_number),
    }
}

/// Scheduled then queued, in two batched statements, as a dispatch step does.
async fn dispatch(store: &dyn Datastore, ready: &[TaskInstance]) -> Vec<TaskInstance> {
    let scheduled: Vec<Transition> = ready
        .iter()
        .map(|t| step(t, TaskState::Scheduled, 0))
        .collect();
    let ok = store
        .transition_many(&scheduled, FENCE)
        .await
        .expect("schedule");
    assert!(ok.iter().all(|w| *w));
    let queued: Vec<Transition> = scheduled
        .iter()
        .map(|t| step(&t.new, TaskState::Queued, 1))
        .collect();
    let ok = store.transition_many(&queued, FENCE).await.expect("queue");
    assert!(ok.iter().all(|w| *w));
    queued.into_iter().map(|t| t.new).collect()
}

/// Running then success, one statement each, as two executor events would.
async fn run_to_success(store: &dyn Datastore, queued: &TaskInstance) -> TaskInstance {
    let running = step(queued, TaskState::Running, 1);
    assert!(store.transition(&running, None).await.expect("running"));
    let done = step(&running.new, TaskState::Success, 1);
    assert!(store.transition(&done, None).await.expect("success"));
    done.new
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let workers = env("WORKERS", 16);
    let pool = env("POOL", 10);
    let adapters = fresh_adapters_with(|mut c| {
        c.max_connections = u32::try_from(pool).expect("POOL fits u32");
        if std::env::var("PING").is_ok_and(|v| v == "0") {
            c.ping_idle_after = None;
        }
        c
    })
    .await;
    println!("{workers} workers, pool of {pool}");
    let store: Arc<dyn Datastore> = Arc::new(adapters.store.clone());
    store
        .raise_fence(FencingToken(1))
        .await
        .expect("raise_fence");

    // A 10,000-task fan-out: created at once, dispatched in one batch, finished one by one
    // by `workers` concurrent "executor event" handlers.
    let run = fixtures::run("fanout", "r1", fixtures::at(0));
    let ids: Vec<String> = (0..10_000).map(|i| format!("t{i:05}")).collect();
    let tis: Vec<TaskInstance> = ids
        .iter()
        .map(|id| fixtures::task(&run.key(), id, -1))
        .collect();
    let started = Instant::now();
    store
        .create_run(&run, &tis, FENCE)
        .await
        .expect("create_run");
    let created = started.elapsed();
    let queued = dispatch(&*store, &tis).await;
    let dispatched = started.elapsed();
    let queued = Arc::new(queued);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            let queued = queued.clone();
            tokio::spawn(async move {
                for ti in queued.iter().skip(w).step_by(workers) {
                    run_to_success(&*store, ti).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("worker");
    }
    let total = started.elapsed();
    println!(
        "fan-out 10,000: create_run {created:?}, dispatch {:?}, all finished {total:?} -> {:.0} task instances/s",
        dispatched.saturating_sub(created),
        10_000.0 / total.as_secs_f64()
    );

    // 1,000 runs of a 10-task chain, `workers` runs in flight at a time. Each finish reads the run
    // (as the scheduler evaluates trigger rules) and dispatches the next task.
    let started = Instant::now();
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            let latencies = latencies.clone();
            tokio::spawn(async move {
                for r in (w..1000).step_by(workers) {
                    let run = fixtures::run("chain", &format!("r{r:04}"), fixtures::at(0));
                    let chain: Vec<TaskInstance> = (0..10)
                        .map(|i| fixtures::task(&run.key(), &format!("t{i}"), -1))
                        .collect();
                    store
                        .create_run(&run, &chain, FENCE)
                        .await
                        .expect("create_run");
                    let mut current = dispatch(&*store, &chain[..1]).await.remove(0);
                    for i in 1..10 {
                        run_to_success(&*store, &current).await;
                        let finished = Instant::now();
                        let snapshot = store.task_instances(&run.key()).await.expect("read run");
                        let next = snapshot
                            .into_iter()
                            .find(|t| t.key.task_id == format!("t{i}"))
                            .expect("next task");
                        current = dispatch(&*store, &[next]).await.remove(0);
                        latencies
                            .lock()
                            .expect("latencies")
                            .push(finished.elapsed());
                    }
                    run_to_success(&*store, &current).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("worker");
    }
    let total = started.elapsed();
    let mut lat = latencies.lock().expect("latencies").clone();
    lat.sort();
    println!(
        "1,000 runs x 10-task chain: {total:?} -> {:.0} task instances/s; finished -> downstream queued p50 {:?} p99 {:?}",
        10_000.0 / total.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}
