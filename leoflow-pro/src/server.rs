//! `leoflow-server serve`: wires Postgres (datastore, logs), Redis (XCom, the scheduler
//! lease, notifications), the Kubernetes executor behind the inline HTTP router, and the
//! HTTP surfaces (REST API, agent API, UI, probes, metrics); every replica serves the API
//! and only the lease holder schedules. SIGTERM or Ctrl-C: stop accepting, release the
//! lease, let in-flight requests finish, exit 0.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::get;
use axum::Router;
use leoflow_core::clock::SystemClock;
use leoflow_core::validate::Limits;
use leoflow_core::{Dispatch, Engine, EngineConfig, ExecutorRouter, LeaseConfig};
use leoflow_http::token::AgentTokens;
use leoflow_http::{agent_router, api_router, ui_router, AgentApi, ApiConfig};
use leoflow_inline_http::{InlineHttpConfig, InlineHttpExecutor};
use leoflow_kubernetes::{ClusterAccess, KubernetesConfig, KubernetesExecutor};
use leoflow_ports::datastore::User;
use leoflow_postgres::PostgresConfig;
use leoflow_redis::{RedisLocks, RedisNotifier, RedisXCom};
use tokio::net::TcpListener;

use crate::config::{Config, DatabaseConfig};
use crate::health::{self, Probes};
use crate::metrics::{self, Meter, Metered, Metrics};

/// The scheduler lease every replica contends for.
const LEASE: &str = "scheduler";
/// The largest request body (a big dag.json is the usual one).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// `leoflow-server migrate`: applies the migrations, prints the schema version.
pub async fn migrate(db: &DatabaseConfig) -> anyhow::Result<()> {
    let version = leoflow_postgres::migrate_database(&PostgresConfig::new(db.url.clone())).await?;
    tracing::info!(
        schema_version = version,
        "the database schema is up to date"
    );
    Ok(())
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // Bind first: a port conflict is the cheapest failure to report.
    let http = TcpListener::bind(config.http_addr).await.with_context(|| {
        format!(
            "cannot listen on LEOFLOW_SERVER_HTTP_ADDR={}",
            config.http_addr
        )
    })?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on LEOFLOW_SERVER_METRICS_ADDR={addr}"))?,
        ),
        None => None,
    };

    let pg_config = PostgresConfig {
        max_connections: config.database.max_connections,
        migrate: config.database.migrate_on_start,
        ..PostgresConfig::new(config.database.url.clone())
    };
    let pg = pg_config.build().await.map_err(|e| match e {
        leoflow_postgres::Error::SchemaTooOld { .. } => anyhow::anyhow!(
            "{e}; run `leoflow-server migrate` (the Helm chart's migration Job does) or set LEOFLOW_DATABASE_MIGRATE_ON_START=true"
        ),
        other => other.into(),
    })?;
    let redis = leoflow_redis::connect(&config.redis_url, &config.redis_prefix).await?;
    let clock = Arc::new(SystemClock);
    let logs = Arc::new(pg.logs.clone());
    let tokens = AgentTokens::new(&config.jwt_secret, config.agent_url.clone())
        .map_err(|e| anyhow::anyhow!("LEOFLOW_AUTH_JWT_SECRET is unusable: {e}"))?;

    let metrics = Metrics::new(config.replica_id.clone());
    let pods =
        KubernetesExecutor::connect(kubernetes(&config), Arc::new(tokens.clone()), logs.clone())
            .await?;
    let inline = InlineHttpExecutor::new(
        InlineHttpConfig {
            max_concurrency: config.inline_concurrency,
            max_duration: config.inline_max_duration,
            ..InlineHttpConfig::default()
        },
        Some(Arc::new(pg.store.clone())),
        logs.clone(),
    );
    let router = ExecutorRouter::new(Arc::new(Metered::new(
        Arc::new(pods),
        metrics.clone(),
        Meter::Pods,
    )))
    .with_inline(Arc::new(inline));
    let executor = Metered::new(Arc::new(router), metrics.clone(), Meter::Dispatch);

    let engine = Engine::builder()
        .datastore(Arc::new(pg.store.clone()))
        .executor(Arc::new(executor))
        .xcom(Arc::new(RedisXCom::new(
            &redis,
            clock.clone(),
            leoflow_ports::xcom::DEFAULT_MAX_VALUE_BYTES,
            pg_config.xcom_ttl,
        )))
        .logs(logs)
        .notifier(Arc::new(RedisNotifier::new(&redis)))
        .locks(Arc::new(RedisLocks::new(&redis, clock.clone())))
        .clock(clock)
        .config(EngineConfig {
            dispatch: Dispatch::Pool {
                workers: config.dispatch_workers,
            },
            tick: config.tick,
            default_max_active_tasks: config.max_active_tasks,
            limits: Limits {
                inline_http_max_seconds: config.inline_max_duration.as_secs_f64(),
            },
            // Even a replica that never schedules needs the lease settings: without them
            // the engine believes it schedules alone and would not publish its changes.
            lease: Some(LeaseConfig {
                name: LEASE.into(),
                holder: config.replica_id.clone(),
                ttl: config.lease_ttl,
            }),
            ..EngineConfig::default()
        })
        .build()
        .context("cannot build the engine")?;
    bootstrap_admin(&engine, &config).await?;

    let api = ApiConfig {
        jwt_secret: config.jwt_secret.clone(),
        secret_key: config.secret_key,
        token_ttl: config.token_ttl,
        login_rate_limit_per_minute: config.login_rate_limit_per_minute,
        max_body_bytes: MAX_BODY_BYTES,
    };
    let probes = Probes {
        postgres: pg.health.clone(),
        redis: redis.clone(),
    };
    let metrics_route = Router::new()
        .route("/metrics", get(metrics::handler))
        .with_state((metrics.clone(), engine.clone()));
    let mut app = agent_router(AgentApi::new(engine.clone(), tokens))
        .merge(api_router(engine.clone(), api))
        .merge(health::router(probes));
    if metrics_listener.is_none() {
        app = app.merge(metrics_route.clone());
    }
    if let Some(dir) = &config.ui_dir {
        app = app.merge(ui_router(dir.clone()));
    }
    let app = app.layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        metrics::http,
    ));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http_stop = stopped(stop_rx.clone());
    let http_server = tokio::spawn(async move {
        axum::serve(
            http,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(http_stop)
        .await
    });
    let metrics_server = metrics_listener.map(|l| {
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            axum::serve(l, metrics_route)
                .with_graceful_shutdown(stop)
                .await
        })
    });
    let running = config.scheduler_enabled.then(|| engine.start());
    tracing::info!(
        http = %config.http_addr,
        metrics = ?config.metrics_addr,
        replica = %config.replica_id,
        scheduler = config.scheduler_enabled,
        workers = config.dispatch_workers,
        "leoflow-server is serving"
    );

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; releasing the scheduler lease");
    let _ = stop_tx.send(true);
    if let Some(r) = running {
        r.shutdown().await;
    }
    let grace = config.shutdown_grace;
    match tokio::time::timeout(grace, http_server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "the HTTP server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server task failed"),
        Err(_) => tracing::warn!(grace = ?grace, "in-flight requests did not finish in time"),
    }
    if let Some(m) = metrics_server {
        m.abort();
    }
    tracing::info!("leoflow-server stopped");
    Ok(())
}

fn kubernetes(config: &Config) -> KubernetesConfig {
    let mut k = KubernetesConfig::new(
        ClusterAccess::Infer,
        config.agent_image.clone(),
        config.default_image.clone(),
    );
    k.namespace.clone_from(&config.namespace);
    k.agent_path_in_image.clone_from(&config.agent_path);
    k.image_pull_policy = config.pull_policy;
    k.service_account.clone_from(&config.service_account);
    k.python.clone_from(&config.python);
    k.project_dir.clone_from(&config.project_dir);
    k.shim_path.clone_from(&config.shim_path);
    k.keep_on_failure = config.keep_failed_pods;
    k
}

/// Creates or updates the configured admin, so a changed password applies on restart.
async fn bootstrap_admin(engine: &Engine, config: &Config) -> anyhow::Result<()> {
    let hash = match (&config.bootstrap_password, &config.bootstrap_password_hash) {
        (_, Some(hash)) => hash.clone(),
        (Some(password), None) => leoflow_http::password::hash_password(password)
            .map_err(|e| anyhow::anyhow!("cannot hash LEOFLOW_BOOTSTRAP_PASSWORD: {e}"))?,
        (None, None) => {
            tracing::warn!("neither LEOFLOW_BOOTSTRAP_PASSWORD nor LEOFLOW_BOOTSTRAP_PASSWORD_HASH is set: no admin user is created");
            return Ok(());
        }
    };
    let user = User::admin(config.bootstrap_username.clone(), hash, chrono::Utc::now());
    engine
        .datastore()
        .put_user(&user)
        .await
        .context("cannot store the bootstrap admin")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
