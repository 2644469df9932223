//! Test support (feature `testing`): [`TestCluster`], a throwaway [`Cluster`] in a temporary
//! directory (fsync off) with one fresh database per test. No Docker needed. Also the adapter's hot queries, for
//! tests that check their plans with `EXPLAIN`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use leoflow_ports::datastore::{RunFilter, TaskFilter};
use leoflow_ports::run::RunKey;
use leoflow_ports::state::{RunState, TaskState};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor, PgPool, Row};

use crate::cluster::{self, Cluster, ClusterConfig, StopMode};
use crate::datastore::{runs, tasks};
use crate::{PostgresAdapters, PostgresConfig};

/// Why a test cluster could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    #[error("test cluster SQL error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A Postgres cluster owned by the test process: stopped and deleted on drop, and by a
/// watchdog process if the test process dies without dropping it (statics are never
/// dropped, so the [`TestCluster::shared`] one relies on the watchdog).
#[derive(Debug)]
pub struct TestCluster {
    cluster: Cluster,
    next_db: AtomicU32,
}

static SHARED: OnceLock<TestCluster> = OnceLock::new();
static CLUSTERS: AtomicU32 = AtomicU32::new(0);

impl TestCluster {
    /// One cluster for the whole test binary, started on first use. Panics with the
    /// reason (missing binaries, …) if it cannot start: a test that needs Postgres
    /// cannot run without it.
    pub fn shared() -> &'static TestCluster {
        SHARED.get_or_init(|| {
            TestCluster::start().unwrap_or_else(|e| panic!("cannot start test Postgres: {e}"))
        })
    }

    /// A new cluster of its own (for tests that restart or stop the server).
    pub fn start() -> Result<TestCluster, Error> {
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let base = if std::env::temp_dir().as_os_str().len() < 60 {
            std::env::temp_dir()
        } else {
            PathBuf::from("/tmp")
        };
        let dir = base.join(format!("leoflow-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Durability is worthless for a throwaway cluster; speed is not.
        let settings = [
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "300"),
        ];
        let cluster = Cluster::new(ClusterConfig {
            dir,
            superuser: "postgres".into(),
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            durable: false,
            bin_dir: None,
        })?;
        let cluster = TestCluster {
            cluster,
            next_db: AtomicU32::new(0),
        };
        cluster.spawn_watchdog();
        cluster.cluster.init()?;
        cluster.cluster.start()?;
        Ok(cluster)
    }

    /// A detached shell that stops the cluster and deletes its directory once this
    /// process is gone, however it ended.
    fn spawn_watchdog(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = self.cluster.stop_command(StopMode::Immediate),
            dir = self.cluster.dir().display(),
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// The URL of database `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        self.cluster.url(database)
    }

    /// Creates an empty database and returns its URL.
    pub async fn fresh_database(&self) -> Result<String, Error> {
        let name = format!(
            "leoflow_test_{}",
            self.next_db.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&self.url("postgres")).await?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        let _ = admin.close().await;
        Ok(self.url(&name))
    }

    /// `pg_ctl restart -m fast`: every session is terminated, the server comes back on
    /// the same socket.
    pub fn restart(&self) -> Result<(), Error> {
        Ok(self.cluster.restart()?)
    }

    /// Stops the server (fast shutdown); [`TestCluster::resume`] starts it again.
    pub fn stop(&self) -> Result<(), Error> {
        Ok(self.cluster.stop(StopMode::Fast)?)
    }

    pub fn resume(&self) -> Result<(), Error> {
        self.cluster.start()?;
        Ok(())
    }

    pub fn socket_dir(&self) -> &Path {
        self.cluster.dir()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop(StopMode::Immediate);
        let _ = std::fs::remove_dir_all(self.cluster.dir());
    }
}

/// A fresh, migrated database on the [shared](TestCluster::shared) cluster and every
/// adapter on it, built from `configure(PostgresConfig::new(url))`.
pub async fn fresh_adapters_with(
    configure: impl FnOnce(PostgresConfig) -> PostgresConfig,
) -> PostgresAdapters {
    let url = TestCluster::shared()
        .fresh_database()
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    configure(PostgresConfig::new(url))
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot build the Postgres adapters: {e}"))
}

/// [`fresh_adapters_with`] the default configuration.
pub async fn fresh_adapters() -> PostgresAdapters {
    fresh_adapters_with(|c| c).await
}

/// A parameter of a [`HotQuery`].
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// A query the scheduler or the API runs often, exactly as the adapter sends it.
#[derive(Debug, Clone)]
pub struct HotQuery {
    pub name: &'static str,
    pub sql: String,
    pub params: Vec<Param>,
}

/// The adapter's hot queries about `run` (and its DAG).
pub fn hot_queries(run: &RunKey) -> Vec<HotQuery> {
    let text = |s: &str| Param::Text(s.to_string());
    let mut out = vec![
        HotQuery {
            name: "task instances of a run",
            sql: tasks::TASK_INSTANCES_OF_RUN.clone(),
            params: vec![text(&run.dag_id), text(&run.run_id)],
        },
        HotQuery {
            name: "in-flight task instances",
            sql: tasks::IN_FLIGHT.clone(),
            params: vec![],
        },
        HotQuery {
            name: "active runs",
            sql: runs::ACTIVE_RUNS.clone(),
            params: vec![],
        },
    ];
    let ready = TaskFilter {
        dag_id: Some(run.dag_id.clone()),
        run_id: Some(run.run_id.clone()),
        states: vec![TaskState::Scheduled, TaskState::UpForRetry],
        ..TaskFilter::default()
    };
    let page = TaskFilter {
        dag_id: Some(run.dag_id.clone()),
        run_id: Some(run.run_id.clone()),
        limit: Some(100),
        ..TaskFilter::default()
    };
    let all_ready = TaskFilter {
        states: vec![TaskState::Scheduled, TaskState::UpForRetry],
        limit: Some(100),
        ..TaskFilter::default()
    };
    for (name, filter) in [
        ("ready task instances of a run", ready),
        ("task instances by dag and run (API page)", page),
        ("ready task instances of every run", all_ready),
    ] {
        let (sql, _, binds) = tasks::list_sql(&filter);
        let mut params: Vec<Param> = binds.into_iter().map(text).collect();
        params.push(Param::Int(filter.limit.map_or(i64::MAX, |l| l as i64)));
        params.push(Param::Int(0));
        out.push(HotQuery { name, sql, params });
    }
    let by_state = RunFilter {
        states: vec![RunState::Running],
        limit: Some(100),
        ..RunFilter::default()
    };
    let of_dag = RunFilter {
        dag_id: Some(run.dag_id.clone()),
        limit: Some(100),
        ..RunFilter::default()
    };
    for (name, filter) in [("runs by state", by_state), ("runs of a DAG", of_dag)] {
        let (sql, _, has_dag) = runs::list_sql(&filter);
        let mut params = Vec::new();
        if has_dag {
            params.push(text(&run.dag_id));
        }
        params.push(Param::Int(100));
        params.push(Param::Int(0));
        out.push(HotQuery { name, sql, params });
    }
    out
}

/// `EXPLAIN (FORMAT JSON)` of a hot query: the plan as JSON.
pub async fn explain(pool: &PgPool, query: &HotQuery) -> Result<serde_json::Value, Error> {
    let sql = format!("EXPLAIN (FORMAT JSON) {}", query.sql);
    let mut q = sqlx::query(&sql);
    for p in &query.params {
        q = match p {
            Param::Text(s) => q.bind(s.clone()),
            Param::Int(i) => q.bind(*i),
        };
    }
    let row = q.fetch_one(pool).await?;
    Ok(row.try_get::<serde_json::Value, _>(0)?)
}

/// Every (node type, relation) pair of a JSON plan, depth first.
pub fn plan_nodes(plan: &serde_json::Value) -> Vec<(String, Option<String>)> {
    fn walk(node: &serde_json::Value, out: &mut Vec<(String, Option<String>)>) {
        if let Some(kind) = node.get("Node Type").and_then(|v| v.as_str()) {
            let relation = node
                .get("Relation Name")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            out.push((kind.to_string(), relation));
        }
        for child in ["Plan", "Plans"] {
            match node.get(child) {
                Some(serde_json::Value::Array(items)) => {
                    for n in items {
                        walk(n, out);
                    }
                }
                Some(n @ serde_json::Value::Object(_)) => walk(n, out),
                _ => {}
            }
        }
        if let serde_json::Value::Array(items) = node {
            for n in items {
                walk(n, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(plan, &mut out);
    out
}
