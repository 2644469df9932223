//! `leoflow lite [PATH]`: the Lite edition in one process. Pre-flight (Python, the agent
//! binary, the port), the datastore (a managed Postgres under the Leoflow home, Docker's
//! `postgres:16`, or a DSN)
//! migrated with a drift check, every DAG of PATH compiled and registered, then the engine
//! (serial dispatch), the subprocess executor and the HTTP server (agent API and REST API)
//! on one tokio runtime,
//! hot reload, and a draining shutdown on Ctrl-C / SIGTERM.

pub mod dags;
pub mod datastore;
pub mod reload;
pub mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, Signal, SignalKind};

use leoflow_core::validate::Limits;
use leoflow_core::{Dispatch, Engine, EngineConfig, ExecutorRouter};
use leoflow_http::token::AgentTokens;
use leoflow_http::ApiConfig;
use leoflow_inline_http::{InlineHttpConfig, InlineHttpExecutor};
use leoflow_ports::datastore::User;
use leoflow_ports::executor::Executor;
use leoflow_postgres::PostgresConfig;
use leoflow_subprocess::{SubprocessConfig, SubprocessExecutor};

use crate::cli::{ExecutorChoice, LiteArgs};
use crate::home::Home;
use crate::lite::dags::Dags;
use crate::setup;
use crate::Error;
use crate::{console, docker};

/// `leoflow lite`.
pub fn run(args: &LiteArgs) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(args))
}

async fn serve(args: &LiteArgs) -> Result<(), Error> {
    let mut stop = Stop::listen()?;
    let home = Home::resolve()?;
    let outcome = setup::ensure(&home, args.port.unwrap_or(setup::DEFAULT_PORT))?;
    let ui_dir = home.ui_dir();
    {
        let (root, ui, cache) = (home.root().to_path_buf(), home.ui_dir(), home.cache_dir());
        let _ = tokio::task::spawn_blocking(move || setup::install_ui(&root, &ui, &cache)).await;
    }
    if let Some(password) = &outcome.password {
        println!("{}", setup::banner(&outcome.config, password));
    }
    let config = outcome.config;
    let port = args.port.unwrap_or(config.port);
    let path = args.path.clone().unwrap_or_else(|| PathBuf::from("."));

    let python = python(args.python.as_deref())?;
    let dags = Dags::discover(&path, &home.root().join("versions"))?;
    let agent = agent_binary(args.agent_bin.as_deref())?;
    // One Docker probe serves both choices (ADR 0030), and only when one needs it.
    let docker = (args.executor == ExecutorChoice::Auto
        || matches!(
            args.postgres,
            datastore::Choice::Auto | datastore::Choice::Docker
        ))
    .then(docker::probe);
    match (args.executor, &docker) {
        (ExecutorChoice::K8s, _) => {
            return Err(Error::Usage(
                "--executor k8s is not available yet (the Kubernetes executor is tracked by issue #10); use --executor subprocess".into(),
            ))
        }
        // The executor itself warns, once, that it is unsandboxed.
        (ExecutorChoice::Auto, Some(probe)) if probe.answers() => println!(
            "  executor: subprocess (auto: Docker answers, but the Kubernetes executor is not available yet)"
        ),
        (ExecutorChoice::Auto, _) => {
            println!("  executor: subprocess (auto: no Docker daemon answers)");
        }
        (ExecutorChoice::Subprocess, _) => println!("  executor: subprocess"),
    }
    if !is_loopback(&args.host) {
        println!(
            "{} SECURITY: binding to {} exposes Leoflow Lite on your network; the admin password is short — use a trusted network or a VPN only",
            console::yellow("⚠"),
            args.host
        );
    }
    let listener = server::bind(&args.host, port).await?;

    let started = Instant::now();
    let store = {
        let choice = args.postgres.clone();
        let home = home.clone();
        tokio::task::spawn_blocking(move || datastore::resolve(&choice, &home, docker.as_ref()))
            .await
            .map_err(|e| Error::Usage(format!("the datastore task failed: {e}")))??
    };
    let result = run_with(
        args, &config, dags, python, agent, listener, port, &store, ui_dir, &mut stop,
    )
    .await;
    if let Some(managed) = &store.managed {
        println!("stopping the managed PostgreSQL …");
        if let Err(e) = managed.stop() {
            eprintln!("✗ {e}");
        }
    }
    tracing::debug!(elapsed = ?started.elapsed(), "lite stopped");
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_with(
    args: &LiteArgs,
    config: &crate::home::Config,
    dags: Dags,
    python: PathBuf,
    agent: PathBuf,
    listener: tokio::net::TcpListener,
    port: u16,
    store: &datastore::Datastore,
    ui_dir: PathBuf,
    stop: &mut Stop,
) -> Result<(), Error> {
    leoflow_postgres::ensure_database(&store.url).await?;
    let adapters = PostgresConfig::new(store.url.clone()).build().await?;

    let agent_host = if args.host == "0.0.0.0" || args.host == "::" {
        "127.0.0.1"
    } else {
        args.host.as_str()
    };
    let agent_url = if agent_host.contains(':') {
        format!("http://[{agent_host}]:{port}")
    } else {
        format!("http://{agent_host}:{port}")
    };
    let tokens = AgentTokens::new(&config.jwt_secret_bytes(), agent_url)
        .map_err(|e| Error::Usage(format!("the configured jwt_secret is unusable: {e}")))?;
    let shim = Arc::new(crate::shim(Some(python.clone())));
    let mut exec_config = SubprocessConfig::new(agent, dags.base());
    exec_config.python = python.display().to_string();
    exec_config.shim_path = Some(shim.python_dir()?.to_path_buf());
    let logs = Arc::new(adapters.logs.clone());
    let executor = SubprocessExecutor::new(exec_config, Arc::new(tokens.clone()), logs.clone());
    let inline_config = InlineHttpConfig::with_max_duration(
        std::env::var("LEOFLOW_INLINE_HTTP_MAX_DURATION")
            .ok()
            .as_deref(),
    )
    .map_err(|e| Error::Usage(e.to_string()))?;
    let limits = Limits {
        inline_http_max_seconds: inline_config.max_duration.as_secs_f64(),
    };
    let inline = InlineHttpExecutor::new(
        inline_config,
        Some(Arc::new(adapters.store.clone())),
        logs.clone(),
    );
    let router = ExecutorRouter::new(Arc::new(executor.clone())).with_inline(Arc::new(inline));
    let engine = Engine::builder()
        .datastore(Arc::new(adapters.store.clone()))
        .executor(Arc::new(router))
        .xcom(Arc::new(adapters.xcom.clone()))
        .logs(logs)
        .notifier(Arc::new(adapters.notifier.clone()))
        .config(EngineConfig {
            dispatch: Dispatch::Serial,
            limits,
            ..EngineConfig::default()
        })
        .build()
        .map_err(|e| Error::Usage(format!("cannot build the engine: {e}")))?;

    admin(&engine, config).await?;
    let api = ApiConfig {
        jwt_secret: config.jwt_secret_bytes(),
        secret_key: config.secret_key_bytes(),
        token_ttl: SESSION_TTL,
        login_rate_limit_per_minute: 30,
        max_body_bytes: 4 * 1024 * 1024,
    };
    let router = server::router(&engine, tokens, api, ui_dir);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
    });
    let running = engine.start();
    // The server answers (health, login) while the DAGs compile; the watch starts first
    // so that no edit made meanwhile is missed.
    let watch = reload::start(dags.clone(), shim.clone(), engine.clone())?;
    let mut results = BTreeMap::new();
    for unit in dags.units() {
        results.insert(unit.clone(), dags.load(unit, &shim, &engine).await);
    }
    for line in dags::describe(&results) {
        println!("  {line}");
    }
    ready(args, config, port, &dags);

    stop.wait().await;
    println!(
        "stopping Leoflow Lite … (running tasks get {} s to finish)",
        args.grace
    );
    watch.stop();
    running.shutdown().await;
    drain(&executor, Duration::from_secs(args.grace)).await;
    let _ = stop_tx.send(());
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("✗ the HTTP server failed: {e}"),
        Err(e) => eprintln!("✗ the HTTP server task failed: {e}"),
    }
    Ok(())
}

/// How long a login lasts (Lite is one developer's tool: a month).
const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Makes the configured admin the datastore's `admin` user, so a `reset-password` takes
/// effect on the next start.
async fn admin(engine: &Engine, config: &crate::home::Config) -> Result<(), Error> {
    let user = User::admin(
        config.admin_user.clone(),
        config.admin_password_hash.clone(),
        chrono::Utc::now(),
    );
    engine
        .datastore()
        .put_user(&user)
        .await
        .map_err(|e| Error::Usage(format!("cannot store the admin user in the datastore: {e}")))
}

/// Lets running attempts finish (they report through the still-open agent API), then
/// cancels what is left; a restart re-runs or retries those.
async fn drain(executor: &SubprocessExecutor, grace: Duration) {
    let end = Instant::now() + grace;
    loop {
        let live = executor.live().await.unwrap_or_default();
        if live.is_empty() {
            return;
        }
        if Instant::now() >= end {
            println!("cancelling {} task attempt(s) still running", live.len());
            for attempt in live {
                let _ = executor.cancel(&attempt).await;
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ctrl-C and SIGTERM, caught from the start of `leoflow lite`: one arriving while the
/// datastore starts or the DAGs compile is kept, and honoured as soon as Lite is up, so it
/// never kills Lite before it has stopped what it started (the managed Postgres).
struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    fn listen() -> Result<Stop, Error> {
        let listen = |kind| {
            signal(kind).map_err(|e| Error::Usage(format!("cannot catch Ctrl-C / SIGTERM: {e}")))
        };
        Ok(Stop {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

fn ready(args: &LiteArgs, config: &crate::home::Config, port: u16, dags: &Dags) {
    let host = if is_loopback(&args.host) || args.host == "0.0.0.0" {
        "localhost"
    } else {
        args.host.as_str()
    };
    println!("{} Leoflow Lite is ready", console::green("✓"));
    println!("  open:    http://{host}:{port}");
    println!(
        "  login:   {} (password shown once by `leoflow setup`; forgot it? `leoflow lite reset-password`)",
        config.admin_user
    );
    println!("  project: {}", dags.root().display());
    println!(
        "👀 watching {} — edit and save to reload (Ctrl-C to stop)",
        dags.root().display()
    );
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The Python interpreter (`--python`, `$LEOFLOW_PYTHON`, else `python3`), checked to run.
pub fn python(flag: Option<&Path>) -> Result<PathBuf, Error> {
    let python = flag.map_or_else(
        || {
            std::env::var_os("LEOFLOW_PYTHON")
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from("python3"), PathBuf::from)
        },
        Path::to_path_buf,
    );
    let ok = Command::new(&python)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(python)
    } else {
        Err(Error::Usage(format!(
            "the Python interpreter {} cannot be run; install python3 (3.9 or newer; Debian/Ubuntu: `sudo apt-get install python3`), or point --python or LEOFLOW_PYTHON at one",
            python.display()
        )))
    }
}

/// `leoflow-agent`: `--agent-bin`, `$LEOFLOW_AGENT_BIN`, next to this executable, then PATH.
pub fn agent_binary(flag: Option<&Path>) -> Result<PathBuf, Error> {
    const NAME: &str = "leoflow-agent";
    let explicit = flag.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("LEOFLOW_AGENT_BIN")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Usage(format!(
                "the agent binary {} does not exist; build it with `cargo install --path leoflow-agent` or fix --agent-bin / LEOFLOW_AGENT_BIN",
                path.display()
            )))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(NAME)))
        .filter(|p| p.is_file());
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(NAME))
            .find(|p| p.is_file())
    };
    beside.or_else(on_path).ok_or_else(|| {
        Error::Usage(format!(
            "{NAME} was not found next to leoflow or on PATH; it runs every task attempt: install it with `cargo install --path leoflow-agent` (from a Leoflow checkout), or pass --agent-bin"
        ))
    })
}
