//! Serving the installed bundle the way Airflow 3.2.1's FastAPI app does: `/static/*` are
//! the files (hashed `assets/*` cached for a year), and every other GET that is not an API
//! path gets `index.html` with its `<base href>` filled in, so the SPA's client-side routes
//! survive a reload. Without a bundle, those pages say how to install it.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::install::{is_installed, AIRFLOW_VERSION};
use crate::problem::Problem;

/// Where the bundle is.
pub struct Assets {
    pub dir: PathBuf,
}

/// The policy the bundle runs under: its own scripts and WebAssembly (the SQL parser),
/// the inline styles its component library injects, and the Monaco editor the code views
/// load from jsDelivr.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' https://cdn.jsdelivr.net; \
style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; font-src 'self' data: https://cdn.jsdelivr.net; \
img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; \
base-uri 'self'; frame-ancestors 'self'";

/// Path prefixes that are never the SPA: a miss there is an API 404, not a page.
const RESERVED: &[&str] = &["api", "ui", "auth", "agent", "static"];

/// The `<base href>` the shell is rendered with (Leoflow serves the UI at the root).
const BASE_HREF: &str = "/";

fn headers(content_type: &str, cache: &'static str) -> [(HeaderName, HeaderValue); 3] {
    [
        (
            CONTENT_TYPE,
            HeaderValue::from_str(content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        ),
        (CACHE_CONTROL, HeaderValue::from_static(cache)),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
    ]
}

/// `GET /static/{*path}`.
pub async fn static_file(
    State(assets): State<Arc<Assets>>,
    UrlPath(path): UrlPath<String>,
) -> Response {
    let Some(file) = safe_join(&assets.dir, &path) else {
        return not_found(&path);
    };
    if path == "index.html" {
        return shell(&assets).await;
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "public, max-age=3600"
            };
            (headers(content_type(&path), cache), bytes).into_response()
        }
        Err(_) => not_found(&path),
    }
}

fn not_found(path: &str) -> Response {
    Problem::not_found(format!(
        "no UI asset at /static/{path}; the page may come from another Leoflow version, reload it"
    ))
    .into_response()
}

/// `GET /` and every other GET no route matched.
pub async fn page(State(assets): State<Arc<Assets>>, uri: Uri) -> Response {
    let first = uri.path().trim_start_matches('/').split('/').next();
    if first.is_some_and(|f| RESERVED.contains(&f)) {
        return Problem::not_found(format!(
            "no such API route: {}; see the README for the routes Leoflow serves",
            uri.path()
        ))
        .into_response();
    }
    shell(&assets).await
}

async fn shell(assets: &Assets) -> Response {
    if !is_installed(&assets.dir) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            headers("text/html; charset=utf-8", "no-cache"),
            missing_page(&assets.dir),
        )
            .into_response();
    }
    match tokio::fs::read_to_string(assets.dir.join("index.html")).await {
        Ok(index) => {
            let mut res = (
                headers("text/html; charset=utf-8", "no-cache"),
                render(&index),
            )
                .into_response();
            res.headers_mut()
                .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            res
        }
        Err(e) => Problem::internal(format!(
            "cannot read {}: {e}; reinstall the UI with `leoflow setup`",
            assets.dir.join("index.html").display()
        ))
        .into_response(),
    }
}

/// Airflow's Jinja template, rendered: the base href, and the module-preload hints pointed
/// at `/static/assets/` (as written they resolve to `/assets/`, which is a client route).
pub fn render(index: &str) -> String {
    index
        .replace("{{ backend_server_base_url }}", BASE_HREF)
        .replace("\"./assets/", "\"./static/assets/")
}

fn missing_page(dir: &Path) -> String {
    let dir = dir
        .display()
        .to_string()
        .replace('&', "&amp;")
        .replace('<', "&lt;");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Leoflow — UI not installed</title></head>\n\
<body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto\">\n\
<h1>The web UI is not installed</h1>\n\
<p>Leoflow serves the Apache Airflow {AIRFLOW_VERSION} web UI, which is downloaded once from PyPI \
(the <code>apache-airflow-core</code> wheel) and kept in <code>{dir}</code>. It is not there yet.</p>\n\
<p>Run <code>leoflow setup</code>, then reload this page. The REST API at <code>/api/v2</code> works without it.</p>\n\
</body></html>\n"
    )
}

/// `path` under `dir`, if it names a file inside it.
fn safe_join(dir: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    (plain && !path.is_empty()).then(|| dir.join(relative))
}

/// The media type of a bundle file, by extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" | "md" | "LICENSE" | "NOTICE" | "VERSION" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_gets_its_base_href_and_static_preloads() {
        let index = r#"<base href="{{ backend_server_base_url }}" /><script src="./static/assets/index-A.js"></script><link rel="modulepreload" href="./assets/chunk-B.js">"#;
        assert_eq!(
            render(index),
            r#"<base href="/" /><script src="./static/assets/index-A.js"></script><link rel="modulepreload" href="./static/assets/chunk-B.js">"#
        );
    }

    #[test]
    fn asset_paths_stay_inside_the_directory() {
        let dir = Path::new("/srv/ui");
        assert_eq!(
            safe_join(dir, "assets/a.js"),
            Some(PathBuf::from("/srv/ui/assets/a.js"))
        );
        assert_eq!(safe_join(dir, "../secret"), None);
        assert_eq!(safe_join(dir, "/etc/passwd"), None);
        assert_eq!(safe_join(dir, ""), None);
    }

    #[test]
    fn media_types_follow_the_extension() {
        for (path, ty) in [
            ("assets/index-A.js", "text/javascript; charset=utf-8"),
            ("assets/x.wasm", "application/wasm"),
            ("i18n/locales/en/common.json", "application/json"),
            ("pin_32.png", "image/png"),
            ("NOTICE", "application/octet-stream"),
        ] {
            assert_eq!(content_type(path), ty, "{path}");
        }
    }
}
