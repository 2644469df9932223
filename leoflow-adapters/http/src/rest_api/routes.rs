//! The route table: every REST API route with the least role it needs (Airflow's simple
//! auth manager: viewer reads, user acts on DAGs/runs/task instances, op manages
//! variables, connections and DAG versions, admin everything), the query parameters it
//! accepts and the audit event a successful call records. The router and the guard are
//! both built from this one table, so a route cannot exist without its permission.

use std::sync::Arc;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};

use super::identity::Role;
use super::{
    config, connections, dag_runs, dag_versions, dags, event_logs, import_errors, login, logs,
    monitor, openapi, pools, task_instances, tasks, variables, xcom, Api,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed.
    Public,
    /// A valid user token whose role is at least this one.
    AtLeast(Role),
}

/// One route's rules.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    /// The query parameters accepted; any other is a 400.
    pub query: &'static [&'static str],
    /// The event-log entry a successful call records.
    pub audit: Option<&'static str>,
}

const DAGS_QUERY: &[&str] = &[
    "limit",
    "offset",
    "tags",
    "tags_match_mode",
    "dag_id_pattern",
    "dag_display_name_pattern",
    "exclude_stale",
    "paused",
    "order_by",
    "owners",
];
#[rustfmt::skip]
const RUNS_QUERY: &[&str] = &[
    "limit", "offset", "state", "run_type", "order_by", "run_id_pattern", "dag_id_pattern",
    "run_after_gte", "run_after_gt", "run_after_lte", "run_after_lt",
    "logical_date_gte", "logical_date_gt", "logical_date_lte", "logical_date_lt",
    "start_date_gte", "start_date_gt", "start_date_lte", "start_date_lt",
    "end_date_gte", "end_date_gt", "end_date_lte", "end_date_lt",
];
#[rustfmt::skip]
const TIS_QUERY: &[&str] = &[
    "limit", "offset", "state", "task_id", "map_index", "order_by", "try_number",
    "run_after_gte", "run_after_gt", "run_after_lte", "run_after_lt",
    "start_date_gte", "start_date_gt", "start_date_lte", "start_date_lt",
    "end_date_gte", "end_date_gt", "end_date_lte", "end_date_lt",
];
const LOG_QUERY: &[&str] = &["full_content", "map_index", "token"];
const XCOM_QUERY: &[&str] = &["limit", "offset", "map_index", "xcom_key"];
const XCOM_ENTRY_QUERY: &[&str] = &["map_index", "deserialize", "stringify"];
const ORDERED_PAGE: &[&str] = &["limit", "offset", "order_by"];

pub(crate) fn route<H, T>(
    method: Method,
    path: &'static str,
    access: Access,
    query: &'static [&'static str],
    audit: Option<&'static str>,
    handler: H,
) -> (Route, MethodRouter<Arc<Api>>)
where
    H: Handler<T, Arc<Api>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("the table uses standard methods");
    (
        Route {
            method,
            path,
            access,
            query,
            audit,
        },
        on(filter, handler),
    )
}

/// Every route, one line each.
#[rustfmt::skip]
pub fn table() -> Vec<(Route, MethodRouter<Arc<Api>>)> {
    use Access::{AtLeast, Public};
    use Role::{Op, User, Viewer};
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const PATCH: Method = Method::PATCH;
    const DELETE: Method = Method::DELETE;
    vec![
        // Login and monitoring.
        route(POST, "/auth/token", Public, &[], None, login::token),
        route(GET, "/api/v2/auth/login", Public, &["next"], None, login::page),
        route(GET, "/api/v2/auth/logout", Public, &[], None, login::logout),
        route(GET, "/api/v2/version", Public, &[], None, monitor::version),
        route(GET, "/api/v2/monitor/health", Public, &[], None, monitor::health),
        route(GET, "/api/v2/openapi.json", Public, &[], None, openapi::document),
        route(GET, "/docs", Public, &[], None, openapi::page),
        route(GET, "/api/v2/config", AtLeast(Op), &["section"], None, config::get),
        route(GET, "/api/v2/pools", AtLeast(Viewer), ORDERED_PAGE, None, pools::list),
        route(GET, "/api/v2/pools/{pool_name}", AtLeast(Viewer), &[], None, pools::get),
        // DAGs and their versions.
        route(GET, "/api/v2/dags", AtLeast(Viewer), DAGS_QUERY, None, dags::list),
        route(GET, "/api/v2/dags/{dag_id}", AtLeast(Viewer), &[], None, dags::get),
        route(PATCH, "/api/v2/dags/{dag_id}", AtLeast(User), &["update_mask"], Some("patch_dag"), dags::patch),
        route(DELETE, "/api/v2/dags/{dag_id}", AtLeast(User), &[], Some("delete_dag"), dags::delete),
        route(GET, "/api/v2/dags/{dag_id}/details", AtLeast(Viewer), &[], None, dags::details),
        route(GET, "/api/v2/dags/{dag_id}/tasks", AtLeast(Viewer), ORDERED_PAGE, None, tasks::list),
        route(GET, "/api/v2/dags/{dag_id}/tasks/{task_id}", AtLeast(Viewer), &[], None, tasks::get),
        route(GET, "/api/v2/dags/{dag_id}/dagVersions", AtLeast(Viewer), ORDERED_PAGE, None, dag_versions::list),
        route(GET, "/api/v2/dags/{dag_id}/dagVersions/{version_number}", AtLeast(Viewer), &[], None, dag_versions::get),
        route(POST, "/api/v2/dags/{dag_id}/versions", AtLeast(Op), &[], Some("register_dag_version"), dag_versions::register),
        // DAG runs.
        route(GET, "/api/v2/dags/{dag_id}/dagRuns", AtLeast(Viewer), RUNS_QUERY, None, dag_runs::list),
        route(POST, "/api/v2/dags/{dag_id}/dagRuns", AtLeast(User), &[], Some("trigger_dag_run"), dag_runs::trigger),
        route(POST, "/api/v2/dags/{dag_id}/dagRuns/list", AtLeast(Viewer), &[], None, dag_runs::batch),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", AtLeast(Viewer), &[], None, dag_runs::get),
        route(PATCH, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", AtLeast(User), &["update_mask"], Some("patch_dag_run"), dag_runs::patch),
        route(DELETE, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", AtLeast(User), &[], Some("delete_dag_run"), dag_runs::delete),
        route(POST, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear", AtLeast(User), &[], Some("clear_dag_run"), dag_runs::clear),
        // Task instances.
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", AtLeast(Viewer), TIS_QUERY, None, task_instances::list),
        route(POST, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list", AtLeast(Viewer), &[], None, task_instances::batch),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", AtLeast(Viewer), &[], None, task_instances::get),
        route(PATCH, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", AtLeast(User), &["map_index", "update_mask"], Some("patch_task_instance"), task_instances::patch),
        route(PATCH, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dry_run", AtLeast(User), &["map_index", "update_mask"], None, task_instances::patch_dry_run),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", AtLeast(Viewer), &[], None, task_instances::get_mapped),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries", AtLeast(Viewer), &["map_index"], None, task_instances::tries),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries/{task_try_number}", AtLeast(Viewer), &["map_index"], None, task_instances::try_detail),
        route(POST, "/api/v2/dags/{dag_id}/clearTaskInstances", AtLeast(User), &[], Some("post_clear_task_instances"), task_instances::clear),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}", AtLeast(Viewer), LOG_QUERY, None, logs::get),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries", AtLeast(Viewer), XCOM_QUERY, None, xcom::list),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", AtLeast(Viewer), XCOM_ENTRY_QUERY, None, xcom::get),
        // Variables and connections.
        route(GET, "/api/v2/variables", AtLeast(Op), &["limit", "offset", "order_by", "variable_key_pattern"], None, variables::list),
        route(POST, "/api/v2/variables", AtLeast(Op), &[], Some("post_variable"), variables::create),
        route(GET, "/api/v2/variables/{variable_key}", AtLeast(Op), &[], None, variables::get),
        route(PATCH, "/api/v2/variables/{variable_key}", AtLeast(Op), &["update_mask"], Some("patch_variable"), variables::patch),
        route(DELETE, "/api/v2/variables/{variable_key}", AtLeast(Op), &[], Some("delete_variable"), variables::delete),
        route(GET, "/api/v2/connections", AtLeast(Op), &["limit", "offset", "order_by", "connection_id_pattern"], None, connections::list),
        route(POST, "/api/v2/connections", AtLeast(Op), &[], Some("post_connection"), connections::create),
        route(GET, "/api/v2/connections/{connection_id}", AtLeast(Op), &[], None, connections::get),
        route(PATCH, "/api/v2/connections/{connection_id}", AtLeast(Op), &["update_mask"], Some("patch_connection"), connections::patch),
        route(DELETE, "/api/v2/connections/{connection_id}", AtLeast(Op), &[], Some("delete_connection"), connections::delete),
        // Audit trail and import errors.
        route(GET, "/api/v2/eventLogs", AtLeast(Viewer), &["limit", "offset", "order_by", "dag_id"], None, event_logs::list),
        route(GET, "/api/v2/importErrors", AtLeast(Viewer), &["limit", "offset", "order_by", "filename_pattern"], None, import_errors::list),
        route(GET, "/api/v2/importErrors/{import_error_id}", AtLeast(Viewer), &[], None, import_errors::get),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_login_health_version_and_docs_are_public() {
        let public: Vec<&str> = table()
            .iter()
            .filter(|(r, _)| r.access == Access::Public)
            .map(|(r, _)| r.path)
            .collect();
        assert_eq!(
            public,
            [
                "/auth/token",
                "/api/v2/auth/login",
                "/api/v2/auth/logout",
                "/api/v2/version",
                "/api/v2/monitor/health",
                "/api/v2/openapi.json",
                "/docs",
            ]
        );
    }

    #[test]
    fn every_change_needs_a_user_and_is_audited() {
        // Reads sent as POST (batch listings) and previews change nothing.
        let read_only_posts = ["/list", "/dry_run", "/auth/token"];
        for (r, _) in table() {
            if r.method == Method::GET || read_only_posts.iter().any(|s| r.path.ends_with(s)) {
                continue;
            }
            assert!(
                matches!(r.access, Access::AtLeast(role) if role >= Role::User),
                "{} {} lets viewers change things",
                r.method,
                r.path
            );
            assert!(r.audit.is_some(), "{} {} is not audited", r.method, r.path);
        }
    }

    #[test]
    fn each_method_and_path_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for (r, _) in table() {
            assert!(
                seen.insert((r.method.clone(), r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }
}
