//! The Airflow-compatible REST API v2 (`/api/v2/*`) and the login endpoints (`/auth/*`):
//! Airflow 3.2.1's request and response JSON over the engine and the datastore. Every
//! route is declared once in `routes`, with the role it needs, the query parameters it
//! accepts and the audit event it records; `guard` enforces that table for every request.

mod config;
mod connections;
pub(crate) mod dag_runs;
mod dag_versions;
pub(crate) mod dags;
mod event_logs;
pub(crate) mod guard;
pub(crate) mod identity;
mod import_errors;
mod login;
mod login_limit;
mod logs;
mod monitor;
mod openapi;
mod pools;
pub(crate) mod query;
pub(crate) mod routes;
pub(crate) mod shapes;
pub(crate) mod task_instances;
mod tasks;
mod variables;
mod xcom;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;
use leoflow_core::Engine;
use serde::de::DeserializeOwned;

use crate::body::read_json;
use crate::cipher::Cipher;
use crate::problem::{self, Problem};

pub use identity::{Role, UserClaims, UserTokens, USER_AUDIENCE};

/// What the REST API needs besides the engine.
#[derive(Clone)]
pub struct ApiConfig {
    /// The HS256 secret user tokens are signed with (at least 16 bytes; use 32 random
    /// bytes). May equal the agent-token secret: the audiences differ.
    pub jwt_secret: Vec<u8>,
    /// `LEOFLOW_SECRET_KEY`: the AES-256-GCM key connection secrets are encrypted with.
    pub secret_key: [u8; 32],
    /// How long a user token from `POST /auth/token` stays valid.
    pub token_ttl: Duration,
    /// Failed logins per client IP and minute before `POST /auth/token` answers 429.
    pub login_rate_limit_per_minute: u32,
    /// The largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("jwt_secret", &"<redacted>")
            .field("secret_key", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field(
                "login_rate_limit_per_minute",
                &self.login_rate_limit_per_minute,
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// The state every handler shares.
pub(crate) struct Api {
    pub(crate) engine: Engine,
    pub(crate) tokens: UserTokens,
    cipher: Cipher,
    pub(crate) token_ttl: Duration,
    max_body_bytes: usize,
    limiter: login_limit::LoginLimiter,
    routes: HashMap<(Method, &'static str), routes::Route>,
}

impl Api {
    /// Reads a JSON body within the configured size limit.
    async fn json<T: DeserializeOwned>(&self, body: Body) -> Result<T, Problem> {
        read_json(body, self.max_body_bytes, "this endpoint").await
    }
}

/// The REST API v2 and `/auth/*` router over `engine`.
///
/// Serves `/api/v2/*` (Airflow 3.2.1's shapes; see the README for the supported routes)
/// and `/auth/token`, plus the API's own description (`/api/v2/openapi.json`, `/docs`) and
/// the private `/ui/*` API of the Airflow 3.2.1 web UI (`crate::ui_api`, same table, same
/// guard). Every route but `/api/v2/version`, `/api/v2/monitor/health`, `/ui/config`, the
/// description and the login/logout endpoints needs a user token (`Authorization: Bearer` or the `_token`
/// cookie). The login rate limit keys on the peer address: serve the router with
/// `into_make_service_with_connect_info::<std::net::SocketAddr>()` (without it every
/// client shares one budget). The router has no fallback, so it merges with
/// [`agent_router`](crate::agent_router), whose fallback answers unknown paths with a
/// problem document.
///
/// # Panics
/// When `config.jwt_secret` is shorter than 16 bytes.
#[allow(clippy::needless_pass_by_value)] // Taken by value: the agreed public signature.
pub fn api_router(engine: Engine, config: ApiConfig) -> Router {
    let tokens = UserTokens::new(&config.jwt_secret, config.token_ttl)
        .expect("ApiConfig::jwt_secret must be at least 16 bytes");
    let mut routes = HashMap::new();
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<Api>>> = BTreeMap::new();
    for (route, handler) in routes::table().into_iter().chain(crate::ui_api::table()) {
        let path = route.path;
        let merged = match by_path.remove(path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert(path, merged);
        routes.insert((route.method.clone(), path), route);
    }
    let api = Arc::new(Api {
        engine,
        tokens,
        cipher: Cipher::new(&config.secret_key),
        token_ttl: config.token_ttl,
        max_body_bytes: config.max_body_bytes,
        limiter: login_limit::LoginLimiter::new(config.login_rate_limit_per_minute),
        routes,
    });
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler);
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            guard::guard,
        ))
        .method_not_allowed_fallback(problem::wrong_method)
        .layer(axum::middleware::from_fn(problem::fill_instance))
        .with_state(api)
}
