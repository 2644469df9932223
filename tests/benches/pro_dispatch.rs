//! The Pro scheduler's throughput on Postgres + Redis (the engine as `leoflow-server`
//! wires it: Postgres datastore and logs, Redis XCom, notifier and scheduler lease) with
//! the pooled dispatcher against serial dispatch. The executor is the no-op fake behind a
//! fixed launch latency (`BENCH_LAUNCH_MS`, default 5 ms: a pod create's API round trip),
//! which is what a dispatch pool overlaps.
//!
//! Run with `cargo bench -p leoflow-tests --bench pro_dispatch`
//! (`BENCH_REPS=N`, default 3; `BENCH_WORKERS=N`, default 32). Prints a Markdown table.
//! Failover time is measured with real processes by the `pro_ha` tests, which print it.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)] // Benchmark code: a panic is the failure report.

mod bench_dags;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use leoflow_core::engine::TriggerRequest;
use leoflow_core::{Dispatch, Engine, EngineConfig, LeaseConfig};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::executor::{Attempt, Capabilities, Error, EventStream, Executor};
use leoflow_ports::run::{AttemptId, RunKey};
use leoflow_ports::state::RunState;
use leoflow_ports::testkit::fake_executor::FakeExecutor;
use leoflow_redis::testing::TestRedis;
use leoflow_redis::{RedisLocks, RedisNotifier, RedisXCom};

use bench_dags::{chain, python, spec};

/// The fake executor, each launch taking `delay` first.
struct SlowLaunch {
    inner: FakeExecutor,
    delay: Duration,
}

#[async_trait]
impl Executor for SlowLaunch {
    fn name(&self) -> &'static str {
        "slow-fake"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn launch(&self, attempt: Attempt) -> Result<(), Error> {
        tokio::time::sleep(self.delay).await;
        self.inner.launch(attempt).await
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

/// The shape of `fanout_100.py`: start → 100 tasks → join.
fn fanout_100() -> DagSpec {
    let mut tasks = vec![python("start", &[])];
    let ids: Vec<String> = (0..100).map(|i| format!("task_{i:03}")).collect();
    tasks.extend(ids.iter().map(|id| python(id, &["start".to_string()])));
    tasks.push(python("join", &ids));
    spec("fanout_100", tasks)
}

async fn engine(redis: &TestRedis, dispatch: Dispatch, delay: Duration) -> Engine {
    let clock = Arc::new(leoflow_core::clock::SystemClock);
    let pg = leoflow_postgres::testing::fresh_adapters().await;
    let conn = redis.fresh().await;
    Engine::builder()
        .executor(Arc::new(SlowLaunch {
            inner: FakeExecutor::new(),
            delay,
        }))
        .datastore(Arc::new(pg.store))
        .logs(Arc::new(pg.logs))
        .xcom(Arc::new(RedisXCom::new(
            &conn,
            clock.clone(),
            256 * 1024,
            Duration::from_secs(3600),
        )))
        .notifier(Arc::new(RedisNotifier::new(&conn)))
        .locks(Arc::new(RedisLocks::new(&conn, clock.clone())))
        .clock(clock)
        .config(EngineConfig {
            dispatch,
            default_max_active_tasks: None,
            lease: Some(LeaseConfig {
                name: "scheduler".into(),
                holder: "bench".into(),
                ttl: Duration::from_secs(5),
            }),
            ..EngineConfig::default()
        })
        .build()
        .unwrap()
}

/// Seconds for `runs` runs of `dag`, all triggered at once.
async fn measure(
    redis: &TestRedis,
    dispatch: Dispatch,
    delay: Duration,
    dag: &DagSpec,
    runs: usize,
) -> f64 {
    let engine = engine(redis, dispatch, delay).await;
    let running = engine.start();
    engine.register(dag.clone()).await.unwrap();
    // Wait until this engine leads, so the measurement starts with a scheduler.
    while !engine.is_leader() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    let mut keys: Vec<RunKey> = Vec::with_capacity(runs);
    for i in 0..runs {
        let req = TriggerRequest {
            run_id: Some(format!("r{i}")),
            ..Default::default()
        };
        keys.push(engine.trigger(&dag.dag_id, req).await.unwrap().key());
    }
    for k in &keys {
        assert_eq!(
            engine.wait_for_run(k).await.unwrap().state,
            RunState::Success
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    running.shutdown().await;
    seconds
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let reps = env_usize("BENCH_REPS", 3);
    let workers = env_usize("BENCH_WORKERS", 32);
    let delay = Duration::from_millis(env_usize("BENCH_LAUNCH_MS", 5) as u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = TestRedis::start().unwrap();
    let scenarios: Vec<(&str, DagSpec, usize)> = vec![
        ("fanout_100 (1 run)", fanout_100(), 1),
        ("fanout_100 × 10 runs", fanout_100(), 10),
        ("10-task chain × 1,000 runs", chain(10), 1_000),
    ];
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "Pro scheduler throughput on Postgres + Redis, no-op executor with a {} ms launch, {reps} repetitions, {cores} cores",
        delay.as_millis()
    );
    println!();
    println!("| scenario | dispatch | task instances | seconds (min / median / max) | task instances/s (median) |");
    println!("|---|---|---|---|---|");
    for (name, dag, runs) in &scenarios {
        for (label, dispatch) in [
            ("serial".to_string(), Dispatch::Serial),
            (
                format!("pool ({workers} workers)"),
                Dispatch::Pool { workers },
            ),
        ] {
            let mut secs: Vec<f64> = (0..reps)
                .map(|_| rt.block_on(measure(&redis, dispatch, delay, dag, *runs)))
                .collect();
            secs.sort_by(f64::total_cmp);
            let med = secs[secs.len() / 2];
            let tis = dag.tasks.len() * runs;
            println!(
                "| {name} | {label} | {tis} | {:.3} / {med:.3} / {:.3} | {:.0} |",
                secs[0],
                secs[secs.len() - 1],
                tis as f64 / med
            );
        }
    }
}
