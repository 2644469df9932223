//! `leoflow-server`'s configuration: one table of `LEOFLOW_*` variables (names from the Go
//! server where it had them), read from an optional YAML file (`database: {url: …}` is
//! `LEOFLOW_DATABASE_URL`) overlaid by the environment, and checked all at once so every
//! bad value is reported together, one line each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use leoflow_ports::dag::PullPolicy;

/// One configuration variable.
pub struct Var {
    pub name: &'static str,
    /// `None`: no default (required, or optional and unset).
    pub default: Option<&'static str>,
    /// Shown as `***` by `check-config` and never logged.
    pub secret: bool,
    pub help: &'static str,
}

const fn var(name: &'static str, default: Option<&'static str>, help: &'static str) -> Var {
    Var {
        name,
        default,
        secret: false,
        help,
    }
}

const fn secret(name: &'static str, help: &'static str) -> Var {
    Var {
        name,
        default: None,
        secret: true,
        help,
    }
}

/// Every variable `leoflow-server` reads (besides `KUBECONFIG`, which the Kubernetes client
/// reads itself, and `HOSTNAME`, the default replica id).
pub const VARS: &[Var] = &[
    var("LEOFLOW_CONFIG", None, "optional YAML file with the same settings as nested keys (`--config` wins)"),
    var("LEOFLOW_SERVER_HTTP_ADDR", Some("0.0.0.0:8080"), "REST API, UI, agent API, /healthz and /readyz"),
    var("LEOFLOW_SERVER_METRICS_ADDR", Some("0.0.0.0:9090"), "Prometheus /metrics listener; empty serves /metrics on the HTTP listener"),
    var("LEOFLOW_SERVER_SHUTDOWN_GRACE_SECONDS", Some("20"), "on SIGTERM, how long in-flight requests may take to finish"),
    secret("LEOFLOW_DATABASE_URL", "required: postgres://USER:PASSWORD@HOST:5432/DATABASE"),
    var("LEOFLOW_DATABASE_MAX_OPEN_CONNS", Some("20"), "Postgres connection pool size"),
    var("LEOFLOW_DATABASE_MIGRATE_ON_START", Some("false"), "apply the schema migrations at start (else run `leoflow-server migrate` first)"),
    secret("LEOFLOW_REDIS_URL", "required: redis://[:PASSWORD@]HOST:6379/0, rediss://… or redis+unix:///path.sock"),
    var("LEOFLOW_REDIS_PREFIX", Some("leoflow"), "prefix of every Redis key (several installations may share one Redis)"),
    secret("LEOFLOW_AUTH_JWT_SECRET", "required: HS256 secret of user and agent tokens, at least 32 characters"),
    var("LEOFLOW_AUTH_JWT_TOKEN_TTL_SECONDS", Some("3600"), "lifetime of a user token"),
    var("LEOFLOW_AUTH_LOGIN_RATE_LIMIT_PER_MINUTE", Some("5"), "failed logins per client IP and minute"),
    secret("LEOFLOW_SECRET_KEY", "required: 32-byte key connection secrets are encrypted with (64 hex digits, base64, or 32 raw characters)"),
    var("LEOFLOW_BOOTSTRAP_USERNAME", Some("admin"), "the admin user created or updated at start"),
    secret("LEOFLOW_BOOTSTRAP_PASSWORD", "the admin's password (or LEOFLOW_BOOTSTRAP_PASSWORD_HASH); neither: no admin is created"),
    secret("LEOFLOW_BOOTSTRAP_PASSWORD_HASH", "the admin's password as an argon2 PHC string"),
    var("LEOFLOW_REPLICA_ID", None, "this replica's name in the leader election (default: $HOSTNAME, the pod name)"),
    var("LEOFLOW_SCHEDULER_ENABLED", Some("true"), "take part in the leader election (false: serve the API only)"),
    var("LEOFLOW_SCHEDULER_LOOP_INTERVAL_MS", Some("5000"), "the tick (cron runs, timeouts, reaping); never between two tasks"),
    var("LEOFLOW_SCHEDULER_DISPATCH_WORKERS", Some("32"), "pod launches in flight at once (the leader's dispatch pool)"),
    var("LEOFLOW_SCHEDULER_LEASE_TTL_SECONDS", Some("5"), "leader lease lifetime; a killed leader is replaced within about 1.3 x this"),
    var("LEOFLOW_SCHEDULER_MAX_ACTIVE_TASKS_PER_RUN", Some("16"), "active task instances per run when the DAG sets no max_active_tasks; 0 = no limit"),
    var("LEOFLOW_EXECUTOR_TYPE", Some("kubernetes"), "only kubernetes (Pro runs every attempt in its own pod)"),
    var("LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR", None, "URL task agents reach the agent API at, e.g. http://leoflow.leoflow-system.svc:8080 (required unless the HTTP address is a specific host)"),
    var("LEOFLOW_EXECUTOR_KUBERNETES_NAMESPACE", Some("leoflow"), "namespace of the task pods"),
    var("LEOFLOW_EXECUTOR_AGENT_IMAGE", Some(concat!("ghcr.io/leoflow/leoflow-agent:", env!("CARGO_PKG_VERSION"))), "image holding the leoflow-agent binary (copied into each pod by an init container)"),
    var("LEOFLOW_EXECUTOR_AGENT_PATH", Some("/leoflow-agent"), "the agent binary's path inside LEOFLOW_EXECUTOR_AGENT_IMAGE"),
    var("LEOFLOW_EXECUTOR_DEFAULT_IMAGE", Some(concat!("ghcr.io/leoflow/leoflow-runtime:", env!("CARGO_PKG_VERSION"))), "task image of DAGs that name none"),
    var("LEOFLOW_EXECUTOR_IMAGE_PULL_POLICY", Some("IfNotPresent"), "Always, IfNotPresent or Never, for tasks that say nothing"),
    var("LEOFLOW_EXECUTOR_SERVICE_ACCOUNT", None, "service account of task pods that name none"),
    var("LEOFLOW_EXECUTOR_PYTHON", Some("python3"), "Python interpreter inside task images"),
    var("LEOFLOW_EXECUTOR_PROJECT_DIR", Some("/opt/leoflow/project"), "the DAG project's directory inside task images"),
    var("LEOFLOW_EXECUTOR_SHIM_PATH", None, "where the leoflow_shim package is inside task images, when not installed"),
    var("LEOFLOW_EXECUTOR_KEEP_FAILED_PODS", Some("false"), "leave failed pods for inspection"),
    var("LEOFLOW_INLINE_HTTP_MAX_DURATION", Some("300"), "cap (seconds) of http_api tasks run inside the control plane"),
    var("LEOFLOW_EXECUTOR_HTTP_INLINE_CONCURRENCY_LIMIT", Some("32"), "inline http_api calls in flight at once"),
    var("LEOFLOW_UI_DIR", None, "directory of the Airflow UI bundle (`leoflow setup` installs one); unset: no UI"),
    var("LEOFLOW_OBSERVABILITY_LOG_FORMAT", Some("json"), "json or text"),
    var("LEOFLOW_OBSERVABILITY_LOG_LEVEL", Some("info"), "error, warn, info, debug or trace"),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
}

/// The raw values: the file's, overlaid by the environment's, over the defaults.
pub struct Settings {
    values: BTreeMap<&'static str, (String, Source)>,
    file: Option<PathBuf>,
}

/// Every problem found, one line each.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct Problems(pub Vec<String>);

impl Settings {
    /// Reads `file` (or `LEOFLOW_CONFIG`) and `env`. Unknown `LEOFLOW_*` variables are not
    /// errors (Kubernetes defines `LEOFLOW_SERVICE_HOST` and the like for a Service named
    /// leoflow); unknown keys in the file are.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Settings, Problems> {
        let mut problems = Vec::new();
        let mut values = BTreeMap::new();
        for v in VARS {
            if let Some(d) = v.default {
                values.insert(v.name, (d.to_string(), Source::Default));
            }
        }
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.get("LEOFLOW_CONFIG")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
        if let Some(path) = &file {
            match std::fs::read_to_string(path) {
                Err(e) => problems.push(format!(
                    "{}: cannot read the config file ({e}); fix the path given by --config or LEOFLOW_CONFIG",
                    path.display()
                )),
                Ok(text) => match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
                    Err(e) => problems.push(format!(
                        "{}: not valid YAML ({e}); write nested keys such as `database: {{url: postgres://…}}`",
                        path.display()
                    )),
                    Ok(doc) => {
                        let mut flat = Vec::new();
                        flatten(&doc, "", &mut flat, &mut problems, path);
                        for (key, value) in flat {
                            let name = format!("LEOFLOW_{}", key.to_uppercase().replace(['.', '-'], "_"));
                            match VARS.iter().find(|v| v.name == name && v.name != "LEOFLOW_CONFIG") {
                                Some(v) => {
                                    values.insert(v.name, (value, Source::File));
                                }
                                None => problems.push(format!(
                                    "{}: unknown key `{key}` ({name}); `leoflow-server --help` lists the settings",
                                    path.display()
                                )),
                            }
                        }
                    }
                },
            }
        }
        for v in VARS {
            if let Some(value) = env.get(v.name) {
                values.insert(v.name, (value.clone(), Source::Env));
            }
        }
        if problems.is_empty() {
            Ok(Settings { values, file })
        } else {
            Err(Problems(problems))
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|(v, _)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The effective settings, one `NAME=value (source)` line each, secrets as `***`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.file {
            let _ = writeln!(out, "# config file: {}", f.display());
        }
        for v in VARS.iter().filter(|v| v.name != "LEOFLOW_CONFIG") {
            let (value, source) = match self.values.get(v.name) {
                Some((value, source)) if v.secret && !value.is_empty() => {
                    ("***".to_string(), source)
                }
                Some((value, source)) => (value.clone(), source),
                None => (String::new(), &Source::Default),
            };
            let from = match source {
                Source::Default => "default",
                Source::File => "file",
                Source::Env => "env",
            };
            let _ = writeln!(out, "{}={value}  # {from}", v.name);
        }
        out
    }
}

fn flatten(
    value: &serde_yaml_ng::Value,
    prefix: &str,
    out: &mut Vec<(String, String)>,
    problems: &mut Vec<String>,
    path: &Path,
) {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Mapping(map) => {
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => serde_yaml_ng::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let full = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(v, &full, out, problems, path);
            }
        }
        Y::Null if prefix.is_empty() => {}
        Y::Null => out.push((prefix.to_string(), String::new())),
        Y::Bool(b) => out.push((prefix.to_string(), b.to_string())),
        Y::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Y::String(s) => out.push((prefix.to_string(), s.clone())),
        Y::Sequence(_) | Y::Tagged(_) => problems.push(format!(
            "{}: `{prefix}` must be a single value, not a list or a tagged value",
            path.display()
        )),
    }
}

/// What `leoflow-server migrate` needs.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub migrate_on_start: bool,
}

/// Everything `leoflow-server` needs to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub shutdown_grace: Duration,
    pub database: DatabaseConfig,
    pub redis_url: String,
    pub redis_prefix: String,
    pub jwt_secret: Vec<u8>,
    pub token_ttl: Duration,
    pub login_rate_limit_per_minute: u32,
    pub secret_key: [u8; 32],
    pub bootstrap_username: String,
    pub bootstrap_password: Option<String>,
    pub bootstrap_password_hash: Option<String>,
    pub replica_id: String,
    pub scheduler_enabled: bool,
    pub tick: Duration,
    pub dispatch_workers: usize,
    pub lease_ttl: Duration,
    pub max_active_tasks: Option<u32>,
    pub agent_url: String,
    pub namespace: String,
    pub agent_image: String,
    pub agent_path: String,
    pub default_image: String,
    pub pull_policy: PullPolicy,
    pub service_account: Option<String>,
    pub python: String,
    pub project_dir: String,
    pub shim_path: Option<String>,
    pub keep_failed_pods: bool,
    pub inline_max_duration: Duration,
    pub inline_concurrency: usize,
    pub ui_dir: Option<PathBuf>,
    pub log: LogConfig,
}

/// How the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    pub json: bool,
    pub level: tracing::Level,
}

/// Collects the problems of typed reads.
struct Reader<'a> {
    s: &'a Settings,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn bad(&mut self, name: &str, what: &str, fix: &str) {
        let value = if VARS.iter().any(|v| v.name == name && v.secret) {
            "(secret)".to_string()
        } else {
            format!("{:?}", self.s.get(name).unwrap_or_default())
        };
        self.problems.push(format!("{name}={value}: {what}; {fix}"));
    }

    fn required(&mut self, name: &str, fix: &str) -> String {
        if let Some(v) = self.s.get(name) {
            v.to_string()
        } else {
            self.problems
                .push(format!("{name} is not set: it is required; {fix}"));
            String::new()
        }
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.s.get(name).map(str::to_string)
    }

    fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
        &mut self,
        name: &str,
        min: T,
        max: T,
        fallback: T,
    ) -> T {
        let raw = self.s.get(name).unwrap_or_default().to_string();
        match raw.parse::<T>() {
            Ok(n) if n >= min && n <= max => n,
            _ => {
                self.bad(
                    name,
                    &format!("not a whole number between {min} and {max}"),
                    &format!("set a number such as {fallback}"),
                );
                fallback
            }
        }
    }

    fn boolean(&mut self, name: &str) -> bool {
        match self
            .s
            .get(name)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" | "" => false,
            _ => {
                self.bad(name, "not a boolean", "use true or false");
                false
            }
        }
    }

    fn addr(&mut self, name: &str) -> Option<SocketAddr> {
        let raw = self.s.get(name)?.to_string();
        // The Go server's `:8080` form means every interface.
        let full = if raw.starts_with(':') {
            format!("0.0.0.0{raw}")
        } else {
            raw
        };
        if let Ok(a) = full.parse() {
            Some(a)
        } else {
            self.bad(
                name,
                "not an IP address and port",
                "use e.g. 0.0.0.0:8080 (every interface) or 127.0.0.1:8080",
            );
            None
        }
    }
}

/// The database settings alone (`leoflow-server migrate`).
pub fn database(s: &Settings) -> Result<DatabaseConfig, Problems> {
    let mut r = Reader {
        s,
        problems: Vec::new(),
    };
    let db = read_database(&mut r);
    if r.problems.is_empty() {
        Ok(db)
    } else {
        Err(Problems(r.problems))
    }
}

fn read_database(r: &mut Reader<'_>) -> DatabaseConfig {
    let url = r.required(
        "LEOFLOW_DATABASE_URL",
        "set it to postgres://USER:PASSWORD@HOST:5432/DATABASE",
    );
    if !(url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        r.bad(
            "LEOFLOW_DATABASE_URL",
            "not a postgres:// URL",
            "use postgres://USER:PASSWORD@HOST:5432/DATABASE",
        );
    }
    DatabaseConfig {
        url,
        max_connections: r.number("LEOFLOW_DATABASE_MAX_OPEN_CONNS", 1, 1000, 20),
        migrate_on_start: r.boolean("LEOFLOW_DATABASE_MIGRATE_ON_START"),
    }
}

/// The whole configuration, or every problem with it.
pub fn config(s: &Settings, hostname: Option<String>) -> Result<Config, Problems> {
    let mut r = Reader {
        s,
        problems: Vec::new(),
    };
    let http_addr = r
        .addr("LEOFLOW_SERVER_HTTP_ADDR")
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)));
    let metrics_addr = r.addr("LEOFLOW_SERVER_METRICS_ADDR");
    let shutdown_grace =
        Duration::from_secs(r.number("LEOFLOW_SERVER_SHUTDOWN_GRACE_SECONDS", 0, 3600, 20));
    let database = read_database(&mut r);

    let redis_url = r.required(
        "LEOFLOW_REDIS_URL",
        "set it to redis://HOST:6379/0 (Pro keeps leases, XCom and notifications in Redis)",
    );
    if !redis_url.is_empty()
        && !["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|p| redis_url.starts_with(p))
    {
        r.bad(
            "LEOFLOW_REDIS_URL",
            "not a redis:// URL",
            "use redis://HOST:6379/0, rediss://HOST:6379/0 or redis+unix:///path/to/redis.sock",
        );
    }
    let redis_prefix = r.optional("LEOFLOW_REDIS_PREFIX").unwrap_or_default();
    if redis_prefix.is_empty() || redis_prefix.contains(char::is_whitespace) {
        r.bad(
            "LEOFLOW_REDIS_PREFIX",
            "empty or contains spaces",
            "use a short name such as leoflow",
        );
    }

    let jwt = r.required(
        "LEOFLOW_AUTH_JWT_SECRET",
        "set it to 32 or more random characters (e.g. `openssl rand -hex 32`), the same on every replica",
    );
    if !jwt.is_empty() && jwt.len() < 32 {
        r.bad(
            "LEOFLOW_AUTH_JWT_SECRET",
            &format!("only {} characters long", jwt.len()),
            "use 32 or more random characters (e.g. `openssl rand -hex 32`)",
        );
    }
    let token_ttl = Duration::from_secs(r.number(
        "LEOFLOW_AUTH_JWT_TOKEN_TTL_SECONDS",
        60,
        90 * 24 * 3600,
        3600,
    ));
    let login_rate_limit_per_minute =
        r.number("LEOFLOW_AUTH_LOGIN_RATE_LIMIT_PER_MINUTE", 1, 100_000, 5);
    let key = r.required(
        "LEOFLOW_SECRET_KEY",
        "set it to 32 random bytes as 64 hex digits (`openssl rand -hex 32`), the same on every replica",
    );
    let secret_key = if key.is_empty() {
        [0; 32]
    } else if let Some(k) = decode_key(&key) {
        k
    } else {
        r.bad(
            "LEOFLOW_SECRET_KEY",
            "not a 32-byte key",
            "use 64 hex digits (`openssl rand -hex 32`), 44 base64 characters or exactly 32 characters",
        );
        [0; 32]
    };
    let bootstrap_username = r.optional("LEOFLOW_BOOTSTRAP_USERNAME").unwrap_or_default();
    if bootstrap_username.is_empty() {
        r.bad(
            "LEOFLOW_BOOTSTRAP_USERNAME",
            "empty",
            "use a user name such as admin",
        );
    }
    let bootstrap_password = r.optional("LEOFLOW_BOOTSTRAP_PASSWORD");
    let bootstrap_password_hash = r.optional("LEOFLOW_BOOTSTRAP_PASSWORD_HASH");
    if bootstrap_password.is_some() && bootstrap_password_hash.is_some() {
        r.bad(
            "LEOFLOW_BOOTSTRAP_PASSWORD_HASH",
            "set together with LEOFLOW_BOOTSTRAP_PASSWORD",
            "set only one of the two",
        );
    }
    if bootstrap_password_hash
        .as_deref()
        .is_some_and(|h| !h.starts_with("$argon2") && !h.starts_with("$2"))
    {
        r.bad(
            "LEOFLOW_BOOTSTRAP_PASSWORD_HASH",
            "not an argon2 or bcrypt PHC string",
            "use a hash starting with $argon2id$ (or set LEOFLOW_BOOTSTRAP_PASSWORD instead)",
        );
    }

    let replica_id = r
        .optional("LEOFLOW_REPLICA_ID")
        .or(hostname)
        .unwrap_or_else(|| format!("leoflow-server-{}", std::process::id()));
    let scheduler_enabled = r.boolean("LEOFLOW_SCHEDULER_ENABLED");
    let tick =
        Duration::from_millis(r.number("LEOFLOW_SCHEDULER_LOOP_INTERVAL_MS", 100, 600_000, 5000));
    let dispatch_workers = r.number("LEOFLOW_SCHEDULER_DISPATCH_WORKERS", 1, 4096, 32);
    let lease_ttl = Duration::from_secs(r.number("LEOFLOW_SCHEDULER_LEASE_TTL_SECONDS", 2, 60, 5));
    let max_active: u32 = r.number(
        "LEOFLOW_SCHEDULER_MAX_ACTIVE_TASKS_PER_RUN",
        0,
        1_000_000,
        16,
    );
    let max_active_tasks = (max_active > 0).then_some(max_active);

    match r.optional("LEOFLOW_EXECUTOR_TYPE").as_deref() {
        Some("kubernetes" | "k8s") => {}
        _ => r.bad(
            "LEOFLOW_EXECUTOR_TYPE",
            "not an executor of the Pro edition",
            "use kubernetes (run subprocess tasks with `leoflow lite`)",
        ),
    }
    let agent_url = match r.optional("LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR") {
        Some(a) if a.starts_with("http://") || a.starts_with("https://") => {
            a.trim_end_matches('/').to_string()
        }
        Some(a) if a.contains("://") => {
            r.bad(
                "LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR",
                "not an http:// or https:// URL",
                "use the URL of the Service in front of the replicas, e.g. http://leoflow.leoflow-system.svc:8080",
            );
            String::new()
        }
        Some(a) => format!("http://{a}"),
        None if !http_addr.ip().is_unspecified() => format!("http://{http_addr}"),
        None => {
            r.problems.push(
                "LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR is not set: it is required when LEOFLOW_SERVER_HTTP_ADDR listens on every interface; set it to the URL task pods reach the replicas at, e.g. http://leoflow.leoflow-system.svc:8080".into(),
            );
            String::new()
        }
    };
    let namespace = r
        .optional("LEOFLOW_EXECUTOR_KUBERNETES_NAMESPACE")
        .unwrap_or_default();
    if !is_dns_label(&namespace) {
        r.bad(
            "LEOFLOW_EXECUTOR_KUBERNETES_NAMESPACE",
            "not a Kubernetes namespace name",
            "use lower-case letters, digits and '-', at most 63 characters (e.g. leoflow)",
        );
    }
    let pull_policy = match r.optional("LEOFLOW_EXECUTOR_IMAGE_PULL_POLICY").as_deref() {
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        Some("IfNotPresent") => PullPolicy::IfNotPresent,
        _ => {
            r.bad(
                "LEOFLOW_EXECUTOR_IMAGE_PULL_POLICY",
                "not a pull policy",
                "use Always, IfNotPresent or Never",
            );
            PullPolicy::IfNotPresent
        }
    };
    let inline_max_duration =
        Duration::from_secs(r.number("LEOFLOW_INLINE_HTTP_MAX_DURATION", 1, 86_400, 300));
    let inline_concurrency = r.number(
        "LEOFLOW_EXECUTOR_HTTP_INLINE_CONCURRENCY_LIMIT",
        1,
        100_000,
        32,
    );
    let ui_dir = r.optional("LEOFLOW_UI_DIR").map(PathBuf::from);
    if ui_dir
        .as_ref()
        .is_some_and(|d| !d.join("index.html").is_file())
    {
        r.bad(
            "LEOFLOW_UI_DIR",
            "holds no index.html",
            "point it at an installed Airflow UI bundle (`leoflow setup` installs one), or unset it to serve no UI",
        );
    }
    let json = match r.optional("LEOFLOW_OBSERVABILITY_LOG_FORMAT").as_deref() {
        Some("json") => true,
        Some("text") => false,
        _ => {
            r.bad(
                "LEOFLOW_OBSERVABILITY_LOG_FORMAT",
                "not a log format",
                "use json or text",
            );
            true
        }
    };
    let level = match r
        .optional("LEOFLOW_OBSERVABILITY_LOG_LEVEL")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "error" => tracing::Level::ERROR,
        "warn" | "warning" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => {
            r.bad(
                "LEOFLOW_OBSERVABILITY_LOG_LEVEL",
                "not a log level",
                "use error, warn, info, debug or trace",
            );
            tracing::Level::INFO
        }
    };
    let config = Config {
        http_addr,
        metrics_addr,
        shutdown_grace,
        database,
        redis_url,
        redis_prefix,
        jwt_secret: jwt.into_bytes(),
        token_ttl,
        login_rate_limit_per_minute,
        secret_key,
        bootstrap_username,
        bootstrap_password,
        bootstrap_password_hash,
        replica_id,
        scheduler_enabled,
        tick,
        dispatch_workers,
        lease_ttl,
        max_active_tasks,
        agent_url,
        namespace,
        agent_image: r
            .optional("LEOFLOW_EXECUTOR_AGENT_IMAGE")
            .unwrap_or_default(),
        agent_path: r
            .optional("LEOFLOW_EXECUTOR_AGENT_PATH")
            .unwrap_or_default(),
        default_image: r
            .optional("LEOFLOW_EXECUTOR_DEFAULT_IMAGE")
            .unwrap_or_default(),
        pull_policy,
        service_account: r.optional("LEOFLOW_EXECUTOR_SERVICE_ACCOUNT"),
        python: r.optional("LEOFLOW_EXECUTOR_PYTHON").unwrap_or_default(),
        project_dir: r
            .optional("LEOFLOW_EXECUTOR_PROJECT_DIR")
            .unwrap_or_default(),
        shim_path: r.optional("LEOFLOW_EXECUTOR_SHIM_PATH"),
        keep_failed_pods: r.boolean("LEOFLOW_EXECUTOR_KEEP_FAILED_PODS"),
        inline_max_duration,
        inline_concurrency,
        ui_dir,
        log: LogConfig { json, level },
    };
    for (name, value) in [
        ("LEOFLOW_EXECUTOR_AGENT_IMAGE", &config.agent_image),
        ("LEOFLOW_EXECUTOR_AGENT_PATH", &config.agent_path),
        ("LEOFLOW_EXECUTOR_DEFAULT_IMAGE", &config.default_image),
        ("LEOFLOW_EXECUTOR_PYTHON", &config.python),
        ("LEOFLOW_EXECUTOR_PROJECT_DIR", &config.project_dir),
    ] {
        if value.is_empty() {
            r.bad(
                name,
                "empty",
                "unset it to use the default, or give a value",
            );
        }
    }
    if r.problems.is_empty() {
        Ok(config)
    } else {
        Err(Problems(r.problems))
    }
}

/// 64 hex digits, standard base64 of 32 bytes, or 32 raw bytes.
fn decode_key(text: &str) -> Option<[u8; 32]> {
    if text.len() == 64 {
        if let Ok(k) = hex::decode(text) {
            return k.try_into().ok();
        }
    }
    if let Ok(k) = base64::engine::general_purpose::STANDARD.decode(text) {
        if let Ok(k) = k.try_into() {
            return Some(k);
        }
    }
    text.as_bytes().try_into().ok()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The `--help` section listing every variable.
pub fn help() -> String {
    let mut out = String::from("Configuration (environment variables; a --config YAML file takes the same keys nested, e.g. `database: {url: …}`):\n");
    for v in VARS {
        let default = v
            .default
            .map(|d| format!(" [default: {d}]"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {}{default}\n      {}", v.name, v.help);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("LEOFLOW_DATABASE_URL", "postgres://u:p@db/leoflow"),
            ("LEOFLOW_REDIS_URL", "redis://redis:6379/0"),
            (
                "LEOFLOW_AUTH_JWT_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            (
                "LEOFLOW_SECRET_KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            ),
            (
                "LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR",
                "leoflow.svc:8080",
            ),
        ]
    }

    fn check(pairs: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let s = Settings::load(None, &env(pairs)).map_err(|p| p.0)?;
        config(&s, Some("pod-1".into())).map_err(|p| p.0)
    }

    #[test]
    fn a_complete_environment_gives_the_defaults_elsewhere() {
        let c = check(&good()).unwrap();
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(
            c.metrics_addr.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:9090")
        );
        assert_eq!(c.agent_url, "http://leoflow.svc:8080");
        assert_eq!(c.replica_id, "pod-1");
        assert_eq!(c.dispatch_workers, 32);
        assert_eq!(c.secret_key[1], 0x11);
        assert!(c.log.json);
    }

    #[test]
    fn every_bad_value_is_one_line_naming_its_variable() {
        let mut pairs = good();
        pairs.retain(|(k, _)| *k != "LEOFLOW_REDIS_URL");
        pairs.extend([
            ("LEOFLOW_SCHEDULER_DISPATCH_WORKERS", "0"),
            ("LEOFLOW_SERVER_HTTP_ADDR", "nowhere"),
            ("LEOFLOW_SECRET_KEY", "short"),
            ("LEOFLOW_EXECUTOR_TYPE", "subprocess"),
        ]);
        let problems = check(&pairs).unwrap_err();
        let names: Vec<&str> = problems
            .iter()
            .map(|p| p.split(['=', ' ']).next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "LEOFLOW_SERVER_HTTP_ADDR",
                "LEOFLOW_REDIS_URL",
                "LEOFLOW_SECRET_KEY",
                "LEOFLOW_SCHEDULER_DISPATCH_WORKERS",
                "LEOFLOW_EXECUTOR_TYPE"
            ],
            "{problems:#?}"
        );
        assert!(problems
            .iter()
            .all(|p| !p.contains('\n') && p.contains("; ")));
        assert!(
            !problems.iter().any(|p| p.contains("short")),
            "secrets never echoed: {problems:#?}"
        );
    }

    #[test]
    fn the_file_is_overridden_by_the_environment_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "scheduler:\n  dispatch_workers: 7\n  lease_ttl_seconds: 9\ndatabase:\n  uri: x\n",
        )
        .unwrap();
        let err = Settings::load(Some(&file), &env(&good())).err().unwrap().0;
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].contains("`database.uri` (LEOFLOW_DATABASE_URI)"),
            "{err:?}"
        );
        std::fs::write(
            &file,
            "scheduler:\n  dispatch_workers: 7\n  lease_ttl_seconds: 9\n",
        )
        .unwrap();
        let mut pairs = good();
        pairs.push(("LEOFLOW_SCHEDULER_LEASE_TTL_SECONDS", "3"));
        let s = Settings::load(Some(&file), &env(&pairs)).unwrap();
        let c = config(&s, None).unwrap();
        assert_eq!((c.dispatch_workers, c.lease_ttl.as_secs()), (7, 3));
        let shown = s.describe();
        assert!(
            shown.contains("LEOFLOW_SCHEDULER_DISPATCH_WORKERS=7  # file"),
            "{shown}"
        );
        assert!(
            shown.contains("LEOFLOW_AUTH_JWT_SECRET=***  # env"),
            "{shown}"
        );
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}
