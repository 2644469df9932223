//! Logging in and out: `POST /auth/token` (Airflow 3.2.1's shape: JSON
//! `{username, password}` → 201 `{"access_token": …}`), the login page
//! `GET /api/v2/auth/login?next=` the Airflow UI redirects to (it stores the token in the
//! `_token` cookie the UI authenticates with), and `GET /api/v2/auth/logout`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::guard::{authenticate, TOKEN_COOKIE};
use super::identity::Role;
use super::query::Params;
use super::Api;
use crate::password::verify_password;
use crate::problem::{datastore_problem, Problem};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

/// `POST /auth/token`.
pub async fn token(State(api): State<Arc<Api>>, req: Request) -> Result<Response, Problem> {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !api.limiter.allows(client) {
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "too many failed login attempts from this address; wait about a minute and try again",
        ));
    }
    let creds: Credentials = api.json(req.into_body()).await?;
    let user = api
        .engine
        .datastore()
        .get_user(creds.username.trim())
        .await
        .map_err(datastore_problem)?;
    let Some(user) =
        user.filter(|u| u.is_active && verify_password(&creds.password, &u.password_hash))
    else {
        api.limiter.failed(client);
        return Err(Problem::unauthorized(
            "invalid credentials: check the username and password",
        ));
    };
    let role: Role = user.role.parse().map_err(|e: String| {
        Problem::internal(format!(
            "user {:?} has a bad stored role: {e}",
            user.username
        ))
    })?;
    let claims = api.tokens.claims_for(&user.username, role, &user.tenant);
    let token = api.tokens.mint(&claims);
    Ok((StatusCode::CREATED, Json(json!({ "access_token": token }))).into_response())
}

/// `GET /api/v2/auth/login?next=`: a caller with a valid token goes on to `next`; others
/// get the login page, which posts to `/auth/token` and stores the token in `_token`.
pub async fn page(State(api): State<Arc<Api>>, req: Request) -> Response {
    let params = Params::parse(req.uri().query().unwrap_or(""));
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    let next = safe_next(params.one("next"), host);
    if authenticate(&api, req.headers()).is_ok() {
        return (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, next)]).into_response();
    }
    let next_js = serde_json::to_string(&next).unwrap_or_else(|_| "\"/\"".into());
    // `</` cannot end the script element early once escaped.
    let html = LOGIN_PAGE.replace("__NEXT__", &next_js.replace("</", "<\\/"));
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

/// `GET /api/v2/auth/logout`: clears the cookie and goes back to the login page.
pub async fn logout() -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [
            (LOCATION, "/api/v2/auth/login".to_string()),
            (
                SET_COOKIE,
                format!("{TOKEN_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax"),
            ),
        ],
    )
        .into_response()
}

/// `next` if it is a path on this server (one leading `/`, or an absolute URL whose host
/// is this request's `Host`, which is what the Airflow UI sends), else `/`: the login page
/// never sends a user to another site.
fn safe_next(next: Option<&str>, host: Option<&str>) -> String {
    let next = next.unwrap_or("/");
    let path = ["http://", "https://"]
        .iter()
        .find_map(|scheme| next.strip_prefix(scheme))
        .map_or(Some(next), |rest| {
            let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
            host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
                .then_some(path)
        });
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.into(),
        _ => "/".into(),
    }
}

const LOGIN_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leoflow — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;background:#111827;color:#e5e7eb;display:flex;align-items:center;justify-content:center;height:100vh;margin:0}
form{background:#1f2937;padding:2rem;border-radius:8px;width:18rem;display:flex;flex-direction:column;gap:.75rem}
input,button{padding:.5rem;border-radius:4px;border:1px solid #374151;background:#111827;color:inherit}
button{background:#2563eb;border:none;cursor:pointer}#err{color:#f87171;min-height:1.2em}
</style></head><body>
<form id="f"><h2>Leoflow</h2>
<input id="u" name="username" autocomplete="username" placeholder="username" required>
<input id="p" name="password" type="password" autocomplete="current-password" placeholder="password" required>
<button>Sign in</button><div id="err"></div></form>
<script>
const next = __NEXT__;
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/auth/token", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: document.getElementById("u").value, password: document.getElementById("p").value})});
  if (r.status === 429) { document.getElementById("err").textContent = "Too many attempts — wait about a minute, then try again."; return; }
  if (!r.ok) { document.getElementById("err").textContent = "Invalid credentials"; return; }
  const body = await r.json();
  document.cookie = "_token=" + body.access_token + "; path=/; samesite=lax" + (location.protocol === "https:" ? "; secure" : "");
  location.replace(next);
});
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        let here = Some("127.0.0.1:8080");
        assert_eq!(safe_next(Some("/dags/x"), here), "/dags/x");
        assert_eq!(safe_next(Some("//evil.example"), here), "/");
        assert_eq!(safe_next(Some("https://evil.example"), here), "/");
        assert_eq!(safe_next(Some("https://evil.example/dags"), here), "/");
        assert_eq!(
            safe_next(Some("http://127.0.0.1:8080/dags/x?tab=grid"), here),
            "/dags/x?tab=grid"
        );
        assert_eq!(safe_next(Some("http://127.0.0.1:8080"), here), "/");
        assert_eq!(safe_next(Some("http://127.0.0.1:8080//evil"), here), "/");
        assert_eq!(safe_next(Some("http://127.0.0.1:8080/x"), None), "/");
        assert_eq!(safe_next(None, here), "/");
    }
}
