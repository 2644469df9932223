//! What the UI asks before anything else: `/ui/config` (public; it shapes the UI),
//! `/ui/auth/menus` (the sections the caller's role may open — Leoflow hides the ones it
//! has no data for), `/ui/auth/me`, and `/ui/auth/token` (a fresh token for the caller).

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::Json;
use serde_json::{json, Value};

use crate::rest_api::identity::{Principal, Role};
use crate::rest_api::query::DEFAULT_LIMIT;
use crate::rest_api::Api;

/// The instance name the UI shows in its title and navigation.
const INSTANCE_NAME: &str = "Leoflow";
/// Seconds between the UI's refreshes of running DAGs, runs and task logs. Airflow's
/// default is 3; at 1 a running task's log follows its output within about a second, and
/// the reads this polls cost milliseconds (README, "Web UI reads").
const AUTO_REFRESH_SECONDS: u32 = 1;

/// `GET /ui/config`.
pub async fn config() -> Json<Value> {
    Json(json!({
        "fallback_page_limit": DEFAULT_LIMIT,
        "auto_refresh_interval": AUTO_REFRESH_SECONDS,
        "hide_paused_dags_by_default": false,
        "instance_name": INSTANCE_NAME,
        "enable_swagger_ui": true,
        "require_confirmation_dag_change": false,
        "default_wrap": false,
        "test_connection": "Disabled",
        "dashboard_alert": [],
        "show_external_log_redirect": false,
        "external_log_name": null,
        "theme": null,
        "multi_team": false,
    }))
}

/// The menu sections `role` sees: Leoflow's data only (no assets, plugins, providers,
/// jobs, XCom browser or required actions), and the admin sections from `op` up, as the
/// REST API grants them.
fn menu_items(role: Role) -> Vec<&'static str> {
    let mut items = vec!["Dags", "Audit Log", "Pools", "Docs"];
    if role >= Role::Op {
        items.extend(["Variables", "Connections", "Config"]);
    }
    items
}

/// `GET /ui/auth/menus`.
pub async fn menus(Extension(me): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "authorized_menu_items": menu_items(me.role),
        "extra_menu_items": [],
    }))
}

/// `GET /ui/auth/me`.
pub async fn me(Extension(me): Extension<Principal>) -> Json<Value> {
    Json(json!({"id": me.username, "username": me.username}))
}

/// `POST /ui/auth/token`: a new token for the authenticated caller, with the same role.
pub async fn token(
    State(api): State<Arc<Api>>,
    Extension(me): Extension<Principal>,
) -> Json<Value> {
    let claims = api.tokens.claims_for(&me.username, me.role, &me.tenant);
    Json(json!({
        "access_token": api.tokens.mint(&claims),
        "token_type": "api",
        "expires_in_seconds": api.token_ttl.as_secs(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_sections_need_op() {
        assert!(!menu_items(Role::User).contains(&"Variables"));
        assert!(menu_items(Role::Op).contains(&"Connections"));
        assert!(menu_items(Role::Viewer).contains(&"Dags"));
    }
}
