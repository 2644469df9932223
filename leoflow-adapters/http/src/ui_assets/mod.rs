//! The Apache Airflow 3.2.1 web UI, unmodified: installing its compiled bundle from the
//! pinned PyPI wheel (`install`) and serving it (`serve`). The `/ui/*` API the bundle
//! calls is part of [`api_router`](crate::api_router).

mod install;
mod serve;

use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;

pub use install::{
    fetch, install_from_wheel, is_installed, Error, AIRFLOW_VERSION, VERSION_FILE, WHEEL_FILE,
    WHEEL_SHA256, WHEEL_URL,
};

/// The web UI served from `assets_dir` (a directory [`fetch`] filled): `/static/*` and, for
/// every other GET outside `/api`, `/ui`, `/auth` and `/agent`, the SPA's `index.html`.
/// Responses are brotli- or gzip-compressed when the client accepts it. Merge it with
/// [`api_router`](crate::api_router): its routes take precedence, this router only
/// answers what they do not. When the bundle is missing, pages answer 503 with a short
/// page that says to run `leoflow setup`.
pub fn ui_router(assets_dir: PathBuf) -> Router {
    let assets = Arc::new(serve::Assets { dir: assets_dir });
    Router::new()
        .route("/static/{*path}", get(serve::static_file))
        .route("/", get(serve::page))
        .route("/{*path}", get(serve::page))
        .layer(CompressionLayer::new())
        .with_state(assets)
}
