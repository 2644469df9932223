//! Test support (feature `testing`): [`TestCluster`], a throwaway Postgres started from the
//! system binaries (`initdb` + `pg_ctl`) on a Unix socket in a temporary directory — as the
//! unprivileged `postgres` user when the tests run as root, since `initdb` refuses root —
//! with one fresh database per test. No Docker needed. Also the adapter's hot queries, for
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

use crate::datastore::{runs, tasks};
use crate::{PostgresAdapters, PostgresConfig};

/// Why a test cluster could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no PostgreSQL server binaries found (looked in $LEOFLOW_PG_BIN, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin and PATH); install them, e.g. `apt-get install postgresql`, or point LEOFLOW_PG_BIN at the directory holding initdb and pg_ctl")]
    NoBinaries,
    #[error("the tests run as root and initdb refuses root, but there is no unprivileged `postgres` or `nobody` user to run the cluster as; create one (`useradd -r postgres`) or run the tests as a regular user")]
    NoUnprivilegedUser,
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("test cluster I/O error at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("test cluster SQL error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A Postgres cluster owned by the test process: stopped and deleted on drop, and by a
/// watchdog process if the test process dies without dropping it (statics are never
/// dropped, so the [`TestCluster::shared`] one relies on the watchdog).
#[derive(Debug)]
pub struct TestCluster {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    run_as: Option<String>,
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
        let bin = find_binaries().ok_or(Error::NoBinaries)?;
        let run_as = if is_root() {
            Some(unprivileged_user().ok_or(Error::NoUnprivilegedUser)?)
        } else {
            None
        };
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let base = if std::env::temp_dir().as_os_str().len() < 60 {
            std::env::temp_dir()
        } else {
            PathBuf::from("/tmp")
        };
        let dir = base.join(format!("leoflow-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let cluster = TestCluster {
            data: dir.join("data"),
            socket: dir.clone(),
            dir,
            bin,
            run_as,
            next_db: AtomicU32::new(0),
        };
        if let Some(user) = &cluster.run_as {
            run(Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&cluster.dir))?;
        }
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        cluster.start_server()?;
        cluster.spawn_watchdog();
        Ok(cluster)
    }

    /// Runs a server binary, as the unprivileged user when needed.
    fn pg(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.args(args).current_dir(&self.dir);
        run(&mut cmd)
    }

    fn server_options(&self) -> String {
        // Durability is worthless for a throwaway cluster; speed is not.
        format!(
            "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            self.socket.display()
        )
    }

    fn start_server(&self) -> Result<(), Error> {
        let log = self.dir.join("server.log").display().to_string();
        let data = self.data.display().to_string();
        let options = self.server_options();
        self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
        .map_err(|e| self.with_log(e))?;
        Ok(())
    }

    /// Appends the tail of the server log to a failure, which usually says why.
    fn with_log(&self, e: Error) -> Error {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        match e {
            Error::Command { command, message } => Error::Command {
                command,
                message: format!(
                    "{message}\nserver log (last lines):\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ),
            },
            other => other,
        }
    }

    /// A detached shell that stops the cluster and deletes its directory once this
    /// process is gone, however it ended.
    fn spawn_watchdog(&self) {
        let stop = self.stop_command("immediate");
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display(),
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn stop_command(&self, mode: &str) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let base = format!(
            "'{}' -D '{}' -m {mode} -w stop",
            pg_ctl.display(),
            self.data.display()
        );
        match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {base}"),
            None => base,
        }
    }

    /// The URL of database `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost/{database}?host={}",
            self.socket.display()
        )
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
        let log = self.dir.join("server.log").display().to_string();
        let data = self.data.display().to_string();
        let options = self.server_options();
        self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-m", "fast", "-w", "-t", "60", "restart",
            ],
        )
        .map_err(|e| self.with_log(e))?;
        Ok(())
    }

    /// Stops the server (fast shutdown); [`TestCluster::resume`] starts it again.
    pub fn stop(&self) -> Result<(), Error> {
        let data = self.data.display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])?;
        Ok(())
    }

    pub fn resume(&self) -> Result<(), Error> {
        self.start_server()
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(self.stop_command("immediate"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> Result<String, Error> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command,
            message: format!(
                "{}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// `$LEOFLOW_PG_BIN`, the newest `/usr/lib/postgresql/<major>/bin`, `/usr/local/pgsql/bin`,
/// then `PATH`.
fn find_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LEOFLOW_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has_server(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let local = PathBuf::from("/usr/local/pgsql/bin");
    if has_server(&local) {
        return Some(local);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_server(d))
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    match std::fs::metadata("/proc/self") {
        Ok(m) => m.uid() == 0,
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0"),
    }
}

fn unprivileged_user() -> Option<String> {
    ["postgres", "nobody"]
        .into_iter()
        .find(|u| {
            Command::new("id")
                .arg(u)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_string)
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
